// Command container measures the time from "run" to a container's first
// output: zos running a flist whose blocks are cached, the same flist cold
// (empty cache), zos on an unpacked directory, Debian's runc on the same
// unpacked root filesystem, and the full path a Docker user pays (unpack
// the image, then runc run). The image is busybox plus a filler file
// (-size, default 100 MiB) the entrypoint never reads, as in a real image.
//
// The cases take turns run by run, so that the load of a shared machine
// weighs on all of them alike. -trace first prints the stages of one traced
// start of each zos case (ZOS_TRACE marks of the CLI, libcontainer's init
// and zos init, in ms from the invocation).
//
// Run as root: go run ./bench/container [-n 10] [-size 100] [-trace]. ZOS_BIN
// names the zos binary (default bin/zos).
//
// Owns: nothing but the measurement.
//
// May import: the standard library (it drives the zos and runc binaries).
// Must never be imported by: anything (it is package main).
package main
