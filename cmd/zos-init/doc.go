// Command zos-init is the first program of every container: `zos init`,
// the supervisor that runs as PID 1 (see container/supervise), in a binary
// of its own. The container runtime bind-mounts it into each container
// when it finds it beside the zos binary, and mounts zos itself otherwise;
// both answer `init` the same way.
//
// Why a third binary: the supervisor starts on the path of every container
// start, after libcontainer's init, and a Go program pays for the package
// initialisation and the page faults of everything it links. The zos
// binary links the whole node (flist and SQLite, FUSE, zdb, networking,
// the OCI client); this one links the supervisor only. Measured with perf
// stat, `init --exec -- /bin/true` takes 16 ms here against 29 ms from zos.
//
// Owns: nothing but main. May import: container/supervise, internal and
// the standard library. Must never be imported by: anything (package main).
package main
