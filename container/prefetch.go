package container

import (
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/starttrace"
)

// defaultPath is the PATH a container's processes get unless its
// environment sets one.
const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// prefetchEntrypoint reads the container's program from the image's lower
// directory, so that a lazily fetched image (an flist whose blocks are not
// cached) fetches it while libcontainer and zos init start, instead of when
// it is exec'd. It is a hint: any failure is ignored. It returns at once.
func prefetchEntrypoint(lower string, c *Config) {
	go func() {
		f, err := openEntrypoint(lower, c)
		if err != nil {
			return
		}
		defer f.Close()
		// Readahead, not a read: pages already cached cost nothing,
		// missing ones are fetched without a copy to us.
		if st, err := f.Stat(); err == nil {
			unix.Fadvise(int(f.Fd()), 0, st.Size(), unix.FADV_WILLNEED)
			starttrace.Mark("cli", "entrypoint prefetch requested")
		}
	}()
}

// openEntrypoint opens the regular file the container's program names in
// the image at lower, looked up in PATH like execvp. It is resolved inside
// the image (symlinks cannot leave it) and opened without blocking, so a
// hostile image cannot make the host read its own files or wait on a FIFO.
func openEntrypoint(lower string, c *Config) (*os.File, error) {
	args := c.Args()
	if len(args) == 0 || args[0] == "" {
		return nil, os.ErrNotExist
	}
	var candidates []string
	if strings.Contains(args[0], "/") {
		if !path.IsAbs(args[0]) {
			return nil, os.ErrNotExist
		}
		candidates = []string{args[0]}
	} else {
		p := defaultPath
		for _, e := range c.Env {
			if v, ok := strings.CutPrefix(e, "PATH="); ok {
				p = v
			}
		}
		for _, dir := range strings.Split(p, ":") {
			if path.IsAbs(dir) {
				candidates = append(candidates, path.Join(dir, args[0]))
			}
		}
	}
	root, err := unix.Open(lower, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer unix.Close(root)
	for _, p := range candidates {
		fd, err := unix.Openat2(root, strings.TrimPrefix(p, "/"), &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if err != nil {
			continue
		}
		f := os.NewFile(uintptr(fd), p)
		if st, err := f.Stat(); err == nil && st.Mode().IsRegular() {
			return f, nil
		}
		f.Close()
	}
	return nil, os.ErrNotExist
}
