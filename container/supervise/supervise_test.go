package supervise

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
)

type buf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (b *buf) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.Write(p)
}

func (b *buf) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.b.String()
}

func state(s *Supervisor, name string) ServiceStatus {
	for _, st := range s.Status() {
		if st.Name == name {
			return st
		}
	}
	return ServiceStatus{}
}

func TestServicesOrderRestartAndLogs(t *testing.T) {
	sh := zostest.RequiresBinary(t, "sh")
	dir := t.TempDir()
	marker := filepath.Join(dir, "setup-done")
	units := []Unit{
		// a oneshot that must finish before the others start
		{Name: "setup", Exec: fmt.Sprintf("%s -c 'echo setting up; touch %s'", sh, marker), Oneshot: true, Restart: "no"},
		// a service that crashes every time: restarted with backoff
		{Name: "crashy", Exec: fmt.Sprintf("%s -c 'test -e %s && echo crash; exit 3'", sh, marker), After: []string{"setup"}, Restart: "always"},
		// a long-running service with a readiness test
		{Name: "server", Exec: fmt.Sprintf("%s -c 'echo serving; exec sleep 60'", sh), After: []string{"setup"}, Test: sh + " -c true", Restart: "always"},
		{Name: "last", Exec: sh + " -c 'echo last ran'", After: []string{"server"}, Oneshot: true, Restart: "no"},
	}
	var out buf
	s, err := New(units, filepath.Join(dir, "logs"), &out, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	zostest.WaitFor(t, 20*time.Second, func() error {
		if st := state(s, "crashy"); st.Restarts < 2 {
			return fmt.Errorf("crashy restarted %d times", st.Restarts)
		}
		if st := state(s, "server"); st.State != StateRunning {
			return fmt.Errorf("server is %s", st.State)
		}
		if st := state(s, "last"); st.State != StateSuccess {
			return fmt.Errorf("last is %s", st.State)
		}
		return nil
	})
	if st := state(s, "setup"); st.State != StateSuccess {
		t.Errorf("setup %+v", st)
	}
	if st := state(s, "crashy"); st.LastExit != 3 {
		t.Errorf("crashy last exit %d", st.LastExit)
	}
	// crashy only ran after setup: every run printed "crash".
	b, err := os.ReadFile(filepath.Join(dir, "logs", "crashy.log"))
	if err != nil || !strings.HasPrefix(string(b), "crash\ncrash\n") {
		t.Errorf("crashy log %q %v", b, err)
	}
	if !strings.Contains(out.String(), "server: serving\n") || !strings.Contains(out.String(), "setup: setting up\n") {
		t.Errorf("prefixed output %q", out.String())
	}
	// stop and restart a service through the API
	if err := s.Stop("server"); err != nil {
		t.Fatal(err)
	}
	zostest.WaitFor(t, 20*time.Second, func() error {
		if st := state(s, "server"); st.State != StateStopped {
			return fmt.Errorf("server is %s", st.State)
		}
		return nil
	})
	if err := s.Start("server"); err != nil {
		t.Fatal(err)
	}
	zostest.WaitFor(t, 20*time.Second, func() error {
		if st := state(s, "server"); st.State != StateRunning {
			return fmt.Errorf("server is %s", st.State)
		}
		return nil
	})
	if err := s.Stop("nope"); err == nil {
		t.Error("stop of unknown service succeeded")
	}
	cancel()
	select {
	case err := <-done:
		if err != nil {
			t.Fatal(err)
		}
	case <-time.After(30 * time.Second):
		t.Fatal("supervisor did not stop")
	}
	for _, st := range s.Status() {
		if st.Pid != 0 {
			t.Errorf("%s still has pid %d after shutdown", st.Name, st.Pid)
		}
	}
}

func TestReapsOrphans(t *testing.T) {
	sh := zostest.RequiresBinary(t, "sh")
	// The service leaves an orphan that exits later: as subreaper we reap it.
	units := []Unit{{Name: "parent", Exec: sh + " -c '(sleep 0.1; exit 0) & exit 0'", Oneshot: true, Restart: "no"}}
	s, err := New(units, t.TempDir(), nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go s.Run(ctx)
	zostest.WaitFor(t, 20*time.Second, func() error {
		if n := s.rp.Reaped(); n < 2 {
			return errors.New("orphan not reaped yet")
		}
		return nil
	})
}

// The caller's context may end on the SIGTERM that RunEntrypoint forwards
// (zos's main cancels it then): the entrypoint's exit must still be
// collected and returned.
func TestRunEntrypointOutlivesContext(t *testing.T) {
	zostest.RequiresBinary(t, "sh")
	ctx, cancel := context.WithCancel(context.Background())
	type result struct {
		code int
		err  error
	}
	done := make(chan result, 1)
	go func() {
		code, err := RunEntrypoint(ctx, []string{"sh", "-c", "sleep 0.3; exit 3"})
		done <- result{code, err}
	}()
	cancel()
	select {
	case r := <-done:
		if r.code != 3 || r.err != nil {
			t.Errorf("exit %d %v, want 3", r.code, r.err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the entrypoint's exit was never collected once the context ended")
	}
}
