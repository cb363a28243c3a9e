package mount

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"
)

// usageFile is the cache directory's total size in bytes, shared by every
// process that has the cache open (each container's supervisor mounts its
// own flist), so that the bound holds for the node, not for each process:
// whoever puts a file in place adds its size, whoever removes one (the
// unlink that succeeds) subtracts it, under an exclusive lock of the file.
// A Cache that opens the directory while no other has it open rewrites it
// from its scan, which heals the drift a crash between a rename and its
// count can leave (see usersFile).
//
// A process adds up small changes before it takes the lock (see
// usageBatch): four system calls per block fetched were a tenth of a cold
// read's. The bound may then be overshot by one batch per process.
const usageFile = ".usage"

// usageBatch is the most a process keeps uncounted in the shared total: a
// small fraction of the bound, at most 4 MiB.
func usageBatch(max int64) int64 {
	const most = 4 << 20
	if max > 0 && max/64 < most {
		return max / 64
	}
	return most
}

// usersFile is locked by every Cache open on the directory, through an open
// file description of its own (OFD locks, so that two Caches of one process
// exclude each other as two processes do): shared while it is in use, and
// exclusive while a Cache that found no other user rewrites the total from
// its scan. With another user a rescan would be wrong: its batched changes
// are not in the total yet, and it adds files while the scan runs.
const usersFile = ".users"

type usage struct {
	f     *os.File
	users *os.File
	batch int64

	mu      sync.Mutex
	pending int64 // changes of this process not yet in the file
	shared  int64 // the file's total when this process last locked it
}

// openUsage opens the shared total and registers this user of the
// directory. alone says that no other user has it open: the caller may
// then rewrite the total (set), and calls shareUse when done.
func openUsage(dir string, batch int64) (u *usage, alone bool, err error) {
	users, err := os.OpenFile(filepath.Join(dir, usersFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, false, fmt.Errorf("mount: cache users: %w", err)
	}
	switch err := ofdLock(users, unix.F_WRLCK, false); {
	case err == nil:
		alone = true
	case errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EACCES):
		// In use: wait for an opener that is rewriting the total.
		if err := ofdLock(users, unix.F_RDLCK, true); err != nil {
			users.Close()
			return nil, false, fmt.Errorf("mount: cache users: %w", err)
		}
	default:
		users.Close()
		return nil, false, fmt.Errorf("mount: cache users: %w", err)
	}
	f, err := os.OpenFile(filepath.Join(dir, usageFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		users.Close()
		return nil, false, fmt.Errorf("mount: cache usage: %w", err)
	}
	return &usage{f: f, users: users, batch: batch}, alone, nil
}

// shareUse turns the exclusive use openUsage gave an opener found alone
// into a shared one (atomically: no other opener can take it meanwhile).
func (u *usage) shareUse() error {
	if err := ofdLock(u.users, unix.F_RDLCK, false); err != nil {
		return fmt.Errorf("mount: cache users: %w", err)
	}
	return nil
}

// ofdLock locks the whole of f (an OFD lock, released when f is closed).
func ofdLock(f *os.File, typ int16, wait bool) error {
	cmd := unix.F_OFD_SETLK
	if wait {
		cmd = unix.F_OFD_SETLKW
	}
	lk := unix.Flock_t{Type: typ, Whence: io.SeekStart}
	for {
		err := unix.FcntlFlock(f.Fd(), cmd, &lk)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// add counts delta bytes and returns the directory's total as far as this
// process knows it.
func (u *usage) add(delta int64) (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pending += delta
	if -u.batch < u.pending && u.pending < u.batch {
		return max(0, u.shared+u.pending), nil
	}
	return u.flushLocked(func(total int64) int64 { return total })
}

// estimate is the total without taking the lock: one read of the file,
// plus this process's pending changes (other processes' pending changes are
// missing, at most a batch each).
func (u *usage) estimate() int64 {
	u.mu.Lock()
	defer u.mu.Unlock()
	if total, err := u.read(); err == nil {
		u.shared = total
	}
	return max(0, u.shared+u.pending)
}

// read returns the file's total. An empty or cut file reads as 0: the
// total is only a count, which the next Cache to open the directory
// rewrites from a scan, and a damaged file must not stop the cache.
func (u *usage) read() (int64, error) {
	var b [8]byte
	n, err := u.f.ReadAt(b[:], 0)
	if errors.Is(err, io.EOF) {
		return 0, nil
	}
	if err != nil {
		return 0, fmt.Errorf("mount: cache usage: %w", err)
	}
	if n != len(b) {
		return 0, nil
	}
	return int64(binary.LittleEndian.Uint64(b[:])), nil
}

func (u *usage) set(total int64) error {
	u.mu.Lock()
	defer u.mu.Unlock()
	u.pending = 0
	_, err := u.flushLocked(func(int64) int64 { return total })
	return err
}

// total counts this process's pending changes and returns the shared total.
func (u *usage) total() (int64, error) {
	u.mu.Lock()
	defer u.mu.Unlock()
	return u.flushLocked(func(total int64) int64 { return total })
}

// flushLocked adds the pending changes to the file's total, then applies fn.
func (u *usage) flushLocked(fn func(int64) int64) (int64, error) {
	pending := u.pending
	next, err := u.update(func(total int64) int64 { return fn(max(0, total+pending)) })
	if err != nil {
		return 0, err
	}
	u.pending, u.shared = 0, next
	return next, nil
}

func (u *usage) update(fn func(int64) int64) (int64, error) {
	fd := int(u.f.Fd())
	if err := flock(fd, unix.LOCK_EX); err != nil {
		return 0, err
	}
	defer flock(fd, unix.LOCK_UN)
	total, err := u.read()
	if err != nil {
		return 0, err
	}
	next := fn(total)
	if next != total {
		var b [8]byte
		binary.LittleEndian.PutUint64(b[:], uint64(next))
		if _, err := u.f.WriteAt(b[:], 0); err != nil {
			return 0, fmt.Errorf("mount: cache usage: %w", err)
		}
	}
	return next, nil
}

// close counts the pending changes and closes the files, which ends this
// use of the directory.
func (u *usage) close() error {
	_, err := u.total()
	if cerr := u.f.Close(); err == nil {
		err = cerr
	}
	if cerr := u.users.Close(); err == nil {
		err = cerr
	}
	return err
}

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// tempName is the name of a file being written in the cache: it carries the
// writer's pid (taken once, os.Getpid is a system call) so that a scan by
// another process removes only what a dead process left behind.
func (c *Cache) tempName(kind string) string {
	return fmt.Sprintf(".%s-%d-%d", kind, c.pid, c.tmpSeq.Add(1))
}

// staleTemp says whether name is a temporary file (see tempName) whose
// writer is gone. Other names (the usage file, the trust records) are not
// temporary files at all.
func staleTemp(name string) bool {
	kind, rest, ok := strings.Cut(strings.TrimPrefix(name, "."), "-")
	if !strings.HasPrefix(name, ".") || !ok || (kind != "fetch" && kind != "assemble") {
		return false
	}
	pid, err := strconv.Atoi(strings.SplitN(rest, "-", 2)[0])
	if err != nil || pid <= 0 {
		return true // no writer named: left by an older version
	}
	return errors.Is(syscall.Kill(pid, 0), syscall.ESRCH)
}
