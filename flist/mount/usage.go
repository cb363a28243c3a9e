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
	"syscall"

	"golang.org/x/sys/unix"
)

// usageFile is the cache directory's total size in bytes, shared by every
// process that has the cache open (each container's supervisor mounts its
// own flist), so that the bound holds for the node, not for each process:
// whoever puts a file in place adds its size, whoever removes one (the
// unlink that succeeds) subtracts it, under an exclusive lock of the file.
// Each Cache rewrites it from a scan when it opens, which heals the drift a
// crash between a rename and its count can leave.
const usageFile = ".usage"

type usage struct{ f *os.File }

func openUsage(dir string) (*usage, error) {
	f, err := os.OpenFile(filepath.Join(dir, usageFile), os.O_RDWR|os.O_CREATE, 0o600)
	if err != nil {
		return nil, fmt.Errorf("mount: cache usage: %w", err)
	}
	return &usage{f: f}, nil
}

// add changes the total by delta and returns the new total.
func (u *usage) add(delta int64) (int64, error) {
	return u.update(func(total int64) int64 { return max(0, total+delta) })
}

// set replaces the total (after a scan).
func (u *usage) set(total int64) error {
	_, err := u.update(func(int64) int64 { return total })
	return err
}

// total reads the current total.
func (u *usage) total() (int64, error) {
	return u.update(func(total int64) int64 { return total })
}

func (u *usage) update(fn func(int64) int64) (int64, error) {
	fd := int(u.f.Fd())
	if err := flock(fd, unix.LOCK_EX); err != nil {
		return 0, err
	}
	defer flock(fd, unix.LOCK_UN)
	var b [8]byte
	var total int64
	if n, err := u.f.ReadAt(b[:], 0); err == nil || (errors.Is(err, io.EOF) && n == 0) {
		total = int64(binary.LittleEndian.Uint64(b[:]))
	} else {
		return 0, fmt.Errorf("mount: cache usage: %w", err)
	}
	next := fn(total)
	if next != total {
		binary.LittleEndian.PutUint64(b[:], uint64(next))
		if _, err := u.f.WriteAt(b[:], 0); err != nil {
			return 0, fmt.Errorf("mount: cache usage: %w", err)
		}
	}
	return next, nil
}

func (u *usage) close() error { return u.f.Close() }

func flock(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}

// tempName is the name of a file being written in the cache: it carries the
// writer's pid so that a scan by another process removes only what a dead
// process left behind.
func tempName(kind string, seq int64) string {
	return fmt.Sprintf(".%s-%d-%d", kind, os.Getpid(), seq)
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
