// Package container runs isolated workloads with runc's libcontainer: an
// overlayfs root over a read-only lower layer (a directory, or an image an
// ImageProvider mounts, such as a signed flist), every namespace, a user
// namespace mapping container root to a private unprivileged host range of
// 65536 ids (the lower layer is seen through an id-mapped mount, never
// chowned), Docker's default capabilities, no_new_privs, a seccomp filter,
// Docker's masked and read-only /proc and /sys paths, and cgroup limits for
// cpu, memory and pids (libcontainer's cgroupfs manager: v1 and v2).
//
// Seccomp: libcontainer applies seccomp only when built with libseccomp
// (cgo, build tag "seccomp"), so the filter is installed instead by the
// container's first program, the static zos binary (`zos init --seccomp`,
// see supervise.Filter), before it runs anything of the image; exec'd
// processes go through `zos init --seccomp --exec`. The filter refuses
// Docker's denied system calls with EPERM (modules, mounts, namespaces,
// keyrings, ptrace, clocks, reboot, BPF, perf, ...) on a default-allow basis:
// unlike Docker's allow-list, a system call newer than this list is allowed.
//
// Exec guard (Config.ExecVerify, on by default in the CLI): package guard
// watches the overlay's superblock with fanotify and lets a program start
// only if its content digest is in the image's set (every executable of the
// directory, or the flist's signed ExecSet). Volumes are mounted noexec then.
// It also refuses opening an ELF file of the writable layer whose content is
// not in the set, so a library written into the container cannot be loaded
// by LD_PRELOAD or dlopen, and sets vm.memfd_noexec=2 in the container's pid
// namespace (Linux 6.3+, written by a child nsenter forks into it, before the
// container's first program runs): memfds are created non-executable and
// MFD_EXEC is refused, so a program built in memory cannot be exec'd. Not
// covered (see package guard): code written to executable memory (mprotect,
// a memfd mapped PROT_EXEC), a library changed by a writer between its
// checked open and its mapping, scripts fed to an image's interpreter.
// Owns: the state directory of containers. Its layout, under Runtime's root:
//
//	<root>/lc/<id>/            libcontainer state (state.json), owned by libcontainer
//	<root>/c/<id>/config.json  the Config the container was created with
//	<root>/c/<id>/status.json  Status written by the supervising process (pid, exit, OOM, restarts)
//	<root>/c/<id>/upper, work  the overlay writable layer, owned by the mapped root
//	<root>/c/<id>/lower        the id-mapped view of the lower layer (a mount point)
//	<root>/images/<key>        a provided image (flist) mounted once for all its containers
//	<root>/images/<sha256>.fl  an image downloaded by URL (FetchImage), kept while a container
//	                           references it; removed by rm of the last one, or PruneImages
//	<root>/images/.lock        flock: shared from download to create, exclusive to remove downloads
//	<root>/c/<id>/rootfs       the overlay mount point (the container's /)
//	<root>/c/<id>/logs/        stdout+stderr, rotated: current.log, current.log.1 ...
//	<root>/c/<id>/disks/       sparse virtual disk images of the container's volumes
//	<root>/uids/<base>.<id>    the container's claim on its host id range (made under an flock of uids/.lock)
//
// A container is supervised by exactly one process (the foreground `zos
// container run` or a detached `zos container shim`), recorded with its pid
// and start time in status.json; a new supervisor adopts a container whose
// supervisor died instead of starting a second copy.
//
// The zos binary is bind-mounted read-only at /.zos/zos and runs as the
// container's PID 1 (`zos init`, package container/supervise), or execs the
// entrypoint when Config.NoInit is set. It is linked statically (see
// static.go) so that it runs in images without a C library. Its threads count
// against the pids limit (about 8).
//
// A process that starts containers must keep its main goroutine on the main
// thread (runtime.LockOSThread in an init function), see cmd/zos/main.go.
//
// May import: the standard library, runc's libcontainer, runtime-spec, x/sys,
// container/guard, internal/starttrace, internal/atomicfile and internal/dirlock.
// Must never be imported by: grid, resp, ledger, flist (engines talk to it
// through interfaces they declare).
package container
