// Package guard is the exec guard: a fanotify FAN_OPEN_EXEC_PERM watch on a
// filesystem (a container's overlay) that lets a program start only if the
// SHA-256 of its content is in an allowed set (the image's files), so a
// binary written into the writable layer cannot be run. Scripts are checked
// too (the kernel opens them for exec), as is their interpreter.
//
// With the overlay's upper (writable) layer given, it also decides every
// open on that filesystem (FAN_OPEN_PERM): an ELF file present in the
// writable layer opens only if its content is in the set, whatever the
// access mode. The dynamic loader opens libraries for reading, so this is
// what refuses a library dropped into the container (LD_PRELOAD, dlopen,
// or an ELF interpreter). Files only in the lower layer (the signed image)
// are not hashed; decisions are cached by inode, size and times.
//
// With LowerVerified (flist images: the FUSE mount checks every block it
// serves against the signed metadata), a launch whose file lives in the
// lower layer is allowed without reading it, which spares a cold start
// fetching and hashing the whole entrypoint. The layer is asked of the
// kernel (FS_IOC_GETFLAGS is answered by the real inode's filesystem), not
// of st_dev or paths: a copied-up file keeps its lower origin's st_dev and
// st_ino, and paths change under a waiting launch.
//
// Residual risk, stated plainly:
//   - Time of check to time of use: a process holding the library open for
//     writing can change it after the open was allowed and before it is
//     mapped (exec has no such gap: the kernel refuses to exec a file open
//     for writing).
//   - Executable memory that is not a file of the overlay: anonymous memory
//     made executable with mprotect (JITs need it) and memfds (see the
//     container package: they are made non-executable with vm.memfd_noexec,
//     but may still be mapped executable) can run code the attacker wrote,
//     as can any interpreter of the image fed a script. The guard keeps
//     unknown binaries off the launch path; it is not a W^X policy.
//   - The price: an unknown ELF file of the writable layer cannot be
//     opened at all, not even to be read, copied or rewritten (it can be
//     deleted), so compiling and linking programs inside a guarded
//     container fails; such workloads run without the guard.
//   - Non-ELF formats executed through binfmt_misc are checked only when
//     exec'd, not when opened.
//   - Every open in the container waits for this process to answer (one
//     fstat when cached, a 4-byte read, a hash for new ELF files of the
//     writable layer): BenchmarkOpen measured about 7-10 µs per open
//     against 1.5-2 µs unguarded on a busy 2-core machine. Per-inode
//     ignore marks would remove the round trip for files seen before, but
//     writes through a shared mapping do not clear them, so they are not
//     used. Closing the guard removes the watch (pending launches are
//     allowed by the kernel).
//   - The process holding a Guard must not start a program of the watched
//     filesystem itself with os/exec: Go forks with vfork, whose parent
//     thread keeps its scheduler slot until the child's execve returns,
//     and that execve waits for the guard's answer; a garbage collection
//     starting meanwhile waits for the slot forever. The container
//     runtime starts containers through /proc/self/exe, on the host.
//
// May import: the standard library and x/sys.
// Must never be imported by: grid, resp, ledger, flist.
package guard
