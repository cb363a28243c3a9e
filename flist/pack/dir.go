package pack

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
)

// Dir packs the tree at root into the flist out.
func Dir(ctx context.Context, root, out string, opts Options) (Stats, error) {
	st, err := os.Lstat(root)
	if err != nil {
		return Stats{}, fmt.Errorf("%w: %v", ErrBadInput, err)
	}
	if !st.IsDir() {
		return Stats{}, fmt.Errorf("%w: %s is not a directory", ErrBadInput, root)
	}
	return run(ctx, out, opts, func(b *builder) error {
		d := &dirWalker{b: b, inodes: map[[2]uint64]uint64{}}
		return d.walk(root, 0, "/")
	})
}

type dirWalker struct {
	b      *builder
	inodes map[[2]uint64]uint64 // (dev, ino) of multiply-linked files -> flist ino
}

func inodeFromStat(st *syscall.Stat_t, parent uint64, name string) flist.Inode {
	return flist.Inode{
		Parent: parent, Name: name, Size: uint64(st.Size), UID: st.Uid, GID: st.Gid,
		Mode: st.Mode, Rdev: st.Rdev, Ctime: st.Ctim.Sec, Mtime: st.Mtim.Sec,
	}
}

func (d *dirWalker) walk(path string, parent uint64, name string) error {
	b := d.b
	if err := b.ctx.Err(); err != nil {
		return err
	}
	var st syscall.Stat_t
	if err := syscall.Lstat(path, &st); err != nil {
		return fmt.Errorf("%w: %v", ErrBadInput, &os.PathError{Op: "lstat", Path: path, Err: err})
	}
	in := inodeFromStat(&st, parent, name)
	typ := st.Mode & syscall.S_IFMT
	switch typ {
	case syscall.S_IFDIR, syscall.S_IFREG, syscall.S_IFCHR, syscall.S_IFBLK, syscall.S_IFIFO, syscall.S_IFSOCK:
		if typ != syscall.S_IFREG {
			in.Size = 0
		}
	case syscall.S_IFLNK:
		target, err := os.Readlink(path)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		in.Data = []byte(target)
		in.Size = uint64(len(target))
	default:
		return fmt.Errorf("%w: %s: unsupported file type %o", ErrBadInput, path, typ)
	}
	if typ == syscall.S_IFREG && st.Nlink > 1 {
		if target, ok := d.inodes[[2]uint64{st.Dev, st.Ino}]; ok {
			ino, err := b.w.AddInode(b.ctx, in)
			if err != nil {
				return err
			}
			b.mu.Lock()
			b.links[ino] = target
			b.mu.Unlock()
			b.count(func(s *Stats) { s.HardLinks++ })
			return d.xattrs(path, ino)
		}
	}
	ino, err := b.w.AddInode(b.ctx, in)
	if err != nil {
		return err
	}
	if err := d.xattrs(path, ino); err != nil {
		return err
	}
	switch typ {
	case syscall.S_IFREG:
		if st.Nlink > 1 {
			d.inodes[[2]uint64{st.Dev, st.Ino}] = ino
		}
		f, err := os.Open(path)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		n, err := b.addFile(ino, f)
		f.Close()
		if err != nil {
			return fmt.Errorf("pack: %s: %w", path, err)
		}
		if uint64(n) != in.Size {
			if err := b.w.SetSize(b.ctx, ino, uint64(n)); err != nil {
				return err
			}
		}
		b.count(func(s *Stats) { s.Files++ })
	case syscall.S_IFDIR:
		b.count(func(s *Stats) { s.Dirs++ })
		ents, err := os.ReadDir(path)
		if err != nil {
			return fmt.Errorf("%w: %v", ErrBadInput, err)
		}
		sort.Slice(ents, func(i, j int) bool { return ents[i].Name() < ents[j].Name() })
		for _, e := range ents {
			if err := d.walk(filepath.Join(path, e.Name()), ino, e.Name()); err != nil {
				return err
			}
		}
	case syscall.S_IFLNK:
		b.count(func(s *Stats) { s.Symlinks++ })
	default:
		b.count(func(s *Stats) { s.Special++ })
	}
	return nil
}

func (d *dirWalker) xattrs(path string, ino uint64) error {
	names, err := listXattrs(path)
	if err != nil {
		return nil // filesystems without xattr support: nothing to keep
	}
	for _, n := range names {
		v, err := getXattr(path, n)
		if err != nil {
			continue
		}
		if err := d.b.w.AddXattr(d.b.ctx, ino, flist.Xattr{Name: n, Value: v}); err != nil {
			return err
		}
	}
	return nil
}

func listXattrs(path string) ([]string, error) {
	sz, err := unix.Llistxattr(path, nil)
	if err != nil || sz == 0 {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Llistxattr(path, buf)
	if err != nil {
		return nil, err
	}
	var out []string
	start := 0
	for i, c := range buf[:sz] {
		if c == 0 {
			if i > start {
				out = append(out, string(buf[start:i]))
			}
			start = i + 1
		}
	}
	sort.Strings(out)
	return out, nil
}

func getXattr(path, name string) ([]byte, error) {
	sz, err := unix.Lgetxattr(path, name, nil)
	if err != nil {
		return nil, err
	}
	buf := make([]byte, sz)
	sz, err = unix.Lgetxattr(path, name, buf)
	if errors.Is(err, unix.ERANGE) {
		return getXattr(path, name)
	}
	if err != nil {
		return nil, err
	}
	return buf[:sz], nil
}
