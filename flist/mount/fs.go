package mount

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"github.com/hanwen/go-fuse/v2/fs"
	"github.com/hanwen/go-fuse/v2/fuse"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
)

// Options configure a mount.
type Options struct {
	Cache *Cache      // node-wide cache, shared by every mount (required)
	Store BlockGetter // where blocks come from (required)
	// ReadAhead is how many following blocks to fetch in the background when
	// a file is read sequentially; 0 means 4, negative disables it, and
	// bringing files ahead of a walk (readFollowingAhead) with it.
	ReadAhead int
	// ExecVerify refuses execve of any file that is not an executable
	// regular file of the signed metadata, and fetches and verifies a
	// file's every block before it may be executed. See the package doc.
	ExecVerify bool
	// NoPassthrough disables FUSE passthrough of single-block files to
	// their cache file (on by default; needs root and a recent kernel).
	NoPassthrough bool
	// PassthroughMin is the size from which a cached file is passed
	// through. Smaller files are served by the daemon and then stay in the
	// kernel's page cache of the mount (FOPEN_KEEP_CACHE): re-opening them
	// costs no passthrough setup (open a chunk file, register it as a
	// backing file, unregister and close it on release). 0 means 128 KiB;
	// negative passes every file through. Executables are always passed
	// through.
	PassthroughMin int64
	// NoOpen answers OPEN with ENOSYS: for the rest of the mount the kernel
	// opens files without asking the daemon (no OPEN or RELEASE round trip
	// per open, and it keeps the page cache across opens), at the price of
	// FUSE passthrough: every read the page cache misses is served by the
	// daemon. For trees of many small files that are read again and again.
	// With ExecVerify, the daemon cannot see execs: it verifies every block
	// of an executable file before it serves the first byte of it instead
	// (see the package doc).
	NoOpen bool
	// AutoNoOpen sets NoOpen for flists whose regular files average under
	// NoOpenMeanSize, where the OPEN and RELEASE round trips of every file
	// cost more than passthrough saves on the large ones (measured on
	// /usr/share, 12 KiB on average: hot reads 2-3x faster, warm 1.3x,
	// without OPEN; on 64 MiB files passthrough reads 2-3x faster).
	AutoNoOpen bool
	// Kernel chooses between the FUSE daemon and a kernel mount
	// (overlayfs over an EROFS image of the metadata, reading cache files
	// directly) for flists whose every file is cached; see the package
	// doc. The zero value is KernelOff.
	Kernel     KernelMode
	AllowOther bool // let other users see the mount (needs root)
	Debug      bool // log every FUSE request
	Logger     *slog.Logger
}

// Mount is a mounted flist.
type Mount struct {
	tree       *flist.Tree
	hash       flist.Hash
	config     []byte
	execSet    []flist.ExecEntry
	nlink      map[uint64]uint32
	opts       Options
	log        *slog.Logger
	server     *fuse.Server
	mountpoint string

	ctx    context.Context // canceled on unmount: stops read-ahead
	cancel context.CancelFunc
	bg     sync.WaitGroup
	raSem  chan struct{}
	asm    chan *handle // multi-block files read through, to assemble
	once   sync.Once
	err    error

	ops opCounters

	kern *kernelMount // set when the kernel serves the mount: no FUSE server

	// Reading ahead of page cache misses (readFollowingAhead).
	root     *node
	walkOnce sync.Once
	walk     *walkOrder
	ahead    aheadWindow

	// ioModes is how the open handles of multi-block files are served, by
	// inode: whether such a file is passed through depends on the cache
	// (the whole file must be there), and the kernel refuses (EIO) to
	// pass an inode through while it has a cached (daemon-served) open,
	// and the reverse. So while an inode has open handles, new opens take
	// the same mode. (A cold read of libc by one process, then its open
	// by the next program, hit this.)
	ioMu    sync.Mutex
	ioModes map[uint64]*ioMode
}

// ioMode counts the open handles of an inode, all served the same way.
type ioMode struct {
	handles     int
	passthrough bool
}

// opCounters count the FUSE requests this mount served (the ones that reach
// its nodes; go-fuse answers OPENDIR, RELEASEDIR and FORGET itself).
type opCounters struct {
	lookup, getattr, readdir, readlink, xattr, statfs, flush atomic.Int64
	open, openPassthrough, release, read, readBytes          atomic.Int64
	stored, storedBytes                                      atomic.Int64
}

// OpStats counts the FUSE requests a mount has served, by operation.
// OpenPassthrough counts the opens handed to the kernel (FUSE
// passthrough to a cache file); their reads never reach the daemon.
type OpStats struct {
	Lookup          int64 `json:"lookup"`
	Getattr         int64 `json:"getattr"`
	Readdir         int64 `json:"readdir"`
	Readlink        int64 `json:"readlink"`
	Xattr           int64 `json:"xattr"`
	Statfs          int64 `json:"statfs"`
	Flush           int64 `json:"flush"`
	Open            int64 `json:"open"`
	OpenPassthrough int64 `json:"open_passthrough"`
	Release         int64 `json:"release"`
	Read            int64 `json:"read"`
	ReadBytes       int64 `json:"read_bytes"`
	// Stored counts the files brought ahead of their reader into the
	// kernel's page cache (FUSE_NOTIFY_STORE): their reads never reach
	// the daemon.
	Stored      int64 `json:"stored"`
	StoredBytes int64 `json:"stored_bytes"`
}

// OpStats returns the request counters of the mount.
func (m *Mount) OpStats() OpStats {
	o := &m.ops
	return OpStats{
		Lookup: o.lookup.Load(), Getattr: o.getattr.Load(), Readdir: o.readdir.Load(),
		Readlink: o.readlink.Load(), Xattr: o.xattr.Load(), Statfs: o.statfs.Load(),
		Flush: o.flush.Load(), Open: o.open.Load(), OpenPassthrough: o.openPassthrough.Load(),
		Release: o.release.Load(), Read: o.read.Load(), ReadBytes: o.readBytes.Load(),
		Stored: o.stored.Load(), StoredBytes: o.storedBytes.Load(),
	}
}

// New mounts the flist f read-only at mountpoint and returns once the
// filesystem is ready. The flist's metadata is loaded into memory, so f
// may be closed afterwards.
func New(ctx context.Context, f *flist.FList, mountpoint string, opts Options) (*Mount, error) {
	if opts.Cache == nil || opts.Store == nil {
		return nil, errors.New("mount: Cache and Store are required")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	if opts.ReadAhead == 0 {
		opts.ReadAhead = 4
	}
	if opts.PassthroughMin == 0 {
		opts.PassthroughMin = 128 << 10
	}
	tree, err := f.Tree(ctx)
	if err != nil {
		return nil, err
	}
	h, err := f.Hash(ctx)
	if err != nil {
		return nil, err
	}
	cfg, err := f.ImageConfig(ctx)
	if err != nil && !errors.Is(err, flist.ErrNotFound) {
		return nil, err
	}
	if opts.AutoNoOpen && !opts.NoOpen {
		opts.NoOpen = meanFileSize(tree) < NoOpenMeanSize
	}
	mctx, cancel := context.WithCancel(context.Background())
	m := &Mount{
		tree: tree, hash: h, config: cfg, execSet: tree.ExecSet(), opts: opts,
		log:        opts.Logger.With("component", "flist-mount", "mountpoint", mountpoint, "flist", h.String()[:16]),
		mountpoint: mountpoint, ctx: mctx, cancel: cancel,
		raSem: make(chan struct{}, 16), nlink: map[uint64]uint32{},
		asm: make(chan *handle, 1024),
	}
	for link, target := range tree.HardLinks {
		if m.nlink[target] == 0 {
			m.nlink[target] = 1
		}
		m.nlink[target]++
		_ = link
	}
	if opts.Kernel != KernelOff {
		k, err := m.mountKernel(ctx, mountpoint)
		if err == nil {
			m.kern = k
			return m, nil
		}
		if opts.Kernel == KernelOnly || !errors.Is(err, errNotKernel) {
			cancel()
			return nil, err
		}
		m.log.Info("serving with FUSE", "reason", err)
	}
	year := 365 * 24 * time.Hour
	root := &node{m: m, ino: flist.RootIno}
	m.root = root
	fopts := &fs.Options{
		EntryTimeout: &year, AttrTimeout: &year, NegativeTimeout: &year,
		NullPermissions: true,
		RootStableAttr:  &fs.StableAttr{Ino: flist.RootIno},
		MountOptions: fuse.MountOptions{
			FsName: "zos-flist", Name: "zos-flist", AllowOther: opts.AllowOther,
			Debug: opts.Debug, Options: []string{"ro", "default_permissions"},
			MaxReadAhead: 1 << 20, DirectMount: true,
			// Containers with a user namespace see the flist through an
			// id-mapped mount (container root owns the image files).
			IDMappedMount: true,
			// Reads the daemon serves come in requests of up to 1 MiB
			// (two blocks) instead of the default 128 KiB: fewer round
			// trips on the cold path (the kernel may cap it lower).
			MaxWrite: 1 << 20,
			// Room for the kernel's read-ahead of several readers and
			// the asynchronous RELEASEs (default 12).
			MaxBackground: 64,
			// Symlink targets never change: the kernel keeps them.
			EnableSymlinkCaching: true,
			// Reads are answered with bytes in memory; go-fuse would
			// first try to splice each reply through a pipe (grow it,
			// write the header, drain it) and fall back to writev: six
			// wasted system calls per READ.
			DisableSplice: true,
		},
	}
	srv, err := fs.Mount(mountpoint, root, fopts)
	if err != nil {
		cancel()
		return nil, fmt.Errorf("mount: %s: %w", mountpoint, err)
	}
	m.server = srv
	m.bg.Add(2)
	go m.assembler()
	go func() {
		defer m.bg.Done()
		m.walkOrder() // off the first miss's path
	}()
	m.log.Info("mounted", "entries", len(tree.Inodes), "no_open", opts.NoOpen)
	return m, nil
}

// NoOpenMeanSize is the mean regular file size under which AutoNoOpen
// mounts without OPEN. Break-even measured on this project's bench
// machine: about 70 µs of round trips per opened file against about
// 1.5 ms per MiB more for reads the daemon serves instead of the kernel.
const NoOpenMeanSize = 64 << 10

// meanFileSize is the mean size of the regular files of t (hard links
// counted once).
func meanFileSize(t *flist.Tree) uint64 {
	var n, total uint64
	for ino, in := range t.Inodes {
		if _, link := t.HardLinks[ino]; link || !in.IsRegular() {
			continue
		}
		n++
		total += in.Size
	}
	if n == 0 {
		return 0
	}
	return total / n
}

// Hash is the metadata hash of the mounted flist.
func (m *Mount) Hash() flist.Hash { return m.hash }

// ImageConfig is the OCI image config stored in the flist, or nil.
func (m *Mount) ImageConfig() []byte { return m.config }

// ExecSet lists the executable files of the (signed) metadata with their
// content digests: what the container runtime's exec guard checks against.
func (m *Mount) ExecSet() []flist.ExecEntry { return m.execSet }

// ExecAllowed reports whether path (absolute inside the flist) with content
// digest d is an executable file of the signed metadata.
func (m *Mount) ExecAllowed(path string, d [32]byte) bool {
	i := sort.Search(len(m.execSet), func(i int) bool { return m.execSet[i].Path >= path })
	return i < len(m.execSet) && m.execSet[i].Path == path && m.execSet[i].Digest == d
}

// Wait blocks until the filesystem is unmounted (by Unmount, umount(8) or
// zos flist umount).
func (m *Mount) Wait() {
	if m.kern != nil {
		<-m.kern.done
		m.cancel()
		return
	}
	m.server.Wait()
	m.cancel()
	m.bg.Wait()
}

// Unmount unmounts the filesystem and stops background work. If files are
// still open (EBUSY) the mount is detached lazily: it disappears from the
// mount table at once and the kernel lets go when the last file closes.
func (m *Mount) Unmount() error {
	m.once.Do(func() {
		m.cancel()
		if m.kern != nil {
			m.err = m.unmountKernel()
			return
		}
		m.err = m.server.Unmount()
		if m.err != nil {
			if derr := unix.Unmount(m.mountpoint, unix.MNT_DETACH); derr == nil {
				m.log.Warn("mount busy, detached lazily", "err", m.err)
				m.err = nil
			}
		}
		m.bg.Wait()
	})
	return m.err
}

// node is one inode of the flist.
type node struct {
	fs.Inode
	m   *Mount
	ino uint64

	shared atomic.Pointer[handle] // reader state without OPEN (Options.NoOpen)
}

var (
	_ fs.NodeLookuper    = (*node)(nil)
	_ fs.NodeReaddirer   = (*node)(nil)
	_ fs.NodeGetattrer   = (*node)(nil)
	_ fs.NodeReadlinker  = (*node)(nil)
	_ fs.NodeOpener      = (*node)(nil)
	_ fs.NodeGetxattrer  = (*node)(nil)
	_ fs.NodeListxattrer = (*node)(nil)
	_ fs.NodeStatfser    = (*node)(nil)
	_ fs.NodeFlusher     = (*node)(nil)

	_ fs.NodeOpendirHandler = (*node)(nil)
	_ fs.NodeReader         = (*node)(nil)
)

// Read serves reads of a handle from Open, and, with Options.NoOpen,
// reads that come without one: those share one reader state per inode
// (sequential detection, read-ahead) and hold no cache file open between
// requests.
func (n *node) Read(ctx context.Context, f fs.FileHandle, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	if r, ok := f.(fs.FileReader); ok {
		return r.Read(ctx, dest, off)
	}
	h := n.shared.Load()
	if h == nil {
		in := n.inode()
		if !in.IsRegular() {
			return nil, syscall.EINVAL
		}
		h = &handle{m: n.m, node: n, ino: n.ino, blocks: n.m.tree.Blocks[n.ino], size: in.Size, last: -1, ra: -1}
		h.verifyFirst = n.m.opts.ExecVerify && in.Mode&0o111 != 0
		if !n.shared.CompareAndSwap(nil, h) {
			h = n.shared.Load()
		}
	}
	if errno := h.verifiedAll(ctx); errno != 0 {
		return nil, errno
	}
	res, errno := h.Read(ctx, dest, off)
	h.closeChunks()
	return res, errno
}

// verifiedAll fetches and verifies every block of an executable before the
// first byte of it is served without OPEN (ExecVerify with NoOpen): the
// kernel reads a program's header through READ before it runs it, so no
// program starts from a file that is not wholly in the cache and intact.
func (h *handle) verifiedAll(ctx context.Context) syscall.Errno {
	if !h.verifyFirst {
		return 0
	}
	h.verifyMu.Lock()
	defer h.verifyMu.Unlock()
	if h.verified {
		return 0
	}
	if errno := h.m.fetchAll(ctx, h.ino, h.blocks); errno != 0 {
		return errno
	}
	h.verified = true
	return 0
}

// fetchAll fetches and verifies every block of file ino.
func (m *Mount) fetchAll(ctx context.Context, ino uint64, blocks []flist.Block) syscall.Errno {
	for i, b := range blocks {
		if err := m.opts.Cache.Prefetch(ctx, b, m.opts.Store); err != nil {
			m.logBlockErr(m.pathOf(ino), i, b, err)
			return syscall.EIO
		}
	}
	return 0
}

// OpendirHandle lets the kernel cache the listing of the directory
// (FOPEN_CACHE_DIR): the tree never changes, so walking it again costs no
// READDIRPLUS (and no per-entry lookup in the daemon).
func (n *node) OpendirHandle(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	ds, errno := n.Readdir(ctx)
	if errno != 0 {
		return nil, 0, errno
	}
	return ds, fuse.FOPEN_CACHE_DIR | fuse.FOPEN_KEEP_CACHE, 0
}

// Flush answers ENOSYS: nothing is ever written, and on ENOSYS the kernel
// stops sending FLUSH on close for the whole mount, which saves a round
// trip per opened file.
func (n *node) Flush(ctx context.Context, f fs.FileHandle) syscall.Errno {
	n.m.ops.flush.Add(1)
	return syscall.ENOSYS
}

func (n *node) inode() *flist.Inode { return n.m.tree.Inodes[n.ino] }

// stable returns the inode number whose content n shares (hard links).
func (m *Mount) stable(ino uint64) uint64 {
	if t, ok := m.tree.HardLinks[ino]; ok {
		return t
	}
	return ino
}

func (m *Mount) fillAttr(ino uint64, out *fuse.Attr) {
	in := m.tree.Inodes[ino]
	out.Ino = m.stable(ino)
	out.Size = in.Size
	out.Blocks = (in.Size + 511) / 512
	out.Mode = in.Mode
	out.Uid, out.Gid = in.UID, in.GID
	out.Rdev = uint32(in.Rdev)
	out.Mtime, out.Ctime, out.Atime = uint64(in.Mtime), uint64(in.Ctime), uint64(in.Mtime)
	out.Nlink = 1
	if n := m.nlink[out.Ino]; n > 0 {
		out.Nlink = n
	}
	if in.IsDir() {
		out.Nlink = 2
	}
	out.Blksize = flist.BlockSize
}

func (n *node) Getattr(ctx context.Context, _ fs.FileHandle, out *fuse.AttrOut) syscall.Errno {
	n.m.ops.getattr.Add(1)
	n.m.fillAttr(n.ino, &out.Attr)
	return 0
}

func (n *node) Statfs(ctx context.Context, out *fuse.StatfsOut) syscall.Errno {
	n.m.ops.statfs.Add(1)
	out.Bsize = flist.BlockSize
	out.NameLen = 255
	out.Files = uint64(len(n.m.tree.Inodes))
	return 0
}

func (n *node) Lookup(ctx context.Context, name string, out *fuse.EntryOut) (*fs.Inode, syscall.Errno) {
	n.m.ops.lookup.Add(1)
	kids := n.m.tree.Children[n.ino]
	i := sort.Search(len(kids), func(i int) bool { return n.m.tree.Inodes[kids[i]].Name >= name })
	if i == len(kids) || n.m.tree.Inodes[kids[i]].Name != name {
		return nil, syscall.ENOENT
	}
	c := kids[i]
	in := n.m.tree.Inodes[c]
	n.m.fillAttr(c, &out.Attr)
	child := n.NewInode(ctx, &node{m: n.m, ino: n.m.stable(c)}, fs.StableAttr{Mode: in.Type(), Ino: n.m.stable(c)})
	return child, 0
}

func (n *node) Readdir(ctx context.Context) (fs.DirStream, syscall.Errno) {
	n.m.ops.readdir.Add(1)
	kids := n.m.tree.Children[n.ino]
	ents := make([]fuse.DirEntry, 0, len(kids))
	for _, c := range kids {
		in := n.m.tree.Inodes[c]
		ents = append(ents, fuse.DirEntry{Name: in.Name, Mode: in.Type(), Ino: n.m.stable(c)})
	}
	return fs.NewListDirStream(ents), 0
}

func (n *node) Readlink(ctx context.Context) ([]byte, syscall.Errno) {
	n.m.ops.readlink.Add(1)
	in := n.inode()
	if !in.IsSymlink() {
		return nil, syscall.EINVAL
	}
	return in.Data, 0
}

func (n *node) xattrs() []flist.Xattr { return n.m.tree.Xattrs[n.ino] }

func (n *node) Getxattr(ctx context.Context, attr string, dest []byte) (uint32, syscall.Errno) {
	n.m.ops.xattr.Add(1)
	for _, x := range n.xattrs() {
		if x.Name == attr {
			if len(dest) < len(x.Value) {
				return uint32(len(x.Value)), syscall.ERANGE
			}
			return uint32(copy(dest, x.Value)), 0
		}
	}
	return 0, syscall.ENODATA
}

func (n *node) Listxattr(ctx context.Context, dest []byte) (uint32, syscall.Errno) {
	n.m.ops.xattr.Add(1)
	var b strings.Builder
	for _, x := range n.xattrs() {
		b.WriteString(x.Name)
		b.WriteByte(0)
	}
	if len(dest) < b.Len() {
		return uint32(b.Len()), syscall.ERANGE
	}
	return uint32(copy(dest, b.String())), 0
}

// fmodeExec is the kernel's __FMODE_EXEC, set in the open flags FUSE
// receives when the file is opened by execve.
const fmodeExec = 0x20

func (n *node) Open(ctx context.Context, flags uint32) (fs.FileHandle, uint32, syscall.Errno) {
	n.m.ops.open.Add(1)
	if n.m.opts.NoOpen {
		return nil, 0, syscall.ENOSYS // the kernel stops sending OPEN
	}
	in := n.inode()
	if !in.IsRegular() {
		return nil, 0, syscall.EINVAL
	}
	if flags&(syscall.O_WRONLY|syscall.O_RDWR|syscall.O_TRUNC) != 0 {
		return nil, 0, syscall.EROFS
	}
	m := n.m
	blocks := m.tree.Blocks[n.ino]
	if m.opts.ExecVerify && flags&fmodeExec != 0 {
		if in.Mode&0o111 == 0 {
			m.log.Warn("exec refused: not an executable of the signed flist", "file", m.pathOf(n.ino))
			return nil, 0, syscall.EACCES
		}
		// Fetch and verify every block before the program may start.
		if errno := m.fetchAll(ctx, n.ino, blocks); errno != 0 {
			return nil, 0, errno
		}
	}
	if len(blocks) > 0 && !m.opts.Cache.cached(blocks[0].ID) {
		// Passed-through files are never READ: their misses show here.
		m.readFollowingAhead(n)
	}
	h := &handle{m: m, node: n, ino: n.ino, blocks: blocks, size: in.Size, last: -1, ra: -1}
	h.passthrough = m.passedThrough(in)
	passthrough := h.passthrough
	if len(blocks) == 1 && passthrough {
		f, err := m.opts.Cache.Open(ctx, blocks[0], m.opts.Store)
		if err != nil {
			m.logBlockErr(m.pathOf(n.ino), 0, blocks[0], err)
			return nil, 0, syscall.EIO
		}
		m.ops.openPassthrough.Add(1)
		return &passthroughHandle{handle: h, f: f}, fuse.FOPEN_KEEP_CACHE, 0
	}
	if len(blocks) > 1 && passthrough {
		m.ioMu.Lock()
		defer m.ioMu.Unlock()
		mode := m.ioModes[n.ino]
		if mode == nil {
			mode = &ioMode{}
			if m.ioModes == nil {
				m.ioModes = map[uint64]*ioMode{}
			}
			m.ioModes[n.ino] = mode
		}
		h.ioMode = mode
		if mode.handles == 0 || mode.passthrough {
			if f, ok := m.opts.Cache.OpenWhole(blocks, in.Size); ok {
				mode.handles++
				mode.passthrough = true
				m.ops.openPassthrough.Add(1)
				return &passthroughHandle{handle: h, f: f}, fuse.FOPEN_KEEP_CACHE, 0
			}
			if mode.passthrough {
				// Evicted since: the kernel would refuse a cached open.
				m.log.Warn("open refused: whole file no longer cached while passed through", "file", m.pathOf(n.ino))
				return nil, 0, syscall.EIO
			}
		}
		mode.handles++
	}
	return h, fuse.FOPEN_KEEP_CACHE, 0
}

// releaseIOMode ends an open handle's part in its inode's io mode.
func (h *handle) releaseIOMode() {
	if h.ioMode == nil {
		return
	}
	h.m.ioMu.Lock()
	defer h.m.ioMu.Unlock()
	if h.ioMode.handles--; h.ioMode.handles == 0 {
		delete(h.m.ioModes, h.ino)
	}
	h.ioMode = nil
}

// assembler turns multi-block files that were read through the daemon into
// whole-file cache entries in the background, one at a time, so that the
// next open passes them through at once instead of assembling them while
// the reader waits (which made a second read of a tree slower than a
// read after a remount).
func (m *Mount) assembler() {
	defer m.bg.Done()
	for {
		select {
		case <-m.ctx.Done():
			return
		case h := <-m.asm:
			if f, ok := m.opts.Cache.OpenWhole(h.blocks, h.size); ok {
				f.Close()
			}
		}
	}
}

// The window of files brought ahead of a reader starts at minAhead files
// after a miss and doubles, up to maxAhead, with each miss that shows the
// reader is walking the tree (a miss inside or at the end of the window);
// aheadWorkers bring files in parallel, so that their disk reads or
// fetches overlap.
const (
	minAhead      = 16
	maxAhead      = 1024
	maxAheadBytes = 64 << 20
	aheadWorkers  = 8
)

// walkOrder is the order in which programs walk a tree: depth first,
// each directory's entries in name order (tar, cp -r, find, a container
// starting, filepath.WalkDir).
type walkOrder struct {
	files []uint64       // inodes (as in Children) of files with content
	sizes []uint64       // their sizes
	pos   map[uint64]int // index in files, by inode
}

// walkOrder returns the tree's walk order, built once.
func (m *Mount) walkOrder() *walkOrder {
	m.walkOnce.Do(func() { m.walk = newWalkOrder(m.tree) })
	return m.walk
}

func newWalkOrder(t *flist.Tree) *walkOrder {
	w := &walkOrder{pos: map[uint64]int{}}
	var visit func(dir uint64)
	visit = func(dir uint64) {
		for _, c := range t.Children[dir] {
			if t.Inodes[c].IsDir() {
				visit(c)
				continue
			}
			st := c
			if target, ok := t.HardLinks[c]; ok {
				st = target
			}
			if len(t.Blocks[st]) > 0 {
				w.pos[c] = len(w.files)
				w.files = append(w.files, c)
				w.sizes = append(w.sizes, t.Inodes[st].Size)
			}
		}
	}
	visit(flist.RootIno)
	return w
}

// aheadWindow is the part of the walk order being brought ahead.
type aheadWindow struct {
	mu      sync.Mutex
	start   int    // index in walkOrder.files where the window starts
	next    int    // index of the next file to bring
	end     int    // bring the files before this index
	size    int    // current window size
	pending uint64 // bytes of the files from next to end
	workers int    // running bringAhead workers
}

// miss moves the window for a miss of file i (an index in the walk order
// whose file sizes are sizes) and returns how many more workers to start.
func (a *aheadWindow) miss(i int, sizes []uint64) (start int) {
	a.mu.Lock()
	defer a.mu.Unlock()
	switch {
	case a.size > 0 && i+1 < a.start && i+1 >= a.start-maxAhead:
		// A reader behind others: the files after it are being read or
		// were brought already.
		return 0
	case a.size > 0 && i+1 >= a.start && i+1 <= a.end+minAhead:
		// The reader walks the tree and caught up with the files being
		// brought: bring more, further ahead.
		a.size = min(2*a.size, maxAhead)
		for ; a.next <= i && a.next < a.end; a.next++ { // skip what it read
			a.pending -= sizes[a.next]
		}
		if a.next <= i { // past the window: nothing is pending
			a.next, a.end = i+1, i+1
		}
	default:
		a.size = minAhead
		a.next, a.end, a.pending = i+1, i+1, 0
	}
	a.start = i + 1
	for ; a.end < len(sizes) && a.end-a.start < a.size && a.pending < maxAheadBytes; a.end++ {
		a.pending += sizes[a.end]
	}
	start = min(aheadWorkers, a.end-a.next) - a.workers
	if start < 0 {
		return 0
	}
	a.workers += start
	return start
}

// take gives a worker the next file of the window to bring; false (the
// worker ends) when the window is done or stop is set.
func (a *aheadWindow) take(sizes []uint64, stop bool) (int, bool) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if stop || a.next >= a.end {
		a.workers--
		return 0, false
	}
	j := a.next
	a.next++
	a.pending -= sizes[j]
	return j, true
}

// readFollowingAhead is called when the kernel misses file n: on a READ at
// offset 0 (its page cache does not hold the start of the file) and on the
// cold OPEN of a file. It brings the files that follow n in walk order
// ahead of the reader, in the background, so that their fetches or disk
// reads overlap instead of adding up file by file:
//   - a small file (one block, read through the page cache) that is not
//     cached yet and that the kernel knows (its directory was listed) is
//     fetched, verified, and stored whole in the kernel's page cache of its
//     inode (FUSE_NOTIFY_STORE): its read then needs no request at all.
//     Only verified bytes are stored, and only whole files, so that an
//     executable the kernel could start from the page cache is wholly
//     verified (what verifiedAll does for a READ);
//   - a file whose first block is cached has that cache file read into the
//     page cache (posix_fadvise), where its READ (or the kernel, through
//     passthrough) finds it. Storing it instead was measured no faster:
//     reading the cache file and storing its pages cost the daemon about
//     what serving the READ does, and a tree walk is CPU-bound then;
//   - of any other file, the first block is fetched.
func (m *Mount) readFollowingAhead(n *node) {
	if m.opts.ReadAhead <= 0 {
		return
	}
	w := m.walkOrder()
	i, ok := w.pos[n.ino]
	if !ok {
		return
	}
	for range m.ahead.miss(i, w.sizes) {
		m.bg.Add(1)
		go m.aheadWorker(w)
	}
}

// aheadWorker brings the files of the window ahead, one after the other,
// until the window is done.
func (m *Mount) aheadWorker(w *walkOrder) {
	defer m.bg.Done()
	dirs := map[uint64]*fs.Inode{}
	for {
		j, ok := m.ahead.take(w.sizes, m.ctx.Err() != nil)
		if !ok {
			return
		}
		m.bringAhead(w.files[j], dirs)
	}
}

// kernelDir returns the go-fuse inode of directory dir if the kernel knows
// it (nil if not), through dirs, a cache of earlier answers.
func (m *Mount) kernelDir(dir uint64, dirs map[uint64]*fs.Inode) *fs.Inode {
	if dir == flist.RootIno {
		return m.root.EmbeddedInode()
	}
	if d, ok := dirs[dir]; ok && d != nil {
		return d
	}
	var d *fs.Inode
	in := m.tree.Inodes[dir]
	if p := m.kernelDir(in.Parent, dirs); p != nil {
		d = p.GetChild(in.Name)
	}
	dirs[dir] = d
	return d
}

// bringAhead brings file ino ahead of its reader, as readFollowingAhead
// says.
func (m *Mount) bringAhead(ino uint64, dirs map[uint64]*fs.Inode) {
	st := m.stable(ino)
	blocks := m.tree.Blocks[st]
	in := m.tree.Inodes[st]
	if m.opts.Cache.cached(blocks[0].ID) {
		m.opts.Cache.willNeed(blocks[0].ID)
		return
	}
	if len(blocks) == 1 && m.pageCached(in) {
		if dir := m.kernelDir(m.tree.Inodes[ino].Parent, dirs); dir != nil {
			if child := dir.GetChild(m.tree.Inodes[ino].Name); child != nil {
				m.storePages(child, st, blocks[0], in.Size)
				return
			}
		}
	}
	if !m.opts.Cache.roomFor(flist.BlockSize) {
		return
	}
	if err := m.opts.Cache.Prefetch(m.ctx, blocks[0], m.opts.Store); err != nil && m.ctx.Err() == nil {
		// The read of that file reports it, with its name.
		m.log.Debug("prefetch of a following file failed", "id", blocks[0].ID.String(), "err", err)
	}
}

// pageCached reports whether the kernel serves file in from its page cache
// (READs the daemon answers), rather than by passthrough to a cache file.
func (m *Mount) pageCached(in *flist.Inode) bool {
	return m.opts.NoOpen || !m.passedThrough(in)
}

// passedThrough is whether Open passes file in through to its cache file.
// Executables are always passed through: they are mapped rather than
// read, and an execve served by the daemon from the daemon's own process
// (tests, an embedding program) would wait on itself. The rule depends
// only on the inode, so every open of an inode agrees (the kernel refuses
// to mix passthrough and cached opens of one inode).
func (m *Mount) passedThrough(in *flist.Inode) bool {
	return !m.opts.NoPassthrough && (int64(in.Size) >= m.opts.PassthroughMin || in.Mode&0o111 != 0)
}

// storePages reads the verified content of a one-block file and stores it
// in the kernel's page cache of child.
func (m *Mount) storePages(child *fs.Inode, ino uint64, b flist.Block, size uint64) {
	c, err := m.opts.Cache.openChunk(m.ctx, b, m.opts.Store)
	if err != nil {
		if m.ctx.Err() == nil {
			m.log.Debug("read ahead of a following file failed", "file", m.pathOf(ino), "err", err)
		}
		return
	}
	buf := make([]byte, size)
	n, err := c.ReadAt(buf, 0)
	c.Close()
	if n != len(buf) || (err != nil && !errors.Is(err, io.EOF)) {
		// Its READ reports it, if it is read.
		return
	}
	if errno := child.WriteCache(0, buf); errno == 0 {
		m.ops.stored.Add(1)
		m.ops.storedBytes.Add(int64(n))
	}
}

func (m *Mount) pathOf(ino uint64) string {
	var parts []string
	for ino != flist.RootIno && ino != 0 {
		in := m.tree.Inodes[ino]
		parts = append(parts, in.Name)
		ino = in.Parent
	}
	for i, j := 0, len(parts)-1; i < j; i, j = i+1, j-1 {
		parts[i], parts[j] = parts[j], parts[i]
	}
	return "/" + strings.Join(parts, "/")
}

func (m *Mount) logBlockErr(path string, idx int, b flist.Block, err error) {
	if errors.Is(err, flist.ErrCorruptBlock) {
		m.log.Error("block verification failed", "file", path, "block", idx, "id", b.ID.String(), "err", err)
		return
	}
	m.log.Error("block unavailable", "file", path, "block", idx, "id", b.ID.String(), "err", err)
}

// handle reads a regular file through the cache. Reads may run
// concurrently (the kernel issues asynchronous reads); fetches happen
// outside the lock.
type handle struct {
	m      *Mount
	node   *node
	ino    uint64 // the file's path is computed for log lines only
	blocks []flist.Block
	size   uint64
	// passthrough: the inode is served by FUSE passthrough once cached.
	passthrough bool
	ioMode      *ioMode // multi-block files that may be passed through
	// verifyFirst: every block is verified before the first read is
	// served (an executable read without OPEN, under ExecVerify).
	verifyFirst bool
	verifyMu    sync.Mutex
	verified    bool

	mu    sync.Mutex
	open  map[int]*chunkFile // a few recently used chunk files
	order []int              // open chunks, oldest first
	last  int                // last chunk read, for sequential detection
	ra    int                // highest chunk queued for read-ahead
}

// chunkFile is an open cache file shared by concurrent reads.
type chunkFile struct {
	f    chunk
	refs int // readers using it, plus one while it is in handle.open
}

const openChunks = 2

var (
	_ fs.FileReader   = (*handle)(nil)
	_ fs.FileReleaser = (*handle)(nil)
)

func (h *handle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	h.m.ops.read.Add(1)
	if off < 0 {
		return nil, syscall.EINVAL
	}
	if uint64(off) >= h.size {
		return fuse.ReadResultData(nil), 0
	}
	if off == 0 {
		// The kernel missed the file's start in its page cache.
		h.m.readFollowingAhead(h.node)
	}
	end := min(uint64(off)+uint64(len(dest)), h.size)
	n := 0
	for pos := uint64(off); pos < end; {
		idx := int(pos / flist.BlockSize)
		cf, err := h.acquire(ctx, idx)
		if err != nil {
			return nil, syscall.EIO
		}
		within := int64(pos % flist.BlockSize)
		want := min(end-pos, flist.BlockSize-uint64(within))
		got, err := cf.f.ReadAt(dest[n:n+int(want)], within)
		h.release(cf)
		if err != nil && !(errors.Is(err, io.EOF) && got == int(want)) {
			h.m.log.Error("cache read failed", "file", h.m.pathOf(h.ino), "block", idx, "err", err)
			return nil, syscall.EIO
		}
		if got < int(want) {
			h.m.log.Error("cached block shorter than the file says", "file", h.m.pathOf(h.ino), "block", idx)
			return nil, syscall.EIO
		}
		n += got
		pos += uint64(got)
	}
	h.mu.Lock()
	h.readAhead(int((end - 1) / flist.BlockSize))
	h.mu.Unlock()
	h.m.ops.readBytes.Add(int64(n))
	return fuse.ReadResultData(dest[:n]), 0
}

// acquire returns chunk idx's open cache file, fetching it if needed.
func (h *handle) acquire(ctx context.Context, idx int) (*chunkFile, error) {
	h.mu.Lock()
	if cf, ok := h.open[idx]; ok {
		cf.refs++
		h.mu.Unlock()
		return cf, nil
	}
	h.mu.Unlock()
	f, err := h.m.opts.Cache.openChunk(ctx, h.blocks[idx], h.m.opts.Store)
	if err != nil {
		h.m.logBlockErr(h.m.pathOf(h.ino), idx, h.blocks[idx], err)
		return nil, err
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if cf, ok := h.open[idx]; ok { // another read won the race
		f.Close()
		cf.refs++
		return cf, nil
	}
	if h.open == nil {
		h.open = map[int]*chunkFile{}
	}
	cf := &chunkFile{f: f, refs: 2}
	h.open[idx] = cf
	h.order = append(h.order, idx)
	for len(h.order) > openChunks {
		old := h.order[0]
		h.order = h.order[1:]
		h.unref(h.open[old])
		delete(h.open, old)
	}
	return cf, nil
}

func (h *handle) release(cf *chunkFile) {
	h.mu.Lock()
	h.unref(cf)
	h.mu.Unlock()
}

func (h *handle) unref(cf *chunkFile) {
	cf.refs--
	if cf.refs == 0 {
		cf.f.Close()
	}
}

// readAhead queues the next blocks when reads look sequential.
func (h *handle) readAhead(idx int) {
	ra := h.m.opts.ReadAhead
	sequential := idx == h.last || idx == h.last+1
	h.last = idx
	if ra <= 0 || !sequential {
		return
	}
	from := max(idx+1, h.ra+1)
	to := min(idx+ra, len(h.blocks)-1)
	for i := from; i <= to; i++ {
		b := h.blocks[i]
		select {
		case h.m.raSem <- struct{}{}:
		default:
			return // enough read-ahead in flight
		}
		h.ra = i
		h.m.bg.Add(1)
		go func(i int) {
			defer h.m.bg.Done()
			defer func() { <-h.m.raSem }()
			if err := h.m.opts.Cache.Prefetch(h.m.ctx, b, h.m.opts.Store); err != nil && h.m.ctx.Err() == nil {
				h.m.logBlockErr(h.m.pathOf(h.ino), i, b, err)
			}
		}(i)
	}
}

// closeChunks lets go of the cache files the handle holds open.
func (h *handle) closeChunks() {
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, idx := range h.order {
		h.unref(h.open[idx])
	}
	h.open, h.order = nil, nil
}

func (h *handle) Release(ctx context.Context) syscall.Errno {
	h.m.ops.release.Add(1)
	h.releaseIOMode()
	h.mu.Lock()
	defer h.mu.Unlock()
	for _, idx := range h.order {
		h.unref(h.open[idx])
	}
	read := h.open != nil || h.last >= 0
	h.open, h.order = nil, nil
	if h.passthrough && len(h.blocks) > 1 && read {
		select {
		case h.m.asm <- h:
		default: // busy: the next open assembles it
		}
	}
	return 0
}

// passthroughHandle serves a single-block file straight from its cache
// file: the kernel reads it itself (FUSE passthrough), at local disk speed.
// If the kernel refuses passthrough, reads come through Read as usual.
type passthroughHandle struct {
	*handle
	f *os.File
}

var _ fs.FilePassthroughFder = (*passthroughHandle)(nil)

func (p *passthroughHandle) PassthroughFd() (int, bool) { return int(p.f.Fd()), true }

func (p *passthroughHandle) Read(ctx context.Context, dest []byte, off int64) (fuse.ReadResult, syscall.Errno) {
	p.m.ops.read.Add(1)
	n, err := p.f.ReadAt(dest, off)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, syscall.EIO
	}
	p.m.ops.readBytes.Add(int64(n))
	return fuse.ReadResultData(dest[:n]), 0
}

func (p *passthroughHandle) Release(ctx context.Context) syscall.Errno {
	p.m.ops.release.Add(1)
	p.releaseIOMode()
	p.f.Close()
	return 0
}
