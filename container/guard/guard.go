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

// HashTree returns the content hashes of every regular file with an exec
// bit under dir: the set of programs an image may run.
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
		if info.Mode().Perm()&0o111 == 0 {
			return nil
		}
		f, err := os.Open(p)
		if err != nil {
			return err
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
	log      *slog.Logger
	denied   atomic.Uint64
	allowedN atomic.Uint64
	done     chan struct{}

	mu    sync.Mutex
	cache map[statKey]bool
}

type statKey struct {
	dev, ino, size uint64
	mtime, ctime   int64
}

// Start watches the filesystem holding path (FAN_MARK_FILESYSTEM: every
// mount of it, including those in containers' mount namespaces) and
// decides every exec on it until Close: a program runs if digest (nil:
// SHA256) of its content is in allowed.
func Start(path string, digest func(io.Reader) (Hash, error), allowed map[Hash]bool, log *slog.Logger) (*Guard, error) {
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
	if err := unix.FanotifyMark(fd, unix.FAN_MARK_ADD|unix.FAN_MARK_FILESYSTEM, unix.FAN_OPEN_EXEC_PERM, unix.AT_FDCWD, path); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("guard: fanotify_mark %s: %w", path, err)
	}
	g := &Guard{f: os.NewFile(uintptr(fd), "fanotify"), digest: digest, allowed: allowed, log: log,
		done: make(chan struct{}), cache: map[statKey]bool{}}
	go g.loop()
	return g, nil
}

// Denied is how many launches were refused.
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
				if mask&unix.FAN_OPEN_EXEC_PERM != 0 {
					g.decide(int(fd), pid)
				}
				unix.Close(int(fd))
			}
			off += evLen
		}
	}
}

func (g *Guard) decide(fd int, pid int32) {
	ok := g.check(fd)
	resp := uint32(unix.FAN_ALLOW)
	if !ok {
		resp = unix.FAN_DENY
		g.denied.Add(1)
		target, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(fd))
		g.log.Warn("exec denied: file is not part of the image", "file", target, "pid", pid)
	} else {
		g.allowedN.Add(1)
	}
	var b [8]byte
	binary.NativeEndian.PutUint32(b[0:], uint32(fd))
	binary.NativeEndian.PutUint32(b[4:], resp)
	if _, err := unix.Write(int(g.f.Fd()), b[:]); err != nil {
		g.log.Error("exec guard cannot answer", "err", err)
	}
}

// check hashes the file behind fd (cached by inode identity and times).
func (g *Guard) check(fd int) bool {
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return false
	}
	k := statKey{dev: st.Dev, ino: st.Ino, size: uint64(st.Size), mtime: st.Mtim.Nano(), ctime: st.Ctim.Nano()}
	g.mu.Lock()
	v, hit := g.cache[k]
	g.mu.Unlock()
	if hit {
		return v
	}
	d, err := g.digest(io.NewSectionReader(fdReaderAt(fd), 0, st.Size))
	if err != nil {
		return false
	}
	ok := g.allowed[d]
	g.mu.Lock()
	if len(g.cache) > 65536 {
		clear(g.cache)
	}
	g.cache[k] = ok
	g.mu.Unlock()
	return ok
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
