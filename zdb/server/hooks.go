package server

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zosgrid/zos/zdb"
)

// hooks runs the --hook executable (no shell) as
// "hook <event> <instance-id> <args...>" and remembers recent runs for the
// HOOKS command.
type hooks struct {
	path string
	id   string
	log  *slog.Logger

	mu     sync.Mutex
	recent []*hookRun
	wg     sync.WaitGroup
}

type hookRun struct {
	event    string
	args     []string
	pid      int
	created  int64
	finished int64
	status   int
}

const hookKeep = 60 * time.Second

func newHooks(path string, id uint32, log *slog.Logger) *hooks {
	return &hooks{path: path, id: strconv.FormatUint(uint64(id), 10), log: log}
}

// ctxBackground is the server's lifetime context (set by Serve): hooks and
// compactions started by commands end with the server.
func (s *Server) ctxBackground() context.Context {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.baseCtx == nil {
		return context.Background()
	}
	return s.baseCtx
}

// run starts the hook for event. When wait is set it blocks and returns an
// error if the hook fails; otherwise the hook runs in the background.
func (h *hooks) run(ctx context.Context, wait bool, event string, args ...string) error {
	if h.path == "" {
		return nil
	}
	argv := append([]string{event, h.id}, args...)
	cmd := exec.CommandContext(ctx, h.path, argv...)
	if err := cmd.Start(); err != nil {
		h.log.Error("zdb hook failed to start", "event", event, "err", err)
		return err
	}
	r := &hookRun{event: event, args: args, pid: cmd.Process.Pid, created: time.Now().Unix()}
	h.mu.Lock()
	cut := 0
	for cut < len(h.recent) && h.recent[cut].finished != 0 && time.Since(time.Unix(h.recent[cut].finished, 0)) > hookKeep {
		cut++
	}
	h.recent = append(h.recent[cut:], r)
	h.mu.Unlock()
	finish := func() error {
		err := cmd.Wait()
		h.mu.Lock()
		r.finished = time.Now().Unix()
		r.status = cmd.ProcessState.ExitCode()
		h.mu.Unlock()
		return err
	}
	if wait {
		if err := finish(); err != nil {
			return fmt.Errorf("hook %s: %w", event, err)
		}
		return nil
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if err := finish(); err != nil {
			h.log.Warn("zdb hook failed", "event", event, "err", err)
		}
	}()
	return nil
}

func (h *hooks) wait() { h.wg.Wait() }

// JumpHook fires 0-db's jump-index and jump-data hooks for a rotation; pass
// it as zdb.Options.OnJump. jump-index gets the dirty index files as 0-db
// prints them ("0 3 4") and, once it exits 0, they are reset as in 0-db.
// Unlike 0-db, the hooks run in the background: writes do not wait.
func (s *Server) JumpHook(j zdb.Jump) {
	ctx := s.ctxBackground()
	dirty := make([]string, len(j.Dirty))
	for i, id := range j.Dirty {
		dirty[i] = strconv.FormatUint(uint64(id), 10)
	}
	s.hooks.runThen(ctx, j.ResetDirty, "jump-index", j.OldIndex, j.NewIndex, strings.Join(dirty, " "))
	s.hooks.run(ctx, false, "jump-data", j.OldData, j.NewData)
}

// runThen runs the hook in the background and calls then, if set, once it
// succeeded. Without a hook nothing runs and then is not called.
func (h *hooks) runThen(ctx context.Context, then func(), event string, args ...string) {
	if h.path == "" {
		return
	}
	h.wg.Add(1)
	go func() {
		defer h.wg.Done()
		if h.run(ctx, true, event, args...) == nil && then != nil {
			then()
		}
	}()
}

// MissingDataHook runs 0-db's blocking missing-data hook for a data file a
// read needs and cannot find; pass it as zdb.Options.MissingData. The hook
// restores the file and exits 0, or fails.
func (s *Server) MissingDataHook(_, path string) error {
	if s.hooks.path == "" {
		return errors.New("no hook to restore it")
	}
	return s.hooks.run(s.ctxBackground(), true, "missing-data", path)
}

func cmdHooks(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) {
		return true
	}
	h := s.hooks
	h.mu.Lock()
	defer h.mu.Unlock()
	c.w.Array(len(h.recent))
	for _, r := range h.recent {
		c.w.Array(6)
		c.w.BulkString(r.event)
		c.w.Array(len(r.args))
		for _, a := range r.args {
			c.w.BulkString(a)
		}
		c.w.Int(int64(r.pid))
		c.w.Int(r.created)
		c.w.Int(r.finished)
		c.w.Int(int64(r.status))
	}
	return true
}
