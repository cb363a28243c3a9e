package container

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"
	"time"
)

// Default log rotation.
const (
	defaultLogMax  = 8 << 20
	defaultLogKeep = 3
)

// RotatingWriter appends to a log file and rotates it when it grows past
// max bytes: path → path.1 → … → path.keep (the oldest is dropped).
// Writers that hold the file open with O_APPEND (a detached container's
// stdout) keep working across a rotation, which copies and truncates.
type RotatingWriter struct {
	mu   sync.Mutex
	path string
	max  int64
	keep int
	f    *os.File
	size int64
}

// NewRotatingWriter opens (or creates) path for appending.
func NewRotatingWriter(path string, max int64, keep int) (*RotatingWriter, error) {
	if max <= 0 {
		max = defaultLogMax
	}
	if keep <= 0 {
		keep = defaultLogKeep
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_APPEND|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("container: log: %w", err)
	}
	st, err := f.Stat()
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("container: log: %w", err)
	}
	return &RotatingWriter{path: path, max: max, keep: keep, f: f, size: st.Size()}, nil
}

// Write appends p, rotating first if p would not fit.
func (w *RotatingWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return 0, os.ErrClosed
	}
	if w.size > 0 && w.size+int64(len(p)) > w.max {
		if err := w.rotateLocked(); err != nil {
			return 0, err
		}
	}
	n, err := w.f.Write(p)
	w.size += int64(n)
	return n, err
}

// rotateLocked shifts the old files and moves the current content to
// path.1 by copying and truncating, so other appenders are not lost.
func (w *RotatingWriter) rotateLocked() error {
	for i := w.keep - 1; i >= 1; i-- {
		os.Rename(w.path+"."+strconv.Itoa(i), w.path+"."+strconv.Itoa(i+1))
	}
	src, err := os.Open(w.path)
	if err != nil {
		return fmt.Errorf("container: rotate: %w", err)
	}
	defer src.Close()
	dst, err := os.OpenFile(w.path+".1", os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("container: rotate: %w", err)
	}
	if _, err := io.Copy(dst, src); err != nil {
		dst.Close()
		return fmt.Errorf("container: rotate: %w", err)
	}
	if err := dst.Close(); err != nil {
		return fmt.Errorf("container: rotate: %w", err)
	}
	if err := w.f.Truncate(0); err != nil {
		return fmt.Errorf("container: rotate: %w", err)
	}
	w.size = 0
	return nil
}

// rotateLoop rotates the file when other writers grew it past max.
func (w *RotatingWriter) rotateLoop(stop <-chan struct{}) {
	t := time.NewTicker(time.Second)
	defer t.Stop()
	for {
		select {
		case <-stop:
			return
		case <-t.C:
		}
		w.mu.Lock()
		if w.f != nil {
			if st, err := w.f.Stat(); err == nil {
				w.size = st.Size()
				if w.size > w.max {
					w.rotateLocked()
				}
			}
		}
		w.mu.Unlock()
	}
}

// Close closes the file.
func (w *RotatingWriter) Close() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.f == nil {
		return nil
	}
	err := w.f.Close()
	w.f = nil
	return err
}

// Logs writes the container's log (rotated files first, oldest first) to
// out. With follow it keeps copying new output until ctx is done or the
// container has exited and its output is drained.
func (r *Runtime) Logs(ctx context.Context, id string, out io.Writer, follow bool) error {
	c, err := r.loadConfig(id)
	if err != nil {
		return err
	}
	keep := c.LogKeep
	if keep <= 0 {
		keep = defaultLogKeep
	}
	p := r.logPath(id)
	for i := keep; i >= 1; i-- {
		if err := copyFile(out, p+"."+strconv.Itoa(i)); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	f, err := os.Open(p)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("container: logs: %w", err)
	}
	defer f.Close()
	br := bufio.NewReader(f)
	var off int64
	for {
		n, err := io.Copy(out, br)
		off += n
		if err != nil {
			return fmt.Errorf("container: logs: %w", err)
		}
		if !follow {
			return nil
		}
		if st, err := os.Stat(p); err == nil && st.Size() < off { // rotated
			f.Seek(0, io.SeekStart)
			br.Reset(f)
			off = 0
			continue
		}
		info, err := r.Inspect(ctx, id)
		if err != nil {
			return err
		}
		if info.Status.State == StateExited && !info.Supervised {
			io.Copy(out, br)
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(100 * time.Millisecond):
		}
	}
}

func copyFile(out io.Writer, path string) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = io.Copy(out, f)
	return err
}
