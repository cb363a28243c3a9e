package flist

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"os"
	"sort"
	"strings"
	"sync"
	"syscall"
)

// ErrInvalid means a .fl file is not a well-formed flist.
var ErrInvalid = errors.New("flist: invalid flist")

// ErrNotFound means a looked-up entry does not exist.
var ErrNotFound = errors.New("flist: not found")

// FList is an open, read-only .fl file.
type FList struct {
	path   string
	db     *sql.DB
	tables map[string]bool
	ro     bool // opened read-only: the metadata hash is computed once

	hashMu sync.Mutex
	hash   *Hash
}

// Open opens a .fl file read-only and checks that it has the rfs tables and
// a root directory.
func Open(ctx context.Context, path string) (*FList, error) {
	return open(ctx, path, true)
}

func open(ctx context.Context, path string, ro bool) (*FList, error) {
	st, err := os.Stat(path)
	if err != nil {
		return nil, fmt.Errorf("flist: open: %w", err)
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%w: %s is not a regular file", ErrInvalid, path)
	}
	dsn := fileDSN(path) + "?_pragma=busy_timeout(5000)"
	if ro {
		dsn += "&mode=ro&_pragma=query_only(1)"
	}
	db, err := sql.Open("sqlite", dsn)
	if err != nil {
		return nil, fmt.Errorf("flist: open: %w", err)
	}
	db.SetMaxOpenConns(4)
	f := &FList{path: path, db: db, tables: map[string]bool{}, ro: ro}
	if err := f.check(ctx); err != nil {
		db.Close()
		return nil, err
	}
	return f, nil
}

func (f *FList) check(ctx context.Context) error {
	rows, err := f.db.QueryContext(ctx, "select name from sqlite_master where type = 'table'")
	if err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, f.path, err)
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		if err := rows.Scan(&name); err != nil {
			return fmt.Errorf("%w: %s: %v", ErrInvalid, f.path, err)
		}
		f.tables[name] = true
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("%w: %s: %v", ErrInvalid, f.path, err)
	}
	for _, t := range rfsTables {
		if !f.tables[t] {
			return fmt.Errorf("%w: %s: no %q table", ErrInvalid, f.path, t)
		}
	}
	root, err := f.Inode(ctx, RootIno)
	if err != nil {
		return fmt.Errorf("%w: %s: root: %v", ErrInvalid, f.path, err)
	}
	if !root.IsDir() || root.Parent != 0 {
		return fmt.Errorf("%w: %s: inode 1 is not a root directory", ErrInvalid, f.path)
	}
	return nil
}

// Path returns the file the flist was opened from.
func (f *FList) Path() string { return f.path }

// Close closes the database.
func (f *FList) Close() error { return f.db.Close() }

const inodeCols = "inode.ino, inode.parent, inode.name, inode.size, inode.uid, inode.gid, inode.mode, inode.rdev, inode.ctime, inode.mtime, extra.data"

type scanner interface{ Scan(...any) error }

func scanInode(s scanner) (Inode, error) {
	var (
		ino, parent, size, uid, gid, mode, rdev, ctime, mtime sql.NullInt64
		name                                                  sql.NullString
		data                                                  []byte
	)
	if err := s.Scan(&ino, &parent, &name, &size, &uid, &gid, &mode, &rdev, &ctime, &mtime, &data); err != nil {
		return Inode{}, err
	}
	in := Inode{
		Ino: uint64(ino.Int64), Parent: uint64(parent.Int64), Name: name.String,
		Size: uint64(size.Int64), UID: uint32(uid.Int64), GID: uint32(gid.Int64),
		Mode: uint32(mode.Int64), Rdev: uint64(rdev.Int64), Ctime: ctime.Int64, Mtime: mtime.Int64,
		Data: data,
	}
	if size.Int64 < 0 {
		return in, fmt.Errorf("%w: inode %d: negative size", ErrInvalid, in.Ino)
	}
	return in, nil
}

// Inode returns one inode with its extra data.
func (f *FList) Inode(ctx context.Context, ino uint64) (Inode, error) {
	row := f.db.QueryRowContext(ctx, "select "+inodeCols+" from inode left join extra on inode.ino = extra.ino where inode.ino = ?", int64(ino))
	in, err := scanInode(row)
	if errors.Is(err, sql.ErrNoRows) {
		return in, fmt.Errorf("%w: inode %d", ErrNotFound, ino)
	}
	if err != nil {
		return in, fmt.Errorf("flist: inode %d: %w", ino, err)
	}
	return in, nil
}

// Blocks returns ino's blocks in chunk order.
func (f *FList) Blocks(ctx context.Context, ino uint64) ([]Block, error) {
	rows, err := f.db.QueryContext(ctx, "select id, key from block where ino = ? order by rowid", int64(ino))
	if err != nil {
		return nil, fmt.Errorf("flist: blocks: %w", err)
	}
	defer rows.Close()
	var out []Block
	for rows.Next() {
		var id, k []byte
		if err := rows.Scan(&id, &k); err != nil {
			return nil, fmt.Errorf("flist: blocks: %w", err)
		}
		b, err := makeBlock(ino, id, k)
		if err != nil {
			return nil, err
		}
		out = append(out, b)
	}
	return out, rows.Err()
}

func makeBlock(ino uint64, id, k []byte) (Block, error) {
	var b Block
	if len(id) != len(b.ID) || len(k) != len(b.Key) {
		return b, fmt.Errorf("%w: inode %d: block id/key must be 32 bytes", ErrInvalid, ino)
	}
	copy(b.ID[:], id)
	copy(b.Key[:], k)
	return b, nil
}

// Tags returns every tag.
func (f *FList) Tags(ctx context.Context) (map[string]string, error) {
	rows, err := f.db.QueryContext(ctx, "select key, value from tag")
	if err != nil {
		return nil, fmt.Errorf("flist: tags: %w", err)
	}
	defer rows.Close()
	out := map[string]string{}
	for rows.Next() {
		var k, v sql.NullString
		if err := rows.Scan(&k, &v); err != nil {
			return nil, fmt.Errorf("flist: tags: %w", err)
		}
		out[k.String] = v.String
	}
	return out, rows.Err()
}

// Routes returns the route table in row order.
func (f *FList) Routes(ctx context.Context) ([]Route, error) {
	rows, err := f.db.QueryContext(ctx, "select start, end, url from route order by rowid")
	if err != nil {
		return nil, fmt.Errorf("flist: routes: %w", err)
	}
	defer rows.Close()
	var out []Route
	for rows.Next() {
		var s, e sql.NullInt64
		var u sql.NullString
		if err := rows.Scan(&s, &e, &u); err != nil {
			return nil, fmt.Errorf("flist: routes: %w", err)
		}
		if s.Int64 < 0 || s.Int64 > 255 || e.Int64 < 0 || e.Int64 > 255 {
			return nil, fmt.Errorf("%w: route range %d-%d", ErrInvalid, s.Int64, e.Int64)
		}
		out = append(out, Route{Start: uint8(s.Int64), End: uint8(e.Int64), URL: u.String})
	}
	return out, rows.Err()
}

// Meta returns a zos_meta value; ErrNotFound if unset.
func (f *FList) Meta(ctx context.Context, key string) ([]byte, error) {
	if !f.tables["zos_meta"] {
		return nil, fmt.Errorf("%w: meta %q", ErrNotFound, key)
	}
	var v []byte
	err := f.db.QueryRowContext(ctx, "select value from zos_meta where key = ?", key).Scan(&v)
	if errors.Is(err, sql.ErrNoRows) {
		return nil, fmt.Errorf("%w: meta %q", ErrNotFound, key)
	}
	if err != nil {
		return nil, fmt.Errorf("flist: meta: %w", err)
	}
	return v, nil
}

// ImageConfig returns the OCI image config stored by pack (JSON), or
// ErrNotFound.
func (f *FList) ImageConfig(ctx context.Context) ([]byte, error) {
	return f.Meta(ctx, MetaImageConfig)
}

// Signatures returns the signatures stored in the flist (not verified).
func (f *FList) Signatures(ctx context.Context) ([]Signature, error) {
	if !f.tables["zos_signature"] {
		return nil, nil
	}
	rows, err := f.db.QueryContext(ctx, "select pubkey, signature from zos_signature order by pubkey")
	if err != nil {
		return nil, fmt.Errorf("flist: signatures: %w", err)
	}
	defer rows.Close()
	var out []Signature
	for rows.Next() {
		var pk, sig []byte
		if err := rows.Scan(&pk, &sig); err != nil {
			return nil, fmt.Errorf("flist: signatures: %w", err)
		}
		var s Signature
		if len(pk) != len(s.PublicKey) {
			return nil, fmt.Errorf("%w: signature public key must be 32 bytes", ErrInvalid)
		}
		copy(s.PublicKey[:], pk)
		s.Sig = sig
		out = append(out, s)
	}
	return out, rows.Err()
}

// Tree is the whole metadata of an flist in memory, checked for
// consistency: what mount, unpack and inspect work from.
type Tree struct {
	Inodes    map[uint64]*Inode
	Children  map[uint64][]uint64 // sorted by name
	Blocks    map[uint64][]Block
	Xattrs    map[uint64][]Xattr
	HardLinks map[uint64]uint64 // ino -> target ino
}

// Tree loads and checks every inode, block, xattr and hard link.
func (f *FList) Tree(ctx context.Context) (*Tree, error) {
	t := &Tree{
		Inodes:    map[uint64]*Inode{},
		Children:  map[uint64][]uint64{},
		Blocks:    map[uint64][]Block{},
		Xattrs:    map[uint64][]Xattr{},
		HardLinks: map[uint64]uint64{},
	}
	rows, err := f.db.QueryContext(ctx, "select "+inodeCols+" from inode left join extra on inode.ino = extra.ino order by inode.ino")
	if err != nil {
		return nil, fmt.Errorf("flist: tree: %w", err)
	}
	for rows.Next() {
		in, err := scanInode(rows)
		if err != nil {
			rows.Close()
			return nil, fmt.Errorf("flist: tree: %w", err)
		}
		t.Inodes[in.Ino] = &in
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("flist: tree: %w", err)
	}
	rows, err = f.db.QueryContext(ctx, "select ino, id, key from block order by ino, rowid")
	if err != nil {
		return nil, fmt.Errorf("flist: tree: %w", err)
	}
	for rows.Next() {
		var ino int64
		var id, k []byte
		if err := rows.Scan(&ino, &id, &k); err != nil {
			rows.Close()
			return nil, fmt.Errorf("flist: tree: %w", err)
		}
		b, err := makeBlock(uint64(ino), id, k)
		if err != nil {
			rows.Close()
			return nil, err
		}
		t.Blocks[uint64(ino)] = append(t.Blocks[uint64(ino)], b)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("flist: tree: %w", err)
	}
	if f.tables["zos_xattr"] {
		rows, err = f.db.QueryContext(ctx, "select ino, name, value from zos_xattr order by ino, name")
		if err != nil {
			return nil, fmt.Errorf("flist: tree: %w", err)
		}
		for rows.Next() {
			var ino int64
			var x Xattr
			if err := rows.Scan(&ino, &x.Name, &x.Value); err != nil {
				rows.Close()
				return nil, fmt.Errorf("flist: tree: %w", err)
			}
			t.Xattrs[uint64(ino)] = append(t.Xattrs[uint64(ino)], x)
		}
		rows.Close()
	}
	if f.tables["zos_hardlink"] {
		rows, err = f.db.QueryContext(ctx, "select ino, target from zos_hardlink")
		if err != nil {
			return nil, fmt.Errorf("flist: tree: %w", err)
		}
		for rows.Next() {
			var ino, target int64
			if err := rows.Scan(&ino, &target); err != nil {
				rows.Close()
				return nil, fmt.Errorf("flist: tree: %w", err)
			}
			t.HardLinks[uint64(ino)] = uint64(target)
		}
		rows.Close()
	}
	if err := t.check(); err != nil {
		return nil, err
	}
	return t, nil
}

// check enforces what readers rely on: a root directory, every other inode
// in an existing directory under a valid, unique name, block lists that
// cover exactly the size, and hard links to regular files.
func (t *Tree) check() error {
	root, ok := t.Inodes[RootIno]
	if !ok || !root.IsDir() || root.Parent != 0 {
		return fmt.Errorf("%w: no root directory", ErrInvalid)
	}
	names := map[uint64]map[string]bool{}
	for ino, in := range t.Inodes {
		if ino == RootIno {
			continue
		}
		p, ok := t.Inodes[in.Parent]
		if !ok || !p.IsDir() || in.Parent == ino {
			return fmt.Errorf("%w: inode %d (%q): parent %d is not a directory", ErrInvalid, ino, in.Name, in.Parent)
		}
		if in.Name == "" || in.Name == "." || in.Name == ".." || strings.ContainsAny(in.Name, "/\x00") || len(in.Name) > 255 {
			return fmt.Errorf("%w: inode %d: bad name %q", ErrInvalid, ino, in.Name)
		}
		if names[in.Parent] == nil {
			names[in.Parent] = map[string]bool{}
		}
		if names[in.Parent][in.Name] {
			return fmt.Errorf("%w: duplicate name %q in directory %d", ErrInvalid, in.Name, in.Parent)
		}
		names[in.Parent][in.Name] = true
		t.Children[in.Parent] = append(t.Children[in.Parent], ino)
		switch in.Type() {
		case syscall.S_IFREG, syscall.S_IFDIR, syscall.S_IFLNK, syscall.S_IFCHR, syscall.S_IFBLK, syscall.S_IFIFO, syscall.S_IFSOCK:
		default:
			return fmt.Errorf("%w: inode %d (%q): unknown file type %o", ErrInvalid, ino, in.Name, in.Type())
		}
	}
	for ino, bl := range t.Blocks {
		in, ok := t.Inodes[ino]
		if !ok || !in.IsRegular() {
			return fmt.Errorf("%w: blocks for inode %d, which is not a regular file", ErrInvalid, ino)
		}
		_ = bl
	}
	for ino, in := range t.Inodes {
		if !in.IsRegular() {
			continue
		}
		n := uint64(len(t.Blocks[ino]))
		if in.Size > n*BlockSize || (n > 0 && in.Size <= (n-1)*BlockSize) {
			return fmt.Errorf("%w: inode %d (%q): size %d does not match %d blocks", ErrInvalid, ino, in.Name, in.Size, n)
		}
	}
	for ino, target := range t.HardLinks {
		a, ok1 := t.Inodes[ino]
		b, ok2 := t.Inodes[target]
		if !ok1 || !ok2 || !a.IsRegular() || !b.IsRegular() || ino == target {
			return fmt.Errorf("%w: bad hard link %d -> %d", ErrInvalid, ino, target)
		}
		if _, chained := t.HardLinks[target]; chained {
			return fmt.Errorf("%w: hard link %d -> %d points at another link", ErrInvalid, ino, target)
		}
	}
	for _, kids := range t.Children {
		sort.Slice(kids, func(i, j int) bool { return t.Inodes[kids[i]].Name < t.Inodes[kids[j]].Name })
	}
	return nil
}

// Walk visits every inode depth-first in name order, with its path
// relative to the root ("" for the root itself, then "etc", "etc/hosts").
func (t *Tree) Walk(fn func(path string, in *Inode) error) error {
	return t.walk("", RootIno, fn)
}

func (t *Tree) walk(path string, ino uint64, fn func(string, *Inode) error) error {
	if err := fn(path, t.Inodes[ino]); err != nil {
		return err
	}
	for _, c := range t.Children[ino] {
		p := t.Inodes[c].Name
		if path != "" {
			p = path + "/" + p
		}
		if err := t.walk(p, c, fn); err != nil {
			return err
		}
	}
	return nil
}

// fileDSN turns a path into an SQLite file: URI, escaping the characters
// that would otherwise start a query or fragment.
func fileDSN(path string) string {
	r := strings.NewReplacer("%", "%25", "?", "%3f", "#", "%23")
	return "file:" + r.Replace(path)
}
