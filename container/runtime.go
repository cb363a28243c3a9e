package container

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/opencontainers/runc/libcontainer"
	"github.com/opencontainers/runc/libcontainer/specconv"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/startgc"
	"github.com/zosgrid/zos/internal/starttrace"
)

// ErrSupervised is returned when another process already supervises the container.
var ErrSupervised = errors.New("container: already supervised by another process")

// Runtime creates and supervises containers whose state lives under one
// root directory. Several processes may use the same root: a per-container
// lock makes sure only one supervises a container at a time.
type Runtime struct {
	root   string
	self   string
	init   string // mounted into containers as their init (see initBinary)
	log    *slog.Logger
	images ImageProvider
}

// New returns a runtime keeping its state under root. self is the path of
// the zos binary (mounted into containers as their init, and re-executed as
// a detached supervisor); empty means the running executable. images serves
// containers whose Config has no Lower directory (nil: none).
func New(root, self string, log *slog.Logger, images ImageProvider) (*Runtime, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if self == "" {
		var err error
		if self, err = selfExe(); err != nil {
			return nil, err
		}
	}
	abs, err := filepath.Abs(root)
	if err != nil {
		return nil, fmt.Errorf("container: state dir: %w", err)
	}
	for _, d := range []string{filepath.Join(abs, "c"), filepath.Join(abs, "lc")} {
		if err := os.MkdirAll(d, 0o711); err != nil {
			return nil, fmt.Errorf("container: state dir: %w", err)
		}
	}
	// Container root (an unprivileged host uid) must traverse to its rootfs.
	if err := os.Chmod(abs, 0o711); err != nil {
		return nil, fmt.Errorf("container: state dir: %w", err)
	}
	r := &Runtime{root: abs, self: self, init: initBinary(self), log: log.With("component", "container"), images: images}
	if real, err := filepath.EvalSymlinks(self); err == nil && pathsOverlap(filepath.Dir(real), r.lcRoot()) {
		// libcontainer seals the binary it re-executes with a read-only
		// overlay of the binary's directory and the container's state
		// directory; the kernel refuses lower layers inside one another,
		// and libcontainer falls back to copying the whole binary into
		// a memfd at every start (measured: tens of ms).
		r.log.Warn("the zos binary's directory and the state directory are inside one another: every container start copies the binary; keep them apart",
			"binary", real, "state", abs)
	}
	return r, nil
}

// pathsOverlap reports whether clean absolute paths a and b are the same
// or one is inside the other.
func pathsOverlap(a, b string) bool {
	return a == b || strings.HasPrefix(b, a+"/") || strings.HasPrefix(a, b+"/") || a == "/" || b == "/"
}

// initBinary is the program mounted into containers as their init:
// zos-init beside self (cmd/zos-init: the supervisor alone, which starts in
// about half the time), else self, which answers `init` the same way.
func initBinary(self string) string {
	p := filepath.Join(filepath.Dir(self), "zos-init")
	if st, err := os.Stat(p); err == nil && st.Mode().IsRegular() && st.Mode().Perm()&0o111 != 0 {
		return p
	}
	return self
}

// Root is the state directory.
func (r *Runtime) Root() string { return r.root }

// Create records a new container (nothing runs yet). It assigns the
// container its own unprivileged uid/gid range.
func (r *Runtime) Create(ctx context.Context, c Config) error {
	if c.Restart.Name == "" {
		c.Restart.Name = "no"
	}
	if err := c.Validate(); err != nil {
		return err
	}
	dir := r.dir(c.ID)
	if err := os.Mkdir(dir, 0o711); err != nil {
		if errors.Is(err, os.ErrExist) {
			return fmt.Errorf("%w: %s", ErrContainerExists, c.ID)
		}
		return fmt.Errorf("container: %w", err)
	}
	if err := r.create(dir, &c); err != nil {
		os.RemoveAll(dir)
		r.releaseIDBase(c.IDBase, c.ID)
		return err
	}
	return nil
}

// create fills the new container directory dir.
func (r *Runtime) create(dir string, c *Config) error {
	if !c.NoUserNS {
		base, err := r.allocIDBase(c.ID)
		if err != nil {
			return err
		}
		c.IDBase = base
	}
	if err := os.MkdirAll(filepath.Join(dir, "logs"), 0o700); err != nil {
		return fmt.Errorf("container: %w", err)
	}
	if c.Corex != "" {
		var b [24]byte
		if _, err := rand.Read(b[:]); err != nil {
			return fmt.Errorf("container: %w", err)
		}
		if err := os.WriteFile(r.CorexTokenPath(c.ID), []byte(hex.EncodeToString(b[:])+"\n"), 0o600); err != nil {
			return fmt.Errorf("container: %w", err)
		}
	}
	if err := r.writeStatus(c.ID, Status{State: StateCreated}); err != nil {
		return err
	}
	return writeJSON(r.configPath(c.ID), c)
}

// CorexTokenPath is the file holding the container's corex API token.
func (r *Runtime) CorexTokenPath(id string) string { return filepath.Join(r.dir(id), "corex.token") }

func (r *Runtime) ids() ([]string, error) {
	ents, err := os.ReadDir(filepath.Join(r.root, "c"))
	if err != nil {
		return nil, fmt.Errorf("container: %w", err)
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			out = append(out, e.Name())
		}
	}
	sort.Strings(out)
	return out, nil
}

// lock takes the supervisor lock of a container without blocking.
func (r *Runtime) lock(id string) (*os.File, error) {
	f, err := os.OpenFile(r.lockPath(id), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, fmt.Errorf("%w: %s", ErrContainerNotFound, id)
		}
		return nil, fmt.Errorf("container: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		if errors.Is(err, unix.EWOULDBLOCK) {
			return nil, fmt.Errorf("%w: %s", ErrSupervised, id)
		}
		return nil, fmt.Errorf("container: lock: %w", err)
	}
	return f, nil
}

func (r *Runtime) supervised(id string) bool {
	f, err := r.lock(id)
	if err != nil {
		return errors.Is(err, ErrSupervised)
	}
	f.Close()
	return false
}

// List returns every container, sorted by name.
func (r *Runtime) List(ctx context.Context) ([]Info, error) {
	ids, err := r.ids()
	if err != nil {
		return nil, err
	}
	out := make([]Info, 0, len(ids))
	for _, id := range ids {
		info, err := r.Inspect(ctx, id)
		if err != nil {
			if errors.Is(err, ErrContainerNotFound) {
				continue // being created or removed
			}
			return nil, err
		}
		out = append(out, info)
	}
	return out, nil
}

// Inspect returns one container's config and status.
func (r *Runtime) Inspect(_ context.Context, id string) (Info, error) {
	c, err := r.loadConfig(id)
	if err != nil {
		return Info{}, err
	}
	info := Info{Config: c, Status: r.loadStatus(id), Supervised: r.supervised(id)}
	// The status file is written by the supervisor; the kernel has the
	// final word on whether the init still runs.
	if info.Status.State == StateRunning && !r.initAlive(id) {
		info.Status.State = StateExited
		info.Status.ExitCode = -1
	}
	return info, nil
}

func (r *Runtime) initAlive(id string) bool {
	lc, err := libcontainer.Load(r.lcRoot(), id)
	if err != nil {
		return false
	}
	st, err := lc.Status()
	return err == nil && (st == libcontainer.Running || st == libcontainer.Created || st == libcontainer.Paused)
}

// SuperviseOptions tune Supervise.
type SuperviseOptions struct {
	// Output, if set, also receives the container's stdout and stderr
	// (foreground runs). The log file always does.
	Output io.Writer
	// StopOnCancel stops the container when ctx is cancelled (foreground
	// runs); otherwise the supervisor returns and the container runs on,
	// to be adopted by the next supervisor.
	StopOnCancel bool
	// Started is called once the first start succeeded or failed.
	Started func(err error)
	// StopGrace is the time between SIGTERM and SIGKILL when stopping on
	// cancel (default 10s).
	StopGrace time.Duration
}

// Supervise runs a created container (or adopts a running one whose
// supervisor is gone), applies its restart policy and returns its final
// status. Only one process supervises a container at a time.
func (r *Runtime) Supervise(ctx context.Context, id string, opt SuperviseOptions) (Status, error) {
	// The readiness pipe from Start must not leak into what we spawn (the
	// container, mount helpers): Start would wait for its EOF forever.
	if fd, err := strconv.Atoi(os.Getenv("ZOS_SUPERVISE_READY_FD")); err == nil {
		unix.CloseOnExec(fd)
	}
	started := func(err error) {
		if opt.Started != nil {
			opt.Started(err)
			opt.Started = nil
		}
	}
	lock, err := r.lock(id)
	if err != nil {
		started(err)
		return Status{}, err
	}
	defer lock.Close()
	c, err := r.loadConfig(id)
	if err != nil {
		started(err)
		return Status{}, err
	}
	log := r.log.With("container", id)
	st := r.loadStatus(id)
	if opt.StopGrace == 0 {
		opt.StopGrace = 10 * time.Second
	}
	backoff := 100 * time.Millisecond
	for attempt := 0; ; attempt++ {
		if _, err := os.Stat(r.stopMarker(id)); err == nil {
			started(fmt.Errorf("container: %s was stopped", id))
			return st, nil
		}
		run, err := r.startOrAdopt(ctx, &c, opt, log)
		if err != nil {
			st.State, st.Error, st.Pid = StateExited, err.Error(), 0
			st.FinishedAt = time.Now().UTC()
			r.cleanupRun(id, log)
			r.writeStatus(id, st)
			started(err)
			return st, err
		}
		if !run.adopted {
			st.StartedAt = time.Now().UTC()
			if attempt > 0 {
				st.Restarts++
			}
		}
		st.State, st.Pid, st.Error, st.OOMKilled = StateRunning, run.pid, "", false
		st.Supervisor = os.Getpid()
		if err := r.writeStatus(id, st); err != nil {
			log.Warn("cannot write status", "err", err)
		}
		started(nil)
		starttrace.Mark("cli", "status written")
		code, waitErr := run.wait(ctx, opt, r, id)
		if waitErr != nil { // ctx cancelled and the container keeps running
			return st, waitErr
		}
		st.ExitCode, st.OOMKilled = code, run.oomKilled()
		st.ExecDenied += run.denied()
		st.FinishedAt = time.Now().UTC()
		st.Pid = 0
		runFor := st.FinishedAt.Sub(st.StartedAt)
		r.cleanupRun(id, log)
		log.Info("container exited", "exit", code, "oom", st.OOMKilled)
		if !r.shouldRestart(c, st, id) || ctx.Err() != nil {
			st.State = StateExited
			r.writeStatus(id, st)
			return st, nil
		}
		st.State = StateRestarting
		r.writeStatus(id, st)
		if runFor > 10*time.Second {
			backoff = 100 * time.Millisecond
		}
		t := time.NewTimer(backoff)
		select {
		case <-ctx.Done():
			t.Stop()
			st.State = StateExited
			r.writeStatus(id, st)
			return st, nil
		case <-t.C:
		}
		backoff = min(backoff*2, 10*time.Second)
	}
}

func (r *Runtime) shouldRestart(c Config, st Status, id string) bool {
	if _, err := os.Stat(r.stopMarker(id)); err == nil {
		return false
	}
	switch c.Restart.Name {
	case "always", "unless-stopped":
		return true
	case "on-failure":
		return st.ExitCode != 0 && (c.Restart.MaxRetries == 0 || st.Restarts < c.Restart.MaxRetries)
	}
	return false
}

// running is one start of a container's init, by us or adopted.
type running struct {
	lc      *libcontainer.Container
	proc    *libcontainer.Process // nil when adopted
	pid     int
	adopted bool
	logs    *RotatingWriter
	logFile *os.File
	stopLog chan struct{}
	guard   guardHandle
	memPath string // cgroup memory dir, for OOM accounting
	oomBase uint64
}

func (run *running) oomKilled() bool {
	if run.memPath == "" {
		return false
	}
	n, err := oomKills(run.memPath)
	return err == nil && n > run.oomBase
}

func (run *running) denied() uint64 {
	if run.guard == nil {
		return 0
	}
	return run.guard.Denied()
}

// guardHandle is the part of the exec guard a run uses.
type guardHandle interface {
	Denied() uint64
	Close() error
}

func (r *Runtime) startOrAdopt(ctx context.Context, c *Config, opt SuperviseOptions, log *slog.Logger) (*running, error) {
	mark := func(stage string) { starttrace.Mark("cli", stage) }
	id := c.ID
	run := &running{stopLog: make(chan struct{})}
	lw, err := NewRotatingWriter(r.logPath(id), c.LogMaxBytes, c.LogKeep)
	if err != nil {
		return nil, err
	}
	run.logs = lw
	mark("supervise: locked, config and log ready")
	var ns *pendingUserns
	if c.IDBase != 0 {
		ns = startUserns(c.IDBase) // meanwhile: the image, the volumes
		defer ns.close()
	}
	lower, policy, err := r.prepareImage(ctx, c)
	if err != nil {
		return nil, err
	}
	mark("image prepared")
	if lc, err := libcontainer.Load(r.lcRoot(), id); err == nil {
		st, _ := lc.Status()
		if st == libcontainer.Running || st == libcontainer.Paused {
			s, err := lc.State()
			if err != nil {
				return nil, fmt.Errorf("container: adopt %s: %w", id, err)
			}
			run.lc, run.pid, run.adopted = lc, s.InitProcessPid, true
			run.memPath = memCgroup(s.CgroupPaths)
			run.oomBase, _ = oomKills(run.memPath)
			if c.ExecVerify {
				if run.guard, err = r.startGuard(c, lower, policy, log); err != nil {
					return nil, err
				}
			}
			go lw.rotateLoop(run.stopLog)
			log.Info("adopted running container", "pid", run.pid)
			return run, nil
		}
		// A dead leftover from a crashed supervisor: clear it.
		lc.Destroy()
	}
	if policy != nil {
		// A provided image (an flist) is fetched lazily: start on the
		// entrypoint now.
		prefetchEntrypoint(lower, c)
	}
	if err := r.mountVolumes(c); err != nil {
		return nil, err
	}
	mark("volumes mounted")
	rootfs, err := mountOverlay(r.dir(id), lower, c.IDBase, ns)
	if err != nil {
		return nil, err
	}
	mark("overlay mounted (id-mapped lower)")
	if err := prepareRootfs(rootfs, c); err != nil {
		return nil, err
	}
	token := ""
	if c.Corex != "" {
		b, err := os.ReadFile(r.CorexTokenPath(id))
		if err != nil {
			return nil, fmt.Errorf("container: corex token: %w", err)
		}
		token = strings.TrimSpace(string(b))
	}
	spec, err := buildSpec(c, rootfs, r.init, token)
	if err != nil {
		return nil, err
	}
	waitMemfd := c.ExecVerify && memfdNoexecSupported(log)
	if waitMemfd {
		// After "init": zos init's own flags.
		spec.Process.Args = slices.Insert(spec.Process.Args, 2, "--memfd-noexec")
	}
	r.volumeMounts(c, spec)
	lcCfg, err := specconv.CreateLibcontainerConfig(&specconv.CreateOpts{CgroupName: id, Spec: spec})
	if err != nil {
		return nil, fmt.Errorf("container: config: %w", err)
	}
	mark("spec built")
	if c.ExecVerify {
		if run.guard, err = r.startGuard(c, lower, policy, log); err != nil {
			return nil, err
		}
		mark("exec guard watching")
	}
	lc, err := libcontainer.Create(r.lcRoot(), id, lcCfg)
	if err != nil {
		run.closeGuard()
		return nil, fmt.Errorf("container: create: %w", err)
	}
	mark("libcontainer created")
	p := &libcontainer.Process{
		Args: spec.Process.Args, Env: spec.Process.Env, Cwd: spec.Process.Cwd,
		UID: int(spec.Process.User.UID), GID: int(spec.Process.User.GID), Init: true,
	}
	if opt.Output != nil {
		// Only stdout is watched for the first output: a traced zos init
		// writes its marks to stderr.
		p.Stdout = io.MultiWriter(lw, starttrace.FirstWrite(opt.Output, "cli"))
		p.Stderr = io.MultiWriter(lw, opt.Output)
	} else {
		// The file itself, so output survives the supervisor; the log is
		// rotated by copy and truncate (the writer appends).
		f, err := os.OpenFile(r.logPath(id), os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
		if err != nil {
			lc.Destroy()
			run.closeGuard()
			return nil, fmt.Errorf("container: log: %w", err)
		}
		run.logFile = f
		p.Stdout, p.Stderr = f, f
		go lw.rotateLoop(run.stopLog)
	}
	if starttrace.Enabled() {
		p.LogLevel = starttrace.LibcontainerLogLevel
	}
	err = startOneP(func() error { return lc.Start(p) })
	mark("libcontainer init ready (namespaces, rootfs, cgroups), waits on exec fifo")
	if err == nil {
		err = lc.Exec()
	}
	mark("exec fifo released")
	if err == nil && waitMemfd {
		// zos init waits for it before running anything of the image.
		if pid, perr := p.Pid(); perr == nil {
			err = memfdNoexec(ctx, pid)
		} else {
			err = fmt.Errorf("container: set vm.memfd_noexec: %w", perr)
		}
		if err != nil {
			// Running: libcontainer destroys only stopped containers.
			lc.Signal(unix.SIGKILL)
			p.Wait()
		}
		mark("memfd_noexec set")
	}
	if err != nil {
		lc.Destroy()
		run.closeGuard()
		if run.logFile != nil {
			run.logFile.Close()
		}
		return nil, fmt.Errorf("container: start: %w", err)
	}
	pid, _ := p.Pid()
	run.lc, run.proc, run.pid = lc, p, pid
	if s, err := lc.State(); err == nil {
		run.memPath = memCgroup(s.CgroupPaths)
	}
	log.Info("container started", "pid", pid)
	return run, nil
}

// startOneP runs start (libcontainer's Start) with GOMAXPROCS=1 in this
// process's environment, which libcontainer gives its init: that process
// only sets the container up and execs zos init, and started on one P it
// creates fewer threads, each a clone at its start and a kill and wait at
// its exec (startgc says more). A GOMAXPROCS of the user is left alone.
func startOneP(start func() error) error {
	if _, set := os.LookupEnv("GOMAXPROCS"); set {
		return start()
	}
	os.Setenv("GOMAXPROCS", "1")
	defer os.Unsetenv("GOMAXPROCS")
	return start()
}

// PrepareAhead starts making a provided image available (an flist mount:
// a process to start) while the caller goes on validating and creating the
// container, so that the container's start finds it ready or under way
// (the provider serialises Prepare per image). Call done once with whether
// a container of the image was created: if not, and no other container
// uses the image, it is released again.
func (r *Runtime) PrepareAhead(ctx context.Context, ref string, args []string) (done func(created bool)) {
	if r.images == nil {
		return func(bool) {}
	}
	prepared := make(chan struct{})
	go func() {
		defer close(prepared)
		// Its error, if any, comes again from the container's start.
		r.images.Prepare(ctx, ref, args)
	}()
	return func(created bool) {
		<-prepared
		if !created && !r.imageInUse(Config{Image: ref, ImageArgs: args}) {
			if err := r.images.Release(context.WithoutCancel(ctx), ref, args); err != nil {
				r.log.Warn("release an image no container uses", "image", ref, "err", err)
			}
		}
	}
}

// prepareImage returns the lower directory of a container, mounting its
// image through the ImageProvider when it is not a plain directory.
func (r *Runtime) prepareImage(ctx context.Context, c *Config) (string, *ExecPolicy, error) {
	if c.Lower != "" {
		return c.Lower, nil, nil
	}
	if r.images == nil {
		return "", nil, fmt.Errorf("%w: image %s needs an image provider", ErrInvalidConfig, c.Image)
	}
	dir, p, err := r.images.Prepare(ctx, c.Image, c.ImageArgs)
	if err != nil {
		return "", nil, fmt.Errorf("container: image %s: %w", c.Image, err)
	}
	return dir, &p, nil
}

func (run *running) closeGuard() {
	if run.guard != nil {
		run.guard.Close()
	}
}

// prepareRootfs makes the mount points the runtime needs in the writable layer.
func prepareRootfs(rootfs string, c *Config) error {
	dirs := []string{"proc", "sys", "dev", "tmp", ".zos"}
	for _, d := range dirs {
		p := filepath.Join(rootfs, d)
		if _, err := os.Lstat(p); err == nil {
			continue
		}
		if err := os.Mkdir(p, 0o755); err != nil {
			return fmt.Errorf("container: prepare rootfs: %w", err)
		}
		mode := os.FileMode(0o755)
		if d == "tmp" {
			mode = 0o1777 | os.ModeSticky
		}
		os.Chmod(p, mode)
		os.Lchown(p, int(c.IDBase), int(c.IDBase))
	}
	p := filepath.Join(rootfs, initPath)
	if _, err := os.Lstat(p); err != nil {
		f, err := os.OpenFile(p, os.O_CREATE|os.O_WRONLY, 0o555)
		if err != nil {
			return fmt.Errorf("container: prepare rootfs: %w", err)
		}
		f.Close()
	}
	return nil
}

// wait blocks until the init exits and returns its exit code. When ctx is
// cancelled it either stops the container (StopOnCancel) or returns
// ctx.Err() leaving it running.
func (run *running) wait(ctx context.Context, opt SuperviseOptions, r *Runtime, id string) (int, error) {
	defer func() {
		close(run.stopLog)
		if run.logFile != nil {
			run.logFile.Close()
		}
		run.logs.Close()
	}()
	exited := make(chan int, 1)
	waitCtx, cancelWait := context.WithCancel(context.Background())
	defer cancelWait()
	go func() {
		if run.proc != nil {
			ps, err := run.proc.Wait()
			exited <- exitCode(ps, err)
			return
		}
		exited <- waitPid(waitCtx, run.pid)
	}()
	select {
	case code := <-exited:
		run.closeGuard()
		return code, nil
	case <-ctx.Done():
	}
	if !opt.StopOnCancel {
		cancelWait()
		if run.proc != nil {
			// We are the parent: the init outlives us, and the next
			// supervisor adopts it.
			run.proc = nil
		}
		run.closeGuard()
		return 0, ctx.Err()
	}
	os.WriteFile(r.stopMarker(id), nil, 0o600)
	run.lc.Signal(unix.SIGTERM)
	t := time.NewTimer(opt.StopGrace)
	defer t.Stop()
	select {
	case code := <-exited:
		run.closeGuard()
		return code, nil
	case <-t.C:
	}
	run.lc.Signal(unix.SIGKILL)
	code := <-exited
	run.closeGuard()
	return code, nil
}

func exitCode(ps *os.ProcessState, err error) int {
	if ps == nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			ps = ee.ProcessState
		}
	}
	if ps == nil {
		return -1
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ps.ExitCode()
}

// waitPid waits for a process that is not our child; its exit code is unknown.
func waitPid(ctx context.Context, pid int) int {
	fd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return -1 // already gone
	}
	defer unix.Close(fd)
	for ctx.Err() == nil {
		fds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
		n, err := unix.Poll(fds, 500)
		if err == nil && n > 0 {
			return -1
		}
	}
	return -1
}

// cleanupRun removes what one start made: the libcontainer state (and with
// it the cgroup), the rootfs and volume mounts. The writable layer stays.
func (r *Runtime) cleanupRun(id string, log *slog.Logger) {
	if lc, err := libcontainer.Load(r.lcRoot(), id); err == nil {
		if err := lc.Destroy(); err != nil {
			log.Warn("destroy container state", "err", err)
		}
	}
	if err := unmountAll(r.dir(id)); err != nil {
		log.Warn("unmount", "err", err)
	}
}

// Start launches a detached supervisor (`zos container supervise`) for a
// created container and returns once the container started or failed to.
func (r *Runtime) Start(ctx context.Context, id string) error {
	if _, err := r.loadConfig(id); err != nil {
		return err
	}
	os.Remove(r.stopMarker(id))
	rd, wr, err := os.Pipe()
	if err != nil {
		return fmt.Errorf("container: %w", err)
	}
	defer rd.Close()
	logf, err := os.OpenFile(r.supervisorLog(id), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		wr.Close()
		return fmt.Errorf("container: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(r.self, "container", "supervise", "--root", r.root, id)
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.ExtraFiles = []*os.File{wr}
	cmd.Env = append(startgc.Environ(os.Environ()), "ZOS_SUPERVISE_READY_FD=3")
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		wr.Close()
		return fmt.Errorf("container: start supervisor: %w", err)
	}
	wr.Close()
	pid := cmd.Process.Pid
	cmd.Process.Release()
	done := make(chan []byte, 1)
	go func() {
		b, _ := io.ReadAll(rd)
		done <- b
	}()
	select {
	case b := <-done:
		msg := strings.TrimSpace(string(b))
		switch {
		case msg == "ok":
			return nil
		case msg == "":
			return fmt.Errorf("container: supervisor (pid %d) died before starting %s; see %s", pid, id, r.supervisorLog(id))
		default:
			return errors.New(msg)
		}
	case <-ctx.Done():
		return ctx.Err()
	}
}

// SignalReady reports the outcome of the first start to a parent Start
// waiting on the fd named by ZOS_SUPERVISE_READY_FD, if any.
func SignalReady(err error) {
	fdStr := os.Getenv("ZOS_SUPERVISE_READY_FD")
	if fdStr == "" {
		return
	}
	os.Unsetenv("ZOS_SUPERVISE_READY_FD")
	fd, convErr := strconv.Atoi(fdStr)
	if convErr != nil {
		return
	}
	f := os.NewFile(uintptr(fd), "ready")
	if err != nil {
		fmt.Fprintln(f, err.Error())
	} else {
		fmt.Fprintln(f, "ok")
	}
	f.Close()
}

// Stop asks the container to stop: SIGTERM to its init, SIGKILL after
// grace. It never restarts afterwards (until started again).
func (r *Runtime) Stop(ctx context.Context, id string, grace time.Duration) error {
	if _, err := r.loadConfig(id); err != nil {
		return err
	}
	if err := os.WriteFile(r.stopMarker(id), nil, 0o600); err != nil {
		return fmt.Errorf("container: %w", err)
	}
	lc, err := libcontainer.Load(r.lcRoot(), id)
	if err != nil {
		return r.waitUnsupervised(ctx, id) // not running
	}
	if err := lc.Signal(unix.SIGTERM); err != nil && r.initAlive(id) {
		return fmt.Errorf("container: signal %s: %w", id, err)
	}
	deadline := time.Now().Add(grace)
	killed := false
	for r.initAlive(id) {
		if !killed && time.Now().After(deadline) {
			lc.Signal(unix.SIGKILL)
			killed = true
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
	return r.waitUnsupervised(ctx, id)
}

// waitUnsupervised waits until no supervisor holds the container (it has
// recorded the exit and cleaned up), then cleans up itself if needed.
func (r *Runtime) waitUnsupervised(ctx context.Context, id string) error {
	for {
		f, err := r.lock(id)
		if err == nil {
			defer f.Close()
			st := r.loadStatus(id)
			if st.State == StateRunning || st.State == StateRestarting {
				st.State, st.Pid = StateExited, 0
				if st.FinishedAt.IsZero() {
					st.FinishedAt = time.Now().UTC()
				}
				r.writeStatus(id, st)
			}
			r.cleanupRun(id, r.log.With("container", id))
			return nil
		}
		if !errors.Is(err, ErrSupervised) {
			return err
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Remove deletes a container and everything it owns: mounts, cgroups,
// virtual disks, its writable layer and logs. A running container is
// refused unless force, which kills it first.
func (r *Runtime) Remove(ctx context.Context, id string, force bool) error {
	if _, err := r.loadConfig(id); err != nil {
		return err
	}
	if r.initAlive(id) {
		if !force {
			return fmt.Errorf("%w: %s (stop it first or force)", ErrContainerRunning, id)
		}
		if err := r.Stop(ctx, id, 0); err != nil {
			return err
		}
	} else if err := r.Stop(ctx, id, 0); err != nil {
		return err
	}
	f, err := r.lock(id)
	if err != nil {
		return err
	}
	defer f.Close()
	r.cleanupRun(id, r.log.With("container", id))
	if ms, err := mountsUnder(r.dir(id)); err != nil || len(ms) > 0 {
		return fmt.Errorf("container: %s: mounts left after unmount: %v %v", id, ms, err)
	}
	c, _ := r.loadConfig(id)
	if err := os.RemoveAll(r.dir(id)); err != nil {
		return fmt.Errorf("container: remove %s: %w", id, err)
	}
	r.releaseIDBase(c.IDBase, id)
	if c.Lower == "" && r.images != nil && !r.imageInUse(c) {
		if err := r.images.Release(ctx, c.Image, c.ImageArgs); err != nil {
			return fmt.Errorf("container: release image %s: %w", c.Image, err)
		}
	}
	// A download is not a cache (run by URL fetches it again): it goes
	// with its last container.
	r.dropDownload(c.Image)
	return nil
}

// imageInUse says whether another container uses the same provided image.
func (r *Runtime) imageInUse(c Config) bool {
	ids, _ := r.ids()
	for _, id := range ids {
		o, err := r.loadConfig(id)
		if err == nil && o.ID != c.ID && o.Lower == "" && o.Image == c.Image && slices.Equal(o.ImageArgs, c.ImageArgs) {
			return true
		}
	}
	return false
}

// Recover starts a detached supervisor for every container that should be
// running but has none (after the zos process or the machine restarted):
// running inits are adopted, exited ones restarted per their policy.
func (r *Runtime) Recover(ctx context.Context) ([]string, error) {
	ids, err := r.ids()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, id := range ids {
		st := r.loadStatus(id)
		if st.State != StateRunning && st.State != StateRestarting {
			continue
		}
		if r.supervised(id) {
			continue
		}
		if _, err := os.Stat(r.stopMarker(id)); err == nil {
			continue // being stopped by the user
		}
		if err := r.Start(ctx, id); err != nil {
			return out, fmt.Errorf("container: recover %s: %w", id, err)
		}
		out = append(out, id)
	}
	return out, nil
}
