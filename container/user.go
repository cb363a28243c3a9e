package container

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"regexp"
	"strconv"
	"strings"
	"sync"

	securejoin "github.com/cyphar/filepath-securejoin"
	"github.com/moby/sys/user"
	"golang.org/x/sys/unix"
)

// userName is what Docker accepts as a user or group name in USER;
// compiled on first use, as package init runs in every zos start.
var userName = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.-]{0,31}$`) })

// checkUser checks the syntax of a user spec ("", "uid", "uid:gid",
// "name", "name:group"); names are resolved at start by resolveUser.
func checkUser(s string) error {
	if s == "" {
		return nil
	}
	u, g, hasG := strings.Cut(s, ":")
	parts := []string{u}
	if hasG {
		parts = append(parts, g)
	}
	for _, part := range parts {
		if n, err := strconv.Atoi(part); err == nil {
			if n < 0 || n > 65535 {
				return fmt.Errorf("%w: user %q: ids must be below 65536", ErrInvalidConfig, s)
			}
			continue
		}
		if !userName().MatchString(part) {
			return fmt.Errorf("%w: user %q: want uid[:gid] or name[:group]", ErrInvalidConfig, s)
		}
	}
	return nil
}

// maxIDFile bounds what is read of the image's /etc/passwd and /etc/group.
const maxIDFile = 1 << 20

// resolveUser turns a user spec into ids. Numeric specs need nothing from
// the image; names are looked up in the container's own /etc/passwd and
// /etc/group, which the container's writable layer may have replaced: the
// files are resolved inside rootfs (symlinks cannot leave it), must be
// regular files (a FIFO would hang the caller) and are read up to 1 MiB.
func resolveUser(rootfs, s string) (uid, gid int, err error) {
	if err := checkUser(s); err != nil {
		return 0, 0, err
	}
	if uid, gid, err := parseUser(s); err == nil {
		return uid, gid, nil
	}
	passwd, err := readImageFile(rootfs, "/etc/passwd")
	if err != nil {
		return 0, 0, fmt.Errorf("%w: user %q: %v", ErrInvalidConfig, s, err)
	}
	group, err := readImageFile(rootfs, "/etc/group")
	if err != nil && !os.IsNotExist(err) {
		return 0, 0, fmt.Errorf("%w: user %q: %v", ErrInvalidConfig, s, err)
	}
	eu, err := user.GetExecUser(s, nil, bytes.NewReader(passwd), bytes.NewReader(group))
	if err != nil {
		return 0, 0, fmt.Errorf("%w: user %q in the image: %v", ErrInvalidConfig, s, err)
	}
	if eu.Uid < 0 || eu.Uid > 65535 || eu.Gid < 0 || eu.Gid > 65535 {
		return 0, 0, fmt.Errorf("%w: user %q resolves to %d:%d, ids must be below 65536", ErrInvalidConfig, s, eu.Uid, eu.Gid)
	}
	return eu.Uid, eu.Gid, nil
}

// readImageFile reads a small regular file of the container's rootfs.
func readImageFile(rootfs, name string) ([]byte, error) {
	p, err := securejoin.SecureJoin(rootfs, name)
	if err != nil {
		return nil, err
	}
	f, err := os.OpenFile(p, os.O_RDONLY|unix.O_NONBLOCK|unix.O_NOFOLLOW, 0)
	if err != nil {
		if os.IsNotExist(err) {
			return nil, err
		}
		return nil, fmt.Errorf("%s: %w", name, err)
	}
	defer f.Close()
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if !st.Mode().IsRegular() {
		return nil, fmt.Errorf("%s is not a regular file", name)
	}
	b, err := io.ReadAll(io.LimitReader(f, maxIDFile+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxIDFile {
		return nil, fmt.Errorf("%s is larger than %d bytes", name, maxIDFile)
	}
	return b, nil
}
