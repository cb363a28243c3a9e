package container

import (
	"context"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/container/guard"
	"github.com/zosgrid/zos/container/supervise"
	"github.com/zosgrid/zos/internal/starttrace"
)

// startGuard watches the container's overlay and lets only the image's
// programs run: those of policy, or else every executable of lower.
func (r *Runtime) startGuard(c *Config, lower string, policy *ExecPolicy, log *slog.Logger) (guardHandle, error) {
	o := guard.Options{Upper: filepath.Join(r.dir(c.ID), "upper"), Log: log}
	if policy == nil {
		// Hashing every program of a directory image takes as long as
		// reading them: it runs while the container's init starts, and
		// the first launch waits for it.
		o.Pending = func() (map[guard.Hash]bool, map[guard.Hash]bool, error) {
			allowed, err := guard.HashTree(lower)
			return allowed, nil, err
		}
	} else {
		o.Digest, o.Allowed, o.Libs = policy.Digest, policy.Allowed, policy.Libs
		o.LowerVerified = policy.LowerVerified
		if policy.Pending != nil {
			o.Pending = func() (map[guard.Hash]bool, map[guard.Hash]bool, error) { return policy.Pending() }
		}
	}
	if starttrace.Enabled() {
		o.Digest, o.Pending = tracedDigest(o.Digest), tracedPending(o.Pending)
	}
	return guard.Start(filepath.Join(r.dir(c.ID), "rootfs"), o)
}

// memfdNoexecSupported says whether the kernel has vm.memfd_noexec.
func memfdNoexecSupported(log *slog.Logger) bool {
	if _, err := os.Stat(supervise.MemfdNoexecKnob); err != nil {
		log.Warn("exec guard: kernel has no vm.memfd_noexec; memfd exec is not refused", "err", err)
		return false
	}
	return true
}

// tracedDigest marks each file the guard hashes (ZOS_TRACE): hashing is the
// guard's cost on the launch path.
func tracedDigest(d func(io.Reader) (guard.Hash, error)) func(io.Reader) (guard.Hash, error) {
	if d == nil {
		d = guard.SHA256
	}
	return func(r io.Reader) (guard.Hash, error) {
		starttrace.Mark("cli", "exec guard: hashing a file")
		h, err := d(r)
		starttrace.Mark("cli", "exec guard: file hashed")
		return h, err
	}
}

// tracedPending marks when the guard's allowed set is known (ZOS_TRACE).
func tracedPending(p func() (map[guard.Hash]bool, map[guard.Hash]bool, error)) func() (map[guard.Hash]bool, map[guard.Hash]bool, error) {
	if p == nil {
		return nil
	}
	return func() (map[guard.Hash]bool, map[guard.Hash]bool, error) {
		a, l, err := p()
		starttrace.Mark("cli", "exec guard: allowed set ready")
		return a, l, err
	}
}

// memfdNoexec makes memfds of pid's namespace non-executable: sysctl
// vm.memfd_noexec=2 (Linux 6.3+), which is per pid namespace and inherited
// by nested ones, and which the container cannot lower. memfd_create then
// seals new memfds non-executable and refuses MFD_EXEC, so a program built
// in memory cannot be run with execveat or mapped executable. The value is
// read from the writer's pid namespace and only host root may write it, so
// it is written by a host-root child started into the container's pid
// namespace: a thread of ours joins it for its children (setns affects
// only the pid namespace of children) and runs the shell that writes the
// knob from the host's /proc. The thread is then thrown away.
//
// The container's init does not wait for it: it is written while `zos
// init --memfd-noexec` starts, which runs nothing of the image before it
// reads 2 (memfdNoexecSupported says whether to ask for that).
func memfdNoexec(ctx context.Context, pid int) error {
	const knob = supervise.MemfdNoexecKnob
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/pid", pid))
	if err != nil {
		return fmt.Errorf("container: set vm.memfd_noexec in the container: %w", err)
	}
	defer ns.Close()
	done := make(chan error, 1)
	go func() {
		// Never unlocked: the goroutine's end ends the thread, whose
		// children would be born in the container.
		runtime.LockOSThread()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWPID); err != nil {
			done <- fmt.Errorf("setns: %w", err)
			return
		}
		cmd := exec.CommandContext(ctx, "/bin/sh", "-c", "echo 2 > "+knob)
		out, err := cmd.CombinedOutput()
		if err != nil {
			err = fmt.Errorf("%w: %s", err, strings.TrimSpace(string(out)))
		}
		done <- err
	}()
	if err := <-done; err != nil {
		return fmt.Errorf("container: set vm.memfd_noexec in the container: %w", err)
	}
	return nil
}
