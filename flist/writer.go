package flist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"

	_ "modernc.org/sqlite" // the "sqlite" database/sql driver
)

// Writer builds a new .fl file. All rows go into one transaction in a
// temporary file next to the target; Commit renames it into place, so a
// failed pack never leaves a half-written flist or clobbers an old one.
// A Writer is safe for concurrent use.
type Writer struct {
	mu    sync.Mutex
	path  string
	tmp   string
	db    *sql.DB
	tx    *sql.Tx
	inode *sql.Stmt
	extra *sql.Stmt
	block *sql.Stmt
	done  bool
}

// Create starts a new flist that Commit will write to path.
func Create(ctx context.Context, path string) (*Writer, error) {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return nil, fmt.Errorf("flist: create: %w", err)
	}
	tmp := f.Name()
	f.Close()
	w := &Writer{path: path, tmp: tmp}
	if err := w.init(ctx); err != nil {
		w.Abort()
		return nil, err
	}
	return w, nil
}

func (w *Writer) init(ctx context.Context) error {
	db, err := sql.Open("sqlite", "file:"+w.tmp+"?_pragma=journal_mode(DELETE)&_pragma=synchronous(OFF)")
	if err != nil {
		return fmt.Errorf("flist: create: %w", err)
	}
	db.SetMaxOpenConns(1)
	w.db = db
	if _, err := db.ExecContext(ctx, rfsSchema+zosSchema); err != nil {
		return fmt.Errorf("flist: create schema: %w", err)
	}
	if w.tx, err = db.BeginTx(ctx, nil); err != nil {
		return fmt.Errorf("flist: create: %w", err)
	}
	prep := func(q string) *sql.Stmt {
		if err != nil {
			return nil
		}
		var s *sql.Stmt
		s, err = w.tx.PrepareContext(ctx, q)
		return s
	}
	w.inode = prep("insert into inode (parent, name, size, uid, gid, mode, rdev, ctime, mtime) values (?, ?, ?, ?, ?, ?, ?, ?, ?)")
	w.extra = prep("insert into extra (ino, data) values (?, ?)")
	w.block = prep("insert into block (ino, id, key) values (?, ?, ?)")
	if err != nil {
		return fmt.Errorf("flist: create: %w", err)
	}
	return nil
}

// AddInode inserts in (its Ino is ignored) and returns the new inode
// number. The first inode added must be the root: parent 0, name "/".
func (w *Writer) AddInode(ctx context.Context, in Inode) (uint64, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return 0, errWriterDone
	}
	res, err := w.inode.ExecContext(ctx, int64(in.Parent), in.Name, int64(in.Size), in.UID, in.GID, in.Mode, int64(in.Rdev), in.Ctime, in.Mtime)
	if err != nil {
		return 0, fmt.Errorf("flist: add inode %q: %w", in.Name, err)
	}
	ino, err := res.LastInsertId()
	if err != nil {
		return 0, fmt.Errorf("flist: add inode %q: %w", in.Name, err)
	}
	if in.Data != nil {
		if _, err := w.extra.ExecContext(ctx, ino, in.Data); err != nil {
			return 0, fmt.Errorf("flist: add extra %q: %w", in.Name, err)
		}
	}
	return uint64(ino), nil
}

// SetSize updates the size of an inode (pack learns it while reading).
func (w *Writer) SetSize(ctx context.Context, ino, size uint64) error {
	return w.exec(ctx, "update inode set size = ? where ino = ?", int64(size), int64(ino))
}

// UpdateAttrs rewrites the attributes (size, owner, mode, rdev, times) of
// an existing inode, for a directory whose tar entry comes after its
// children.
func (w *Writer) UpdateAttrs(ctx context.Context, ino uint64, in Inode) error {
	return w.exec(ctx, "update inode set size = ?, uid = ?, gid = ?, mode = ?, rdev = ?, ctime = ?, mtime = ? where ino = ?",
		int64(in.Size), in.UID, in.GID, in.Mode, int64(in.Rdev), in.Ctime, in.Mtime, int64(ino))
}

// AddBlocks appends blocks to ino's block list, in order.
func (w *Writer) AddBlocks(ctx context.Context, ino uint64, blocks []Block) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errWriterDone
	}
	for _, b := range blocks {
		if _, err := w.block.ExecContext(ctx, int64(ino), b.ID[:], b.Key[:]); err != nil {
			return fmt.Errorf("flist: add block: %w", err)
		}
	}
	return nil
}

// AddXattr records an extended attribute of ino.
func (w *Writer) AddXattr(ctx context.Context, ino uint64, x Xattr) error {
	return w.exec(ctx, "insert or replace into zos_xattr (ino, name, value) values (?, ?, ?)", int64(ino), x.Name, nonNil(x.Value))
}

// AddHardLink records that ino is a hard link to target.
func (w *Writer) AddHardLink(ctx context.Context, ino, target uint64) error {
	return w.exec(ctx, "insert or replace into zos_hardlink (ino, target) values (?, ?)", int64(ino), int64(target))
}

// SetTag sets a tag (rfs keys: version, description, author).
func (w *Writer) SetTag(ctx context.Context, key, value string) error {
	return w.exec(ctx, "insert or replace into tag (key, value) values (?, ?)", key, value)
}

// AddRoute appends a store route.
func (w *Writer) AddRoute(ctx context.Context, r Route) error {
	return w.exec(ctx, "insert into route (start, end, url) values (?, ?, ?)", int(r.Start), int(r.End), r.URL)
}

// SetMeta stores an opaque metadata value (see MetaImageConfig).
func (w *Writer) SetMeta(ctx context.Context, key string, value []byte) error {
	return w.exec(ctx, "insert or replace into zos_meta (key, value) values (?, ?)", key, nonNil(value))
}

func (w *Writer) exec(ctx context.Context, q string, args ...any) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errWriterDone
	}
	if _, err := w.tx.ExecContext(ctx, q, args...); err != nil {
		return fmt.Errorf("flist: write: %w", err)
	}
	return nil
}

var errWriterDone = errors.New("flist: writer already committed or aborted")

// Commit writes the flist to its path.
func (w *Writer) Commit() error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return errWriterDone
	}
	w.done = true
	err := w.tx.Commit()
	if cerr := w.db.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(w.tmp, 0o644)
	}
	if err == nil {
		err = os.Rename(w.tmp, w.path)
	}
	if err != nil {
		os.Remove(w.tmp)
		return fmt.Errorf("flist: commit %s: %w", w.path, err)
	}
	return nil
}

// Abort discards everything written. It is safe after Commit (no-op).
func (w *Writer) Abort() {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.done {
		return
	}
	w.done = true
	if w.tx != nil {
		w.tx.Rollback()
	}
	if w.db != nil {
		w.db.Close()
	}
	os.Remove(w.tmp)
}

func nonNil(b []byte) []byte {
	if b == nil {
		return []byte{}
	}
	return b
}
