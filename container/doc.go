// Package container runs isolated workloads with runc's libcontainer: an
// overlayfs root over a read-only lower layer (a directory today, the mounted
// flist later), every namespace, a user namespace mapping container root to an
// unprivileged host range, Docker's default capabilities, no_new_privs, a
// seccomp filter, masked /proc and /sys paths, and cgroup limits for cpu,
// memory and pids on cgroup v1 and v2.
//
// Owns: the state directory of containers. Its layout, under Runtime's root:
//
//	<root>/lc/<id>/            libcontainer state (state.json), owned by libcontainer
//	<root>/c/<id>/config.json  the Config the container was created with
//	<root>/c/<id>/status.json  Status written by the supervising process (pid, exit, OOM, restarts)
//	<root>/c/<id>/upper, work  the overlay writable layer, owned by the mapped root
//	<root>/c/<id>/lower        the id-mapped view of the lower layer (a mount point)
//	<root>/c/<id>/rootfs       the overlay mount point (the container's /)
//	<root>/c/<id>/logs/        stdout+stderr, rotated: current.log, current.log.1 ...
//	<root>/c/<id>/disks/       sparse virtual disk images of the container's volumes
//
// A container is supervised by exactly one process (the foreground `zos
// container run` or a detached `zos container shim`), recorded with its pid
// and start time in status.json; a new supervisor adopts a container whose
// supervisor died instead of starting a second copy.
//
// The zos binary is bind-mounted read-only at /.zos/zos and runs as the
// container's PID 1 (`zos init`, package container/supervise) unless
// Config.NoInit is set.
//
// May import: the standard library, runc's libcontainer, runtime-spec, x/sys,
// and container/guard.
// Must never be imported by: grid, resp, ledger, flist (engines talk to it
// through interfaces they declare).
package container
