package store

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sync/atomic"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/internal/regfile"
)

// Dir stores blocks as files under a root directory, in rfs's layout.
type Dir struct {
	root   string
	closed atomic.Bool
}

// NewDir opens (and creates) a directory store.
func NewDir(root string) (*Dir, error) {
	if root == "" {
		return nil, fmt.Errorf("%w: dir store needs a path", ErrBadURL)
	}
	if err := os.MkdirAll(root, 0o755); err != nil {
		return nil, fmt.Errorf("store: dir: %w", err)
	}
	return &Dir{root: root}, nil
}

// Root returns the store's directory.
func (d *Dir) Root() string { return d.root }

// Path returns where block id lives.
func (d *Dir) Path(id flist.ID) string {
	h := id.String()
	return filepath.Join(d.root, h[:2], h)
}

// Get implements Store.
func (d *Dir) Get(_ context.Context, id flist.ID) ([]byte, error) {
	if d.closed.Load() {
		return nil, ErrClosed
	}
	b, err := regfile.ReadFile(d.Path(id), maxBlock)
	if errors.Is(err, fs.ErrNotExist) {
		b, err = regfile.ReadFile(filepath.Join(d.root, id.String()), maxBlock)
	}
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	}
	if err != nil {
		return nil, fmt.Errorf("store: dir get: %w", err)
	}
	return checkGet(id, b)
}

// Has implements Store.
func (d *Dir) Has(_ context.Context, id flist.ID) (bool, error) {
	if d.closed.Load() {
		return false, ErrClosed
	}
	_, err := os.Stat(d.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		_, err = os.Stat(filepath.Join(d.root, id.String()))
	}
	if errors.Is(err, fs.ErrNotExist) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("store: dir has: %w", err)
	}
	return true, nil
}

// Set implements Store: it writes a temporary file and renames it, so a
// reader never sees a partial block.
func (d *Dir) Set(_ context.Context, id flist.ID, data []byte) error {
	if d.closed.Load() {
		return ErrClosed
	}
	if !flist.CheckID(id, data) {
		return errCorrupt(id)
	}
	p := d.Path(id)
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		return fmt.Errorf("store: dir set: %w", err)
	}
	f, err := os.CreateTemp(filepath.Dir(p), ".tmp-*")
	if err != nil {
		return fmt.Errorf("store: dir set: %w", err)
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(f.Name(), 0o644)
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		os.Remove(f.Name())
		return fmt.Errorf("store: dir set: %w", err)
	}
	return nil
}

// Close implements Store.
func (d *Dir) Close() error {
	d.closed.Store(true)
	return nil
}
