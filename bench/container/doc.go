// Command container measures the time from "run" to a container's first
// output: zos running a flist whose blocks are cached, the same flist cold
// (empty cache), zos on an unpacked directory, Debian's runc on the same
// unpacked root filesystem, and the full path a Docker user pays (unpack
// the image, then runc run). The image is busybox plus a filler file
// (-size, default 100 MiB) the entrypoint never reads, as in a real image.
//
// The cases take turns run by run, so that the load of a shared machine
// weighs on all of them alike, after one untimed warm-up run each. Each row
// also gives the CPU time (user+sys) a run costs, which a busy machine
// inflates much less than the wall time. -cases REGEXP keeps only the
// matching cases.
//
// The runc row is the reference of the targets: runc's default spec
// (`runc spec`: no user namespace, no exec guard, no init process) on the
// unpacked root filesystem, timed like the zos rows, from the fork of `runc
// run` to the first byte of `echo hi`, and interleaved with them, so that
// the ratio compares starts made under the same conditions.
// perf-anchors.md's ~10 ms for runc is hyperfine -N of the same command
// (to its exit) back to back on an idle machine: `-cases '^runc'` runs it
// back to back here. The spec and timing are not why this row reads ~60 ms:
// back to back at a load average of 2 runc took 64 ms and 83 ms of CPU per
// start (perf-anchors: 10 ms, 11 ms of CPU), and the plain `busybox echo hi`
// took 2.6 ms (perf-anchors: 0.21 ms); the shared VM runs process starts
// several times slower than when the anchors were taken, and loaded (5
// helpers on 2 cores) several times slower again. Compare ratios within
// one run; the CPU column is the less load-sensitive figure. -trace first prints the stages of one traced
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
