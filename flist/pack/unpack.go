package pack

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"runtime"
	"syscall"

	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
)

// BlockGetter fetches a stored block (flist/store's Router, or the mount
// cache).
type BlockGetter interface {
	Get(ctx context.Context, id flist.ID) ([]byte, error)
}

// UnpackOptions configure Unpack.
type UnpackOptions struct {
	Workers       int  // parallel file downloads; 0 = 4 x GOMAXPROCS
	PreserveOwner bool // chown to the recorded uid/gid (needs root)
	Logger        *slog.Logger
}

// Unpack writes the tree of an flist under dest (which must be empty or
// missing), fetching blocks in parallel and verifying each one.
func Unpack(ctx context.Context, tree *flist.Tree, g BlockGetter, dest string, opts UnpackOptions) error {
	if err := os.MkdirAll(dest, 0o755); err != nil {
		return fmt.Errorf("pack: unpack: %w", err)
	}
	if ents, err := os.ReadDir(dest); err != nil || len(ents) > 0 {
		return fmt.Errorf("%w: unpack destination %s must be an empty directory", ErrBadInput, dest)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	paths := map[uint64]string{}
	var dirs []uint64
	eg, ectx := errgroup.WithContext(ctx)
	eg.SetLimit(workers)
	err := tree.Walk(func(rel string, in *flist.Inode) error {
		if ectx.Err() != nil {
			return ectx.Err()
		}
		p := filepath.Join(dest, rel)
		paths[in.Ino] = p
		if _, isLink := tree.HardLinks[in.Ino]; isLink {
			return nil
		}
		switch in.Type() {
		case syscall.S_IFDIR:
			dirs = append(dirs, in.Ino)
			if rel == "" {
				return nil
			}
			return os.Mkdir(p, 0o700)
		case syscall.S_IFLNK:
			return os.Symlink(string(in.Data), p)
		case syscall.S_IFREG:
			blocks := tree.Blocks[in.Ino]
			size := in.Size
			eg.Go(func() error { return writeFile(ectx, g, p, blocks, size) })
			return nil
		default:
			return unix.Mknod(p, in.Mode, int(in.Rdev))
		}
	})
	if werr := eg.Wait(); err == nil {
		err = werr
	}
	if err != nil {
		return fmt.Errorf("pack: unpack: %w", err)
	}
	for link, target := range tree.HardLinks {
		if err := os.Link(paths[target], paths[link]); err != nil {
			return fmt.Errorf("pack: unpack: hard link: %w", err)
		}
	}
	// Attributes: files first, then directories deepest first, so that
	// creating children does not disturb a directory's mtime.
	for ino, in := range tree.Inodes {
		if in.IsDir() {
			continue
		}
		if _, isLink := tree.HardLinks[ino]; isLink {
			continue
		}
		if err := setAttrs(paths[ino], in, tree.Xattrs[ino], opts.PreserveOwner); err != nil {
			return err
		}
	}
	for i := len(dirs) - 1; i >= 0; i-- {
		in := tree.Inodes[dirs[i]]
		if err := setAttrs(paths[dirs[i]], in, tree.Xattrs[dirs[i]], opts.PreserveOwner); err != nil {
			return err
		}
	}
	return nil
}

func writeFile(ctx context.Context, g BlockGetter, p string, blocks []flist.Block, size uint64) error {
	f, err := os.OpenFile(p, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
	if err != nil {
		return err
	}
	defer f.Close()
	for i, b := range blocks {
		data, err := g.Get(ctx, b.ID)
		if err != nil {
			return fmt.Errorf("%s block %d: %w", p, i, err)
		}
		plain, err := flist.DecodeBlock(b, data)
		if err != nil {
			return fmt.Errorf("%s block %d: %w", p, i, err)
		}
		if _, err := f.Write(plain); err != nil {
			return err
		}
	}
	if st, err := f.Stat(); err == nil && uint64(st.Size()) != size {
		return fmt.Errorf("%s: %w: content is %d bytes, metadata says %d", p, flist.ErrCorruptBlock, st.Size(), size)
	}
	return f.Close()
}

func setAttrs(p string, in *flist.Inode, xattrs []flist.Xattr, owner bool) error {
	if owner {
		if err := os.Lchown(p, int(in.UID), int(in.GID)); err != nil {
			return fmt.Errorf("pack: unpack: %w", err)
		}
	}
	if !in.IsSymlink() {
		// chmod after chown: chown clears setuid bits.
		if err := unix.Chmod(p, in.Mode&0o7777); err != nil {
			return fmt.Errorf("pack: unpack: %w", err)
		}
	}
	// xattrs last: chown drops security.capability.
	for _, x := range xattrs {
		if err := unix.Lsetxattr(p, x.Name, x.Value, 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
			return fmt.Errorf("pack: unpack: xattr %s on %s: %w", x.Name, p, err)
		}
	}
	ts := []unix.Timespec{{Sec: in.Mtime}, {Sec: in.Mtime}}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("pack: unpack: %w", err)
	}
	return nil
}
