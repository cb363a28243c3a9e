package supervise

import (
	"context"
	"os"
	"os/signal"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// reaper collects every child's exit status with wait4(-1): as PID 1 (or a
// subreaper) orphans are ours too. Processes started by the supervisor
// register their pid to get their status; others are just reaped.
type reaper struct {
	mu      sync.Mutex
	waiters map[int]chan syscall.WaitStatus
	early   map[int]syscall.WaitStatus // exited before registering
	reaped  uint64
}

func newReaper() *reaper {
	return &reaper{waiters: map[int]chan syscall.WaitStatus{}, early: map[int]syscall.WaitStatus{}}
}

// run reaps on every SIGCHLD until ctx is done.
func (r *reaper) run(ctx context.Context) {
	ch := make(chan os.Signal, 16)
	signal.Notify(ch, unix.SIGCHLD)
	defer signal.Stop(ch)
	for {
		r.reapAll()
		select {
		case <-ctx.Done():
			return
		case <-ch:
		}
	}
}

func (r *reaper) reapAll() {
	for {
		var ws syscall.WaitStatus
		pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
		if err == syscall.EINTR {
			continue
		}
		if err != nil || pid <= 0 {
			return
		}
		r.mu.Lock()
		r.reaped++
		if c, ok := r.waiters[pid]; ok {
			delete(r.waiters, pid)
			c <- ws
		} else {
			r.early[pid] = ws
			if len(r.early) > 4096 { // orphans nobody waits for
				clear(r.early)
			}
		}
		r.mu.Unlock()
	}
}

// wait returns a channel that receives pid's exit status. Register right
// after starting the process: a status reaped before that is kept.
func (r *reaper) wait(pid int) <-chan syscall.WaitStatus {
	c := make(chan syscall.WaitStatus, 1)
	r.mu.Lock()
	defer r.mu.Unlock()
	if ws, ok := r.early[pid]; ok {
		delete(r.early, pid)
		c <- ws
		return c
	}
	r.waiters[pid] = c
	return c
}

// Reaped is how many children have been reaped (orphans included).
func (r *reaper) Reaped() uint64 {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.reaped
}

func statusCode(ws syscall.WaitStatus) int {
	if ws.Signaled() {
		return 128 + int(ws.Signal())
	}
	return ws.ExitStatus()
}
