package pack

import (
	"archive/tar"
	"context"
	"errors"
	"fmt"
	"io"
	"path"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
)

// Tar packs a tar stream (for example an image's merged layers) into the
// flist out. Entries may come in any order; missing parent directories are
// created with mode 0755, and a directory entry seen later sets their
// attributes. Hard links must point at a regular file seen before them.
func Tar(ctx context.Context, r io.Reader, out string, opts Options) (Stats, error) {
	return run(ctx, out, opts, func(b *builder) error {
		t := &tarWalker{b: b, paths: map[string]tarEntry{}}
		return t.walk(tar.NewReader(r))
	})
}

type tarEntry struct {
	ino      uint64
	typ      uint32
	explicit bool // seen as its own entry (not implied by a child)
}

type tarWalker struct {
	b     *builder
	paths map[string]tarEntry
}

func cleanTarPath(name string) (string, error) {
	p := path.Clean("/" + name)
	if strings.Contains(name, "\x00") {
		return "", fmt.Errorf("%w: NUL in tar entry name", ErrBadInput)
	}
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: tar entry %q escapes the root", ErrBadInput, name)
		}
	}
	return p, nil
}

func (t *tarWalker) walk(tr *tar.Reader) error {
	b := t.b
	root, err := b.w.AddInode(b.ctx, flist.Inode{Name: "/", Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		return err
	}
	t.paths["/"] = tarEntry{ino: root, typ: syscall.S_IFDIR}
	b.count(func(s *Stats) { s.Dirs++ })
	for {
		if err := b.ctx.Err(); err != nil {
			return err
		}
		h, err := tr.Next()
		if err == io.EOF {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w: tar: %v", ErrBadInput, err)
		}
		if err := t.entry(tr, h); err != nil {
			return err
		}
	}
}

func (t *tarWalker) parent(p string) (uint64, error) {
	dir := path.Dir(p)
	if e, ok := t.paths[dir]; ok {
		if e.typ != syscall.S_IFDIR {
			return 0, fmt.Errorf("%w: %s: parent is not a directory", ErrBadInput, p)
		}
		return e.ino, nil
	}
	pp, err := t.parent(dir)
	if err != nil {
		return 0, err
	}
	ino, err := t.b.w.AddInode(t.b.ctx, flist.Inode{Parent: pp, Name: path.Base(dir), Mode: syscall.S_IFDIR | 0o755})
	if err != nil {
		return 0, err
	}
	t.paths[dir] = tarEntry{ino: ino, typ: syscall.S_IFDIR}
	t.b.count(func(s *Stats) { s.Dirs++ })
	return ino, nil
}

func (t *tarWalker) entry(tr *tar.Reader, h *tar.Header) error {
	b := t.b
	p, err := cleanTarPath(h.Name)
	if err != nil {
		return err
	}
	in := flist.Inode{
		Name: path.Base(p), UID: uint32(h.Uid), GID: uint32(h.Gid),
		Mode:  uint32(h.Mode) & 0o7777,
		Mtime: h.ModTime.Unix(), Ctime: h.ChangeTime.Unix(),
	}
	if h.ChangeTime.IsZero() {
		in.Ctime = in.Mtime
	}
	var typ uint32
	switch h.Typeflag {
	case tar.TypeReg, tar.TypeRegA:
		typ = syscall.S_IFREG
		in.Size = uint64(h.Size)
	case tar.TypeDir:
		typ = syscall.S_IFDIR
	case tar.TypeSymlink:
		typ = syscall.S_IFLNK
		in.Data = []byte(h.Linkname)
		in.Size = uint64(len(h.Linkname))
	case tar.TypeChar:
		typ = syscall.S_IFCHR
		in.Rdev = unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
	case tar.TypeBlock:
		typ = syscall.S_IFBLK
		in.Rdev = unix.Mkdev(uint32(h.Devmajor), uint32(h.Devminor))
	case tar.TypeFifo:
		typ = syscall.S_IFIFO
	case tar.TypeLink:
		typ = syscall.S_IFREG
	case tar.TypeXGlobalHeader:
		return nil
	default:
		return fmt.Errorf("%w: %s: unsupported tar entry type %q", ErrBadInput, h.Name, h.Typeflag)
	}
	in.Mode |= typ
	if p == "/" {
		if typ != syscall.S_IFDIR {
			return fmt.Errorf("%w: tar root entry is not a directory", ErrBadInput)
		}
		in.Name = "/"
		return b.w.UpdateAttrs(b.ctx, t.paths["/"].ino, in)
	}
	if old, ok := t.paths[p]; ok {
		if old.typ == syscall.S_IFDIR && typ == syscall.S_IFDIR && !old.explicit {
			t.paths[p] = tarEntry{ino: old.ino, typ: typ, explicit: true}
			return b.w.UpdateAttrs(b.ctx, old.ino, in)
		}
		return fmt.Errorf("%w: duplicate tar entry %s", ErrBadInput, p)
	}
	parent, err := t.parent(p)
	if err != nil {
		return err
	}
	in.Parent = parent
	var target tarEntry
	if h.Typeflag == tar.TypeLink {
		tp, err := cleanTarPath(h.Linkname)
		if err != nil {
			return err
		}
		var ok bool
		target, ok = t.paths[tp]
		if !ok || target.typ != syscall.S_IFREG {
			return fmt.Errorf("%w: hard link %s -> %s: target is not an earlier regular file", ErrBadInput, p, h.Linkname)
		}
		for {
			b.mu.Lock()
			next, chained := b.links[target.ino]
			b.mu.Unlock()
			if !chained {
				break
			}
			target.ino = next
		}
		// The link shares the target's attributes and content.
		tin, err := t.targetAttrs(target.ino)
		if err != nil {
			return err
		}
		tin.Parent, tin.Name = parent, in.Name
		in = tin
	}
	ino, err := b.w.AddInode(b.ctx, in)
	if err != nil {
		return err
	}
	t.paths[p] = tarEntry{ino: ino, typ: typ, explicit: true}
	if h.Typeflag != tar.TypeLink {
		b.mu.Lock()
		b.attrs[ino] = in
		b.mu.Unlock()
	}
	for k, v := range h.PAXRecords {
		if name, ok := strings.CutPrefix(k, "SCHILY.xattr."); ok {
			if err := b.w.AddXattr(b.ctx, ino, flist.Xattr{Name: name, Value: []byte(v)}); err != nil {
				return err
			}
		}
	}
	switch {
	case h.Typeflag == tar.TypeLink:
		b.mu.Lock()
		b.links[ino] = target.ino
		b.mu.Unlock()
		b.count(func(s *Stats) { s.HardLinks++ })
	case typ == syscall.S_IFREG:
		n, err := b.addFile(ino, tr)
		if err != nil {
			return fmt.Errorf("pack: %s: %w", p, err)
		}
		if uint64(n) != in.Size {
			return fmt.Errorf("%w: %s: tar entry truncated (%d of %d bytes)", ErrBadInput, p, n, in.Size)
		}
		b.count(func(s *Stats) { s.Files++ })
	case typ == syscall.S_IFDIR:
		b.count(func(s *Stats) { s.Dirs++ })
	case typ == syscall.S_IFLNK:
		b.count(func(s *Stats) { s.Symlinks++ })
	default:
		b.count(func(s *Stats) { s.Special++ })
	}
	return nil
}

func (t *tarWalker) targetAttrs(ino uint64) (flist.Inode, error) {
	t.b.mu.Lock()
	defer t.b.mu.Unlock()
	in, ok := t.b.attrs[ino]
	if !ok {
		return in, errors.New("pack: internal: hard link target attributes unknown")
	}
	return in, nil
}
