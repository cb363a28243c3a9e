package regfile

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ErrTooLarge is returned by ReadFile for a file over its limit.
var ErrTooLarge = errors.New("regfile: file too large")

// Open opens path read-only, outside the network poller.
func Open(path string) (*os.File, error) {
	return open(path, unix.O_RDONLY, 0)
}

// OpenFD opens path read-only and returns the bare descriptor: no
// *os.File, whose making costs one more system call (os.NewFile asks for
// the descriptor's flags). The caller closes it with unix.Close.
func OpenFD(path string) (int, error) {
	return openFD(path, unix.O_RDONLY, 0)
}

// CreateExclusive creates path for writing with mode perm, failing if it
// exists, outside the network poller.
func CreateExclusive(path string, perm os.FileMode) (*os.File, error) {
	return open(path, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL, uint32(perm.Perm()))
}

func open(path string, flags int, perm uint32) (*os.File, error) {
	fd, err := openFD(path, flags, perm)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

func openFD(path string, flags int, perm uint32) (int, error) {
	for {
		fd, err := unix.Open(path, flags|unix.O_CLOEXEC, perm)
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// ReadFile returns the content of path, a file that does not change while
// it is read (a content-addressed block, for example), in four system
// calls: open, fstat, read, close. A file over limit bytes is refused
// before it is read (limit <= 0: no limit).
func ReadFile(path string, limit int64) ([]byte, error) {
	fd, err := openFD(path, unix.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return nil, &os.PathError{Op: "stat", Path: path, Err: err}
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return nil, &os.PathError{Op: "read", Path: path, Err: errors.New("not a regular file")}
	}
	if limit > 0 && st.Size > limit {
		return nil, fmt.Errorf("%w: %s is %d bytes, limit %d", ErrTooLarge, path, st.Size, limit)
	}
	b := make([]byte, st.Size)
	for n := 0; n < len(b); {
		m, err := unix.Pread(fd, b[n:], int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if m == 0 {
			return nil, &os.PathError{Op: "read", Path: path, Err: io.ErrUnexpectedEOF}
		}
		n += m
	}
	return b, nil
}
