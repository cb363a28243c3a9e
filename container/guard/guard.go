package guard

import (
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"

	"golang.org/x/sys/unix"
)

// Hash is a SHA-256 content hash.
type Hash = [32]byte

// SHA256 is the default content digest.
func SHA256(r io.Reader) (Hash, error) {
	h := sha256.New()
	if _, err := io.Copy(h, r); err != nil {
		return Hash{}, err
	}
	return Hash(h.Sum(nil)), nil
}

// HashTree returns the content hashes of every regular file under dir with
// an exec bit or an ELF header (shared libraries are often mode 0644): the
// set of programs and libraries an image may run.
func HashTree(dir string) (map[Hash]bool, error) {
	out := map[Hash]bool{}
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return err
		}
		f, err := os.Open(p)
		if err != nil {
			return err
		}
		if info.Mode().Perm()&0o111 == 0 {
			var magic [4]byte
			if n, _ := f.ReadAt(magic[:], 0); n != 4 || magic != [4]byte{0x7f, 'E', 'L', 'F'} {
				f.Close()
				return nil
			}
		}
		h := sha256.New()
		_, err = io.Copy(h, f)
		f.Close()
		if err != nil {
			return err
		}
		out[Hash(h.Sum(nil))] = true
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("guard: hash %s: %w", dir, err)
	}
	return out, nil
}

// Guard watches one filesystem.
type Guard struct {
	f        *os.File
	digest   func(io.Reader) (Hash, error)
	allowed  map[Hash]bool
	libSet   map[Hash]bool
	log      *slog.Logger
	denied   atomic.Uint64
	allowedN atomic.Uint64
	done     chan struct{}

	path  string // the watched mount point
	upper string // the overlay's writable layer on the host, or ""
	// lowerVerified: exec of a file whose data is not in the writable
	// layer is allowed without hashing (see Options.LowerVerified).
	lowerVerified bool

	ready chan struct{} // closed once allowed and libSet are known

	mu    sync.Mutex
	cache map[statKey]bool
	libs  map[statKey]bool
}

type statKey struct {
	dev, ino, size uint64
	mtime, ctime   int64
}

// Options says what a Guard allows.
type Options struct {
	// Digest hashes a file's content; nil means SHA256.
	Digest func(io.Reader) (Hash, error)
	// Allowed is the content of the programs that may be exec'd.
	Allowed map[Hash]bool
	// Upper, if set, is the overlay's writable layer as seen on the host:
	// opening an ELF file present in it is refused unless its content is
	// in Libs (see Start).
	Upper string
	// Libs is the content an ELF file of Upper may have to be opened (the
	// image's files); nil means Allowed.
	Libs map[Hash]bool
	// LowerVerified says that every file of the overlay's lower layer is
	// the image's own content and may run: its filesystem checks each
	// read against the signed metadata (the flist mount), and only the
	// image's executables have an exec bit there (the kernel refuses to
	// exec a file without one). A launch whose file lives in the lower
	// layer is then allowed without reading it; one whose data is in
	// the writable layer (new, copied up, modified) is still hashed.
	// Which layer holds a file is asked of the kernel, not of paths: see
	// inLowerFS. Needs Upper; ignored if its filesystem cannot tell.
	LowerVerified bool
	// Log receives denials; nil discards.
	Log *slog.Logger
	// Pending, if set, supplies Allowed and Libs (nil: Allowed) instead,
	// computed while the container starts: Start returns at once and
	// every decision that needs a content check waits until Pending
	// returns (see sets). If it fails, every such launch is refused.
	Pending func() (allowed, libs map[Hash]bool, err error)
}

// Start watches the filesystem holding path (FAN_MARK_FILESYSTEM: every
// mount of it, including those in containers' mount namespaces) and
// decides every exec on it until Close: a program runs if the digest of its
// content is in o.Allowed.
//
// With o.Upper it also decides every open on the filesystem
// (FAN_OPEN_PERM): opening an ELF file that exists in Upper, whatever the
// access mode, is refused unless its content is in o.Libs. This is what
// stops a shared library written into the container from being loaded
// (LD_PRELOAD, dlopen): the dynamic loader opens libraries for reading,
// which FAN_OPEN_EXEC_PERM does not see. Files only in the lower layer (the
// signed image) open without a content check.
func Start(path string, o Options) (*Guard, error) {
	digest, allowed, log, upper := o.Digest, o.Allowed, o.Log, o.Upper
	libs := o.Libs
	if libs == nil {
		libs = allowed
	}
	if digest == nil {
		digest = SHA256
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	fd, err := unix.FanotifyInit(unix.FAN_CLASS_CONTENT|unix.FAN_CLOEXEC|unix.FAN_NONBLOCK, unix.O_RDONLY|unix.O_LARGEFILE|unix.O_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("guard: fanotify_init: %w", err)
	}
	mask := uint64(unix.FAN_OPEN_EXEC_PERM)
	if upper != "" {
		mask |= unix.FAN_OPEN_PERM
	}
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, mask, unix.AT_FDCWD, path); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("guard: fanotify_mark %s: %w", path, err)
	}
	g := &Guard{f: os.NewFile(uintptr(fd), "fanotify"), digest: digest, allowed: allowed, log: log,
		done: make(chan struct{}), cache: map[statKey]bool{}, libs: map[statKey]bool{}, libSet: libs, upper: upper, path: filepath.Clean(path),
		ready: make(chan struct{})}
	if o.LowerVerified && upper != "" {
		// The test of inLowerFS relies on the writable layer's
		// filesystem answering FS_IOC_GETFLAGS.
		if up, err := os.Open(upper); err == nil {
			g.lowerVerified = hasFileattr(int(up.Fd()))
			up.Close()
		}
		if !g.lowerVerified {
			log.Warn("exec guard: the writable layer's filesystem has no file attributes; hashing every launch", "upper", upper)
		}
	}
	if o.Pending == nil {
		close(g.ready)
	} else {
		go func() {
			defer close(g.ready)
			allowed, libs, err := o.Pending()
			if err != nil {
				log.Error("exec guard: no allowed set, refusing launches", "err", err)
				allowed, libs = nil, nil
			}
			if libs == nil {
				libs = allowed
			}
			g.allowed, g.libSet = allowed, libs
		}()
	}
	go g.loop()
	return g, nil
}

// Denied is how many launches (execs and refused library opens) were refused.
func (g *Guard) Denied() uint64 { return g.denied.Load() }

// Allowed is how many launches were allowed.
func (g *Guard) Allowed() uint64 { return g.allowedN.Load() }

// Close stops watching.
func (g *Guard) Close() error {
	err := g.f.Close()
	<-g.done
	return err
}

const metaSize = 24 // struct fanotify_event_metadata

func (g *Guard) loop() {
	defer close(g.done)
	buf := make([]byte, 4096)
	for {
		n, err := g.f.Read(buf)
		if err != nil {
			if errors.Is(err, os.ErrClosed) || errors.Is(err, fs.ErrClosed) {
				return
			}
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
				continue
			}
			g.log.Error("exec guard stopped", "err", err)
			return
		}
		for off := 0; off+metaSize <= n; {
			evLen := int(binary.NativeEndian.Uint32(buf[off:]))
			mask := binary.NativeEndian.Uint64(buf[off+8:])
			fd := int32(binary.NativeEndian.Uint32(buf[off+16:]))
			pid := int32(binary.NativeEndian.Uint32(buf[off+20:]))
			if evLen < metaSize {
				break
			}
			if fd >= 0 {
				switch {
				case mask&unix.FAN_OPEN_EXEC_PERM != 0:
					ok := g.lowerVerified && g.inLowerFS(int(fd)) || g.check(int(fd))
					if ok {
						g.allowedN.Add(1)
					}
					g.decide(int(fd), pid, ok, "exec denied: file is not part of the image")
				case mask&unix.FAN_OPEN_PERM != 0:
					g.decide(int(fd), pid, g.checkOpen(int(fd)), "load denied: ELF file written into the container is not part of the image")
				}
				unix.Close(int(fd))
			}
			off += evLen
		}
	}
}

func (g *Guard) decide(fd int, pid int32, ok bool, msg string) {
	resp := uint32(unix.FAN_ALLOW)
	if !ok {
		resp = unix.FAN_DENY
		g.denied.Add(1)
		target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		g.log.Warn(msg, "file", target, "pid", pid)
	}
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(fd))
	binary.NativeEndian.PutUint32(b[4:], resp)
	if _, err := g.f.Write(b[:]); err != nil && !errors.Is(err, os.ErrClosed) {
		g.log.Error("exec guard cannot answer", "err", err)
	}
}

// check hashes the file behind fd (cached by inode identity and times).
func (g *Guard) check(fd int) bool { return g.checkIn(fd, g.sets().allowed, g.cache) }

// allowedSets are the sets decisions are checked against.
type allowedSets struct{ allowed, libs map[Hash]bool }

// sets waits until the allowed sets are known (see Options.Pending) and
// returns them. Only the decisions that need them wait (and the events
// behind them, which the loop answers in order): a launch from the
// verified lower layer, or an open of anything but an ELF file of the
// writable layer, is answered at once, so a large image's programs start
// while its sets are still being built.
func (g *Guard) sets() allowedSets {
	<-g.ready
	return allowedSets{g.allowed, g.libSet}
}

// checkIn hashes the file behind fd and looks it up in set, caching the
// answer in cache (if not nil) by inode identity and times.
func (g *Guard) checkIn(fd int, set map[Hash]bool, cache map[statKey]bool) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	k := statKey{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
	g.mu.Lock()
	v, hit := cache[k]
	g.mu.Unlock()
	if hit {
		return v
	}
	d, err := g.digest(io.NewSectionReader(fdReaderAt(fd), 0, st.Size))
	if err != nil {
		return false
	}
	ok := set[d]
	if cache == nil {
		return ok
	}
	g.mu.Lock()
	if len(cache) > 65536 {
		clear(cache)
	}
	cache[k] = ok
	g.mu.Unlock()
	return ok
}

// checkOpen decides a plain open: anything but an ELF file of the
// writable layer is allowed; such a file must have the image's content.
// Decisions are cached by inode identity and times, so the common case (a
// file seen before) costs one fstat.
func (g *Guard) checkOpen(fd int) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG || st.Size < 4 {
		return true
	}
	k := statKey{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
	g.mu.Lock()
	v, hit := g.libs[k]
	g.mu.Unlock()
	if hit {
		return v
	}
	ok := true
	var magic [4]byte
	if n, err := unix.Pread(fd, magic[:], 0); err != nil || n != 4 {
		return err == nil // unreadable: refuse; short: not ELF
	}
	if magic == [4]byte{0x7f, 'E', 'L', 'F'} && g.inUpper(fd) {
		ok = g.checkIn(fd, g.sets().libs, nil)
	}
	g.mu.Lock()
	if len(g.libs) > 65536 {
		clear(g.libs)
	}
	g.libs[k] = ok
	g.mu.Unlock()
	return ok
}

// inUpper reports whether the file behind fd is present in the writable
// layer. Its path is the one the kernel reports for the fd, relative to
// the container's root; if that is unknown the answer is yes (checked).
func (g *Guard) inUpper(fd int) bool {
	p, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
	if err != nil || !filepath.IsAbs(p) || strings.HasSuffix(p, " (deleted)") {
		// Unlinked while the open waited: its path says nothing.
		return true
	}
	// Opened through the host's mount of the filesystem, or from inside
	// the container (the path is then relative to its root).
	if rel, ok := strings.CutPrefix(p, g.path+"/"); ok {
		p = "/" + rel
	}
	var st unix.Stat_t
	err = unix.Lstat(filepath.Join(g.upper, p), &st)
	if err == nil {
		return true
	}
	return !errors.Is(err, unix.ENOENT) && !errors.Is(err, unix.ENOTDIR)
}

// inLowerFS reports whether the overlay file behind fd has its data in the
// lower layer, on a filesystem other than the writable layer's. Neither
// paths nor stat can tell: a file copied up (and then rewritten) keeps the
// st_dev and st_ino of its lower origin, and a path can be renamed or
// unlinked while the launch waits. But overlayfs answers FS_IOC_GETFLAGS
// from the file's real inode: the writable layer's filesystem has file
// attributes (checked at Start), the flist's FUSE mount has none (ENOTTY).
// So ENOTTY means the file is the lower layer's; any other answer, or an
// error, sends the file to the content check.
func (g *Guard) inLowerFS(fd int) bool {
	_, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	return errors.Is(err, unix.ENOTTY)
}

// hasFileattr says whether fd's filesystem answers FS_IOC_GETFLAGS.
func hasFileattr(fd int) bool {
	_, err := unix.IoctlGetUint32(fd, unix.FS_IOC_GETFLAGS)
	return err == nil
}

// fdReaderAt reads a file descriptor at offsets (pread), leaving it open.
type fdReaderAt int

func (f fdReaderAt) ReadAt(p []byte, off int64) (int, error) {
	n, err := unix.Pread(int(f), p, off)
	if err != nil {
		return n, err
	}
	if n < len(p) {
		return n, io.EOF
	}
	return n, nil
}
