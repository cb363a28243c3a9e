package dirlock

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// Name is the lock file's name in the directory.
const Name = ".lock"

// Take locks dir/.lock (how: unix.LOCK_SH or unix.LOCK_EX, waiting for it),
// making dir (with perm) and the file if needed. Closing the returned file
// lets go. Each call opens its own file description, so two goroutines of
// one process exclude each other as two processes do.
func Take(dir string, perm os.FileMode, how int) (*os.File, error) {
	if err := os.MkdirAll(dir, perm); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(filepath.Join(dir, Name), os.O_CREATE|os.O_RDWR|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	for {
		err = unix.Flock(int(f.Fd()), how)
		if !errors.Is(err, unix.EINTR) {
			break
		}
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("lock %s: %w", dir, err)
	}
	return f, nil
}
