package container

import (
	"context"
	"fmt"
	"golang.org/x/sys/unix"
	"io"
	"path/filepath"

	"github.com/opencontainers/runc/libcontainer"
)

// ExecOptions describe a process to run in a running container.
type ExecOptions struct {
	Args    []string
	Env     []string
	WorkDir string
	User    string
	Stdin   io.Reader
	Stdout  io.Writer
	Stderr  io.Writer
}

// Exec runs a process inside a running container (same namespaces, cgroup,
// capabilities, seccomp and no_new_privs as its init) and returns its exit status.
func (r *Runtime) Exec(ctx context.Context, id string, o ExecOptions) (int, error) {
	c, err := r.loadConfig(id)
	if err != nil {
		return 0, err
	}
	if len(o.Args) == 0 {
		return 0, fmt.Errorf("%w: exec needs a command", ErrInvalidConfig)
	}
	user := o.User
	if user == "" {
		user = c.User
	}
	uid, gid, err := resolveUser(filepath.Join(r.dir(id), "rootfs"), user)
	if err != nil {
		return 0, err
	}
	lc, err := libcontainer.Load(r.lcRoot(), id)
	if err != nil {
		return 0, fmt.Errorf("container: %s is not running", id)
	}
	cwd := o.WorkDir
	if cwd == "" {
		cwd = c.WorkDir
	}
	if cwd == "" {
		cwd = "/"
	}
	env := append([]string{"PATH=" + defaultPath}, c.Env...)
	args := append([]string{initPath, "init", "--seccomp", "--exec", "--"}, o.Args...)
	p := &libcontainer.Process{Args: args, Env: append(env, o.Env...), Cwd: cwd, UID: uid, GID: gid,
		Stdin: o.Stdin, Stdout: o.Stdout, Stderr: o.Stderr}
	if err := lc.Run(p); err != nil {
		return 0, fmt.Errorf("container: exec in %s: %w", id, err)
	}
	done := make(chan int, 1)
	go func() {
		ps, err := p.Wait()
		done <- exitCode(ps, err)
	}()
	select {
	case code := <-done:
		return code, nil
	case <-ctx.Done():
		p.Signal(killSignal)
		return <-done, ctx.Err()
	}
}

var killSignal = unix.SIGKILL
