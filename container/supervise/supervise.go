package supervise

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/starttrace"
)

// forwarded are the signals passed on to what the supervisor runs.
var forwarded = []os.Signal{unix.SIGTERM, unix.SIGINT, unix.SIGHUP, unix.SIGQUIT, unix.SIGUSR1, unix.SIGUSR2, unix.SIGWINCH}

// RunEntrypoint runs one command as the supervisor's only job: signals are
// forwarded to it, zombies reaped, and its exit status returned (128+n when
// killed by signal n). Stdio is inherited.
func RunEntrypoint(ctx context.Context, args []string) (int, error) {
	if len(args) == 0 {
		return 127, errors.New("supervise: no command")
	}
	becomeReaper()
	rp := newReaper()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, forwarded...)
	defer signal.Stop(sigs)
	// The reaper runs until the entrypoint's exit is collected, whatever
	// ctx does: zos's main cancels it on the very SIGTERM forwarded here,
	// and a reaper stopped then would leave the exiting entrypoint a zombie
	// until stop's SIGKILL (exit 137 instead of its own status).
	rctx, cancel := context.WithCancel(context.WithoutCancel(ctx))
	defer cancel()
	path, err := exec.LookPath(args[0])
	if err != nil {
		return 127, fmt.Errorf("supervise: %s: %w", args[0], err)
	}
	// Block SIGCHLD handling race: register before reaping can run.
	rp.mu.Lock()
	p, err := os.StartProcess(path, args, &os.ProcAttr{
		Files: []*os.File{os.Stdin, os.Stdout, os.Stderr},
		Sys:   &syscall.SysProcAttr{Setpgid: false},
	})
	if err != nil {
		rp.mu.Unlock()
		return 126, fmt.Errorf("supervise: start %s: %w", args[0], err)
	}
	starttrace.Mark("init", "entrypoint started")
	done := make(chan syscall.WaitStatus, 1)
	rp.waiters[p.Pid] = done
	rp.mu.Unlock()
	go rp.run(rctx)
	for {
		select {
		case ws := <-done:
			return statusCode(ws), nil
		case s := <-sigs:
			p.Signal(s)
		}
	}
}

// becomeReaper makes orphans of our descendants ours when we are not PID 1.
func becomeReaper() {
	if os.Getpid() != 1 {
		unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
	}
}

// Service states.
const (
	StateBlocked  = "blocked"  // waiting for its after list
	StateStarting = "starting" // running, test not yet passed
	StateRunning  = "running"
	StateSuccess  = "success" // oneshot exited 0
	StateFailed   = "failed"  // exited non-zero and will not restart
	StateBackoff  = "backoff" // waiting to restart
	StateStopped  = "stopped" // stopped by request
)

// ServiceStatus is one service as reported by Status.
type ServiceStatus struct {
	Name     string `json:"name"`
	State    string `json:"state"`
	Pid      int    `json:"pid,omitempty"`
	Restarts int    `json:"restarts"`
	LastExit int    `json:"last_exit"`
}

// Supervisor runs a set of services.
type Supervisor struct {
	logDir string
	out    io.Writer
	log    *slog.Logger
	rp     *reaper

	mu       sync.Mutex
	svcs     map[string]*service
	changed  chan struct{} // closed and replaced on every state change
	stopping bool
}

type service struct {
	unit     Unit
	state    string
	pid      int
	restarts int
	lastExit int
	wanted   bool // false after Stop: do not (re)start
	proc     *os.Process
}

// New returns a supervisor for units; each service logs to
// logDir/NAME.log and, prefixed, to out.
func New(units []Unit, logDir string, out io.Writer, log *slog.Logger) (*Supervisor, error) {
	if err := CheckGraph(units); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	if out == nil {
		out = io.Discard
	}
	if err := os.MkdirAll(logDir, 0o755); err != nil {
		return nil, fmt.Errorf("supervise: %w", err)
	}
	s := &Supervisor{logDir: logDir, out: &lockedWriter{w: out}, log: log, rp: newReaper(),
		svcs: map[string]*service{}, changed: make(chan struct{})}
	for _, u := range units {
		s.svcs[u.Name] = &service{unit: u, state: StateBlocked, wanted: true}
	}
	return s, nil
}

type lockedWriter struct {
	mu sync.Mutex
	w  io.Writer
}

func (l *lockedWriter) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.w.Write(p)
}

func (s *Supervisor) notifyLocked() {
	close(s.changed)
	s.changed = make(chan struct{})
}

// Status lists the services, sorted by name.
func (s *Supervisor) Status() []ServiceStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]ServiceStatus, 0, len(s.svcs))
	for _, v := range s.svcs {
		out = append(out, ServiceStatus{Name: v.unit.Name, State: v.state, Pid: v.pid, Restarts: v.restarts, LastExit: v.lastExit})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// LogPath is the log file of a service.
func (s *Supervisor) LogPath(name string) (string, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if _, ok := s.svcs[name]; !ok {
		return "", fmt.Errorf("supervise: no service %q", name)
	}
	return filepath.Join(s.logDir, name+".log"), nil
}

// Stop stops a service (SIGTERM, SIGKILL after 10s) and keeps it stopped.
func (s *Supervisor) Stop(name string) error {
	s.mu.Lock()
	v, ok := s.svcs[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("supervise: no service %q", name)
	}
	v.wanted = false
	p := v.proc
	s.notifyLocked()
	s.mu.Unlock()
	if p != nil {
		p.Signal(unix.SIGTERM)
		go func() {
			t := time.NewTimer(10 * time.Second)
			defer t.Stop()
			for {
				s.mu.Lock()
				gone := v.proc != p
				ch := s.changed
				s.mu.Unlock()
				if gone {
					return
				}
				select {
				case <-ch:
				case <-t.C:
					p.Kill()
					return
				}
			}
		}()
	}
	return nil
}

// Start (re)enables a stopped service.
func (s *Supervisor) Start(name string) error {
	s.mu.Lock()
	defer s.mu.Unlock()
	v, ok := s.svcs[name]
	if !ok {
		return fmt.Errorf("supervise: no service %q", name)
	}
	v.wanted = true
	if v.state == StateStopped || v.state == StateFailed || v.state == StateSuccess {
		v.state = StateBlocked
	}
	s.notifyLocked()
	return nil
}

// Restart stops a service if it runs and starts it again.
func (s *Supervisor) Restart(name string) error {
	s.mu.Lock()
	v, ok := s.svcs[name]
	if !ok {
		s.mu.Unlock()
		return fmt.Errorf("supervise: no service %q", name)
	}
	p := v.proc
	s.mu.Unlock()
	if p != nil {
		p.Signal(unix.SIGTERM) // the exit handler restarts it (wanted stays true)
		s.mu.Lock()
		v.restarts-- // a requested restart is not a crash
		s.mu.Unlock()
		return nil
	}
	return s.Start(name)
}

// Run starts services as their dependencies allow, restarts the ones that
// exit per their policy, and on ctx done (or a forwarded SIGTERM/SIGINT)
// stops them all and returns.
func (s *Supervisor) Run(ctx context.Context) error {
	becomeReaper()
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	sigs := make(chan os.Signal, 8)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT)
	defer signal.Stop(sigs)
	go func() {
		select {
		case <-sigs:
			cancel()
		case <-ctx.Done():
		}
	}()
	go s.rp.run(ctx)
	for {
		s.mu.Lock()
		s.scheduleLocked(ctx)
		ch := s.changed
		s.mu.Unlock()
		select {
		case <-ch:
		case <-ctx.Done():
			s.shutdown()
			return nil
		}
	}
}

// scheduleLocked starts every wanted service whose dependencies are met.
func (s *Supervisor) scheduleLocked(ctx context.Context) {
	if s.stopping {
		return
	}
	for _, v := range s.svcs {
		if v.state != StateBlocked || !v.wanted {
			if !v.wanted && v.state == StateBlocked {
				v.state = StateStopped
			}
			continue
		}
		ready := true
		for _, a := range v.unit.After {
			st := s.svcs[a].state
			if st != StateRunning && st != StateSuccess {
				ready = false
			}
		}
		if ready {
			s.startLocked(ctx, v)
		}
	}
}

func (s *Supervisor) startLocked(ctx context.Context, v *service) {
	args, _ := SplitCommand(v.unit.Exec)
	logf, err := os.OpenFile(filepath.Join(s.logDir, v.unit.Name+".log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o640)
	if err != nil {
		s.failLocked(v, 126, fmt.Sprintf("log: %v", err))
		return
	}
	pr, pw, err := os.Pipe()
	if err != nil {
		logf.Close()
		s.failLocked(v, 126, err.Error())
		return
	}
	env := os.Environ()
	for k, val := range v.unit.Env {
		env = append(env, k+"="+val)
	}
	path, err := exec.LookPath(args[0])
	var p *os.Process
	if err == nil {
		s.rp.mu.Lock()
		p, err = os.StartProcess(path, args, &os.ProcAttr{Env: env, Files: []*os.File{nil, pw, pw}})
	} else {
		s.rp.mu.Lock()
	}
	pw.Close()
	if err != nil {
		s.rp.mu.Unlock()
		pr.Close()
		logf.Close()
		s.failLocked(v, 127, err.Error())
		return
	}
	done := make(chan syscall.WaitStatus, 1)
	s.rp.waiters[p.Pid] = done
	s.rp.mu.Unlock()
	v.proc, v.pid, v.state = p, p.Pid, StateStarting
	if v.unit.Oneshot {
		v.state = StateStarting
	}
	s.log.Info("service started", "service", v.unit.Name, "pid", p.Pid)
	copied := make(chan struct{})
	go func() { // per-service log, and prefixed lines on our stdout
		defer close(copied)
		defer logf.Close()
		defer pr.Close()
		copyLines(io.MultiWriter(logf), s.out, v.unit.Name, pr)
	}()
	if v.unit.Test != "" && !v.unit.Oneshot {
		go s.runTest(ctx, v, p)
	} else if !v.unit.Oneshot {
		v.state = StateRunning
	}
	s.notifyLocked()
	go func() {
		ws := <-done
		<-copied
		s.exited(ctx, v, p, statusCode(ws))
	}()
}

func (s *Supervisor) failLocked(v *service, code int, why string) {
	fmt.Fprintf(s.out, "%s: cannot start: %s\n", v.unit.Name, why)
	v.lastExit = code
	v.state = StateFailed
	s.notifyLocked()
}

// runTest runs the unit's test until it passes; the service is then running.
func (s *Supervisor) runTest(ctx context.Context, v *service, p *os.Process) {
	args, _ := SplitCommand(v.unit.Test)
	delay := 50 * time.Millisecond
	for ctx.Err() == nil {
		s.mu.Lock()
		alive := v.proc == p && v.state == StateStarting
		s.mu.Unlock()
		if !alive {
			return
		}
		if s.runOnce(args) == 0 {
			s.mu.Lock()
			if v.proc == p && v.state == StateStarting {
				v.state = StateRunning
				s.notifyLocked()
			}
			s.mu.Unlock()
			return
		}
		t := time.NewTimer(delay)
		select {
		case <-ctx.Done():
			t.Stop()
			return
		case <-t.C:
		}
		delay = min(delay*2, 2*time.Second)
	}
}

// runOnce runs a command to completion through the reaper and returns its status.
func (s *Supervisor) runOnce(args []string) int {
	path, err := exec.LookPath(args[0])
	if err != nil {
		return 127
	}
	s.rp.mu.Lock()
	p, err := os.StartProcess(path, args, &os.ProcAttr{Files: []*os.File{nil, nil, nil}})
	if err != nil {
		s.rp.mu.Unlock()
		return 126
	}
	done := make(chan syscall.WaitStatus, 1)
	s.rp.waiters[p.Pid] = done
	s.rp.mu.Unlock()
	return statusCode(<-done)
}

func (s *Supervisor) exited(ctx context.Context, v *service, p *os.Process, code int) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if v.proc != p {
		return
	}
	v.proc, v.pid, v.lastExit = nil, 0, code
	s.log.Info("service exited", "service", v.unit.Name, "exit", code)
	switch {
	case s.stopping || !v.wanted:
		v.state = StateStopped
	case v.unit.Oneshot && code == 0:
		v.state = StateSuccess
	case v.unit.Restart == "always" || (v.unit.Restart == "on-failure" && code != 0):
		v.state = StateBackoff
		v.restarts++
		delay := min(time.Duration(1<<min(v.restarts, 7))*50*time.Millisecond, 5*time.Second)
		fmt.Fprintf(s.out, "%s: exited with %d, restarting in %v\n", v.unit.Name, code, delay)
		time.AfterFunc(delay, func() {
			s.mu.Lock()
			defer s.mu.Unlock()
			if v.state == StateBackoff {
				v.state = StateBlocked
				s.notifyLocked()
			}
		})
	case code == 0:
		v.state = StateSuccess
	default:
		v.state = StateFailed
	}
	s.notifyLocked()
}

// shutdown stops every service: SIGTERM, then SIGKILL after 10 s.
func (s *Supervisor) shutdown() {
	s.mu.Lock()
	s.stopping = true
	var procs []*os.Process
	for _, v := range s.svcs {
		if v.proc != nil {
			procs = append(procs, v.proc)
		}
	}
	s.mu.Unlock()
	for _, p := range procs {
		p.Signal(unix.SIGTERM)
	}
	deadline := time.NewTimer(10 * time.Second)
	defer deadline.Stop()
	// The reaper is stopped with ctx; reap here until all are gone.
	for {
		s.rp.reapAll()
		s.mu.Lock()
		left := 0
		for _, v := range s.svcs {
			if v.proc != nil {
				left++
			}
		}
		ch := s.changed
		s.mu.Unlock()
		if left == 0 {
			return
		}
		select {
		case <-ch:
		case <-deadline.C:
			for _, p := range procs {
				p.Kill()
			}
		case <-time.After(50 * time.Millisecond):
		}
	}
}

// copyLines copies r to log unchanged and to out with "name: " before each line.
func copyLines(log io.Writer, out io.Writer, name string, r io.Reader) {
	buf := make([]byte, 32<<10)
	var partial []byte
	for {
		n, err := r.Read(buf)
		if n > 0 {
			log.Write(buf[:n])
			data := append(partial, buf[:n]...)
			for {
				i := strings.IndexByte(string(data), '\n')
				if i < 0 {
					break
				}
				fmt.Fprintf(out, "%s: %s\n", name, data[:i])
				data = data[i+1:]
			}
			partial = append([]byte(nil), data...)
		}
		if err != nil {
			if len(partial) > 0 {
				fmt.Fprintf(out, "%s: %s\n", name, partial)
			}
			return
		}
	}
}

// Exec replaces this process with args (looked up in PATH).
func Exec(args []string) error {
	if len(args) == 0 {
		return errors.New("supervise: no command")
	}
	path, err := exec.LookPath(args[0])
	if err != nil {
		return fmt.Errorf("supervise: %s: %w", args[0], err)
	}
	starttrace.Mark("init", "exec entrypoint")
	return fmt.Errorf("supervise: exec %s: %w", args[0], syscall.Exec(path, args, os.Environ()))
}
