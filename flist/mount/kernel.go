package mount

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/internal/erofs"
)

// KernelMode chooses who serves a mount: the FUSE daemon, or the kernel
// alone (see the package doc, "Kernel mounts").
type KernelMode int

const (
	// KernelOff always serves the mount with FUSE.
	KernelOff KernelMode = iota
	// KernelAuto mounts with the kernel when every file's content is in
	// the cache, and with FUSE otherwise.
	KernelAuto
	// KernelOnly mounts with the kernel or fails.
	KernelOnly
)

// errNotKernel wraps why a flist cannot be mounted by the kernel.
var errNotKernel = errors.New("mount: no kernel mount")

// kernelMount is a mount served by overlayfs over an EROFS image of the
// metadata, with the cache directory as its data-only layer.
type kernelMount struct {
	mntID uint64 // statx STATX_MNT_ID of the overlay mount
	pin   *pin
	done  chan struct{} // closed once unmounted and unpinned
}

// kernelFile is a regular file's content in the cache: the entry that
// holds it (a chunk, or the whole-file entry of a multi-block file) and
// its path relative to the cache directory.
type kernelFile struct {
	id     flist.ID
	whole  bool
	rel    string
	blocks []flist.Block
	size   uint64
}

// kernelFiles lists the cache entries that hold the content of every
// regular file of t, by inode.
func kernelFiles(t *flist.Tree) map[uint64]kernelFile {
	files := map[uint64]kernelFile{}
	for ino, in := range t.Inodes {
		if _, link := t.HardLinks[ino]; link || !in.IsRegular() || in.Size == 0 {
			continue
		}
		f := kernelFile{blocks: t.Blocks[ino], size: in.Size}
		if len(f.blocks) == 1 {
			f.id = f.blocks[0].ID
			h := f.id.String()
			f.rel = h[:2] + "/" + h
		} else {
			f.id, f.whole = flist.ID(flist.DigestOfKeys(f.blocks)), true
			f.rel = wholeDir + "/" + f.id.String()
		}
		files[ino] = f
	}
	return files
}

// known reports, from memory only, whether f's entry is in the cache or
// (a multi-block file) can be assembled from it.
func (c *Cache) known(f kernelFile) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.entries[f.id]; ok {
		return true
	}
	return f.whole && c.allCachedLocked(f.blocks)
}

// ready verifies that f's cache file is there for the kernel to read:
// on its verification record, or opened and verified (multi-block files
// are assembled).
func (c *Cache) ready(f kernelFile) bool {
	if c.onRecord(trustKey{f.id, f.whole}, f.size) {
		return true
	}
	if f.whole {
		w, ok := c.OpenWhole(f.blocks, f.size)
		if ok {
			w.Close()
		}
		return ok
	}
	r, _, ok := c.openCachedFile(f.blocks[0])
	if !ok {
		return false
	}
	defer r.Close()
	st, err := r.Stat()
	return err == nil && uint64(st.Size()) == f.size
}

// onRecord reports whether the cache file of k is in place, private, of
// size bytes, and the very inode a verification recorded (see trustLog),
// with one lstat instead of opening it: the kernel will open it by name
// anyway. Otherwise the caller opens and verifies it.
func (c *Cache) onRecord(k trustKey, size uint64) bool {
	var st syscall.Stat_t
	if syscall.Lstat(c.entryPath(&entry{id: k.id, whole: k.whole}), &st) != nil ||
		!privateStat(&st, 0o222, c.uid) || uint64(st.Size) != size || !c.trust.trusted(k, &st) {
		return false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	c.adoptLocked(k, st.Size).verified = true
	c.stats.Hits++
	c.stats.Trusted++
	return true
}

// mountKernel mounts t at mountpoint with overlayfs if every regular
// file's content is in the cache, verified, and pinned there for as long
// as the mount exists.
func (m *Mount) mountKernel(ctx context.Context, mountpoint string) (*kernelMount, error) {
	t, c := m.tree, m.opts.Cache
	for _, in := range t.Inodes {
		if in.Type() == syscall.S_IFCHR && in.Rdev == 0 {
			// Overlayfs would take it for a whiteout and hide it.
			return nil, fmt.Errorf("%w: the flist holds a 0:0 character device", errNotKernel)
		}
	}
	files := kernelFiles(t)
	missing := 0
	for _, f := range files {
		if !c.known(f) {
			missing++
		}
	}
	if missing > 0 { // told without a system call: cold mounts lose no time here
		return nil, fmt.Errorf("%w: %d of %d files are not in the cache", errNotKernel, missing, len(files))
	}
	ids := make([]flist.ID, 0, len(files))
	for _, f := range files {
		ids = append(ids, f.id)
	}
	p, err := c.pin(ids)
	if err != nil {
		return nil, err
	}
	ok := false
	defer func() {
		if !ok {
			p.release()
		}
	}()
	start := time.Now()
	for _, f := range files {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		if !c.ready(f) {
			missing++
		}
	}
	if missing > 0 {
		return nil, fmt.Errorf("%w: %d of %d files are not in the cache, or failed their check", errNotKernel, missing, len(files))
	}
	checked := time.Since(start)
	entries, err := kernelEntries(t, files)
	if err != nil {
		return nil, fmt.Errorf("%w: %v", errNotKernel, err)
	}
	mntID, err := overlayMount(c.dir, entries, mountpoint)
	if err != nil {
		return nil, err
	}
	if err := p.setMount(mntID); err != nil {
		m.log.Warn("cannot record the mount in its cache pin", "err", err)
	}
	ok = true
	k := &kernelMount{mntID: mntID, pin: p, done: make(chan struct{})}
	go m.watchKernel(k)
	m.log.Info("mounted by the kernel (every file cached)", "files", len(files), "checked_in", checked.Round(time.Millisecond), "entries", len(entries))
	return k, nil
}

// overlayXattr prefixes the xattrs overlayfs acts on. The flist's own
// xattrs of that name are escaped (trusted.overlay.overlay.X), which
// overlayfs shows as they were and does not act on.
const overlayXattr = "trusted.overlay."

// kernelEntries describes t for the EROFS image: regular files with
// content are overlayfs metacopy files redirected to their cache file.
func kernelEntries(t *flist.Tree, files map[uint64]kernelFile) ([]erofs.Entry, error) {
	paths := make(map[uint64]string, len(t.Inodes))
	order := make([]uint64, 0, len(t.Inodes))
	t.Walk(func(p string, in *flist.Inode) error {
		paths[in.Ino] = p
		order = append(order, in.Ino)
		return nil
	})
	entries := make([]erofs.Entry, 0, len(order))
	for _, ino := range order {
		in := t.Inodes[ino]
		e := erofs.Entry{Path: paths[ino]}
		if target, link := t.HardLinks[ino]; link {
			tp, ok := paths[target]
			if !ok {
				return nil, fmt.Errorf("hard link %q: target inode %d not in the tree", e.Path, target)
			}
			e.LinkTo = tp
			entries = append(entries, e)
			continue
		}
		e.Mode, e.UID, e.GID, e.Rdev = in.Mode, in.UID, in.GID, in.Rdev
		e.Mtime = in.Mtime
		if in.IsSymlink() {
			e.Target = string(in.Data)
		}
		if in.IsRegular() {
			e.Size = in.Size
		}
		for _, x := range t.Xattrs[ino] {
			name := x.Name
			if strings.HasPrefix(name, overlayXattr) {
				name = overlayXattr + "overlay." + strings.TrimPrefix(name, overlayXattr)
			}
			e.Xattrs = append(e.Xattrs, erofs.Xattr{Name: name, Value: x.Value})
		}
		if f, ok := files[ino]; ok {
			e.Xattrs = append(e.Xattrs,
				erofs.Xattr{Name: overlayXattr + "metacopy", Value: []byte{}},
				erofs.Xattr{Name: overlayXattr + "redirect", Value: []byte("/" + f.rel)})
		}
		entries = append(entries, e)
	}
	return entries, nil
}

// overlayMount writes the EROFS image of entries to an unnamed file in
// dir, mounts it detached, and mounts overlayfs at mountpoint with it as
// the lower layer and dir as the data-only layer. Both mounts are made
// with the new mount API: no path of the image or the EROFS mount is ever
// visible, and layer paths need no escaping.
func overlayMount(dir string, entries []erofs.Entry, mountpoint string) (mntID uint64, err error) {
	img, err := os.OpenFile(dir, unix.O_TMPFILE|os.O_RDWR, 0o400)
	if err != nil {
		return 0, fmt.Errorf("%w: image file: %v", errNotKernel, err)
	}
	defer img.Close()
	w := bufio.NewWriterSize(img, 1<<20)
	if err := erofs.Write(w, entries); err != nil {
		return 0, fmt.Errorf("%w: %v", errNotKernel, err)
	}
	if err := w.Flush(); err != nil {
		return 0, fmt.Errorf("mount: write metadata image: %w", err)
	}
	meta, err := newMount("erofs", func(fd int) error {
		return unix.FsconfigSetString(fd, "source", fmt.Sprintf("/proc/self/fd/%d", img.Fd()))
	}, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNotKernel, err)
	}
	defer unix.Close(meta)
	ovl, err := newMount("overlay", func(fd int) error {
		for _, kv := range [][2]string{
			{"lowerdir+", fmt.Sprintf("/proc/self/fd/%d", meta)},
			{"datadir+", dir},
			{"metacopy", "on"},
			{"redirect_dir", "follow"},
		} {
			if err := unix.FsconfigSetString(fd, kv[0], kv[1]); err != nil {
				return fmt.Errorf("%s=%s: %w", kv[0], kv[1], err)
			}
		}
		return nil
	}, unix.MOUNT_ATTR_RDONLY)
	if err != nil {
		return 0, fmt.Errorf("%w: %v", errNotKernel, err)
	}
	defer unix.Close(ovl)
	var stx unix.Statx_t
	if err := unix.Statx(ovl, "", unix.AT_EMPTY_PATH, unix.STATX_MNT_ID, &stx); err != nil {
		return 0, fmt.Errorf("mount: statx: %w", err)
	}
	if err := unix.MoveMount(ovl, "", unix.AT_FDCWD, mountpoint, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return 0, fmt.Errorf("mount: %s: %w", mountpoint, err)
	}
	return stx.Mnt_id, nil
}

// newMount creates a detached mount of a new fstype filesystem configured
// by set, and returns its file descriptor. Errors carry the messages the
// kernel logged in the filesystem context.
func newMount(fstype string, set func(fd int) error, attrs int) (int, error) {
	fd, err := unix.Fsopen(fstype, unix.FSOPEN_CLOEXEC)
	if err != nil {
		return -1, fmt.Errorf("%s: fsopen: %w", fstype, err)
	}
	defer unix.Close(fd)
	if err := set(fd); err != nil {
		return -1, fmt.Errorf("%s: %w%s", fstype, err, fsLog(fd))
	}
	if err := unix.FsconfigCreate(fd); err != nil {
		return -1, fmt.Errorf("%s: create: %w%s", fstype, err, fsLog(fd))
	}
	mfd, err := unix.Fsmount(fd, unix.FSMOUNT_CLOEXEC, attrs)
	if err != nil {
		return -1, fmt.Errorf("%s: fsmount: %w%s", fstype, err, fsLog(fd))
	}
	return mfd, nil
}

// fsLog returns the messages the kernel left in a filesystem context.
func fsLog(fd int) string {
	var msgs []string
	buf := make([]byte, 4096)
	for range 16 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		msgs = append(msgs, strings.TrimSpace(string(buf[:n])))
	}
	if len(msgs) == 0 {
		return ""
	}
	return " (" + strings.Join(msgs, "; ") + ")"
}

// watchKernel waits until the kernel mount is gone (Unmount, umount(8) or
// zos flist umount), woken by the mount table's change notifications, and
// then releases its pin.
func (m *Mount) watchKernel(k *kernelMount) {
	defer close(k.done)
	defer func() {
		if err := k.pin.release(); err != nil {
			m.log.Warn("cannot release the cache pin", "err", err)
		}
	}()
	mi, err := os.Open("/proc/self/mountinfo")
	if err != nil {
		m.log.Error("cannot watch the mount table", "err", err)
		<-m.ctx.Done()
		return
	}
	defer mi.Close()
	for {
		live, err := mountIDs()
		if err == nil && !live[k.mntID] {
			return
		}
		fds := []unix.PollFd{{Fd: int32(mi.Fd()), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, 10000); err != nil && !errors.Is(err, unix.EINTR) {
			m.log.Error("cannot watch the mount table", "err", err)
			<-m.ctx.Done()
			return
		}
	}
}

// Kernel reports whether the kernel serves the mount (no FUSE daemon:
// OpStats stay zero).
func (m *Mount) Kernel() bool { return m.kern != nil }

// unmountKernel unmounts a kernel mount, lazily if files are open (they
// keep their cache files open, so those may go), and waits for its pin to
// be released.
func (m *Mount) unmountKernel() error {
	err := unix.Unmount(m.mountpoint, 0)
	if errors.Is(err, unix.EBUSY) {
		m.log.Warn("mount busy, detached lazily", "err", err)
		err = unix.Unmount(m.mountpoint, unix.MNT_DETACH)
	}
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("mount: unmount %s: %w", m.mountpoint, err)
	}
	<-m.kern.done
	return nil
}
