package flisttest

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// Random returns n deterministic pseudo-random bytes.
func Random(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// MakeTree fills dir with: nested directories with odd modes, empty,
// small, exactly-one-block and multi-block files, a duplicate file (dedup),
// a setuid executable, a symlink (relative and absolute), a hard link, a
// fifo, a user xattr, and as root a char device, a security.capability
// xattr and a non-root owner. Times are fixed.
func MakeTree(t testing.TB, dir string) {
	t.Helper()
	const bs = 512 * 1024
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	write := func(rel string, data []byte, mode os.FileMode) {
		p := filepath.Join(dir, rel)
		must(os.MkdirAll(filepath.Dir(p), 0o755))
		must(os.WriteFile(p, data, mode))
		must(os.Chmod(p, mode))
	}
	write("empty", nil, 0o644)
	write("small.txt", []byte("hello zos\n"), 0o644)
	write("etc/one-block", Random(1, bs), 0o600)
	write("usr/bin/tool", Random(2, 2*bs+12345), 0o755)
	must(os.Chmod(filepath.Join(dir, "usr/bin/tool"), 0o4755))
	write("usr/lib/big.bin", Random(3, 3*bs+7), 0o644)
	write("usr/lib/dup.bin", Random(3, 3*bs+7), 0o644)
	write("deep/a/b/c/d/file", []byte("deep"), 0o640)
	must(os.Symlink("../small.txt", filepath.Join(dir, "etc/rel-link")))
	must(os.Symlink("/etc/hostname", filepath.Join(dir, "etc/abs-link")))
	must(os.Link(filepath.Join(dir, "usr/bin/tool"), filepath.Join(dir, "usr/bin/tool-hardlink")))
	must(unix.Mkfifo(filepath.Join(dir, "fifo"), 0o620))
	must(os.Mkdir(filepath.Join(dir, "private"), 0o700))
	must(os.Chmod(filepath.Join(dir, "deep/a"), 0o1777))
	if err := unix.Lsetxattr(filepath.Join(dir, "small.txt"), "user.zos", []byte("xattr value"), 0); err != nil && !errors.Is(err, unix.ENOTSUP) {
		t.Fatal(err)
	}
	if os.Geteuid() == 0 {
		must(unix.Mknod(filepath.Join(dir, "null"), syscall.S_IFCHR|0o666, int(unix.Mkdev(1, 3))))
		must(os.Lchown(filepath.Join(dir, "etc/one-block"), 1234, 5678))
		// cap_net_bind_service, VFS_CAP_REVISION_2 layout.
		capv := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x04, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
		must(unix.Lsetxattr(filepath.Join(dir, "usr/lib/big.bin"), "security.capability", capv, 0))
	}
	mt := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		must(err)
		ts := []unix.Timespec{unix.NsecToTimespec(mt.UnixNano()), unix.NsecToTimespec(mt.UnixNano())}
		return unix.UtimesNanoAt(unix.AT_FDCWD, p, ts, unix.AT_SYMLINK_NOFOLLOW)
	})
	// Directories last (children changed their mtime).
	var dirs []string
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for _, p := range dirs {
		must(os.Chtimes(p, mt, mt))
	}
}

// Entry is what Compare checks of one path.
type Entry struct {
	Mode   uint32
	UID    uint32
	GID    uint32
	Size   int64
	Mtime  int64
	Rdev   uint64
	Target string
	Xattrs map[string]string
	Link   string // first path of the same inode (hard links)
	Sum    []byte
}

// Scan describes every entry under dir. With owners false, uid/gid are
// not recorded (unpack without root).
func Scan(t testing.TB, dir string, owners bool) map[string]Entry {
	t.Helper()
	out := map[string]Entry{}
	seen := map[uint64]string{}
	var paths []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		paths = append(paths, p)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(paths)
	for _, p := range paths {
		rel, _ := filepath.Rel(dir, p)
		var st syscall.Stat_t
		if err := syscall.Lstat(p, &st); err != nil {
			t.Fatal(err)
		}
		e := Entry{Mode: st.Mode, Mtime: st.Mtim.Sec, Xattrs: map[string]string{}}
		if owners {
			e.UID, e.GID = st.Uid, st.Gid
		}
		switch st.Mode & syscall.S_IFMT {
		case syscall.S_IFREG:
			e.Size = st.Size
			b, err := os.ReadFile(p)
			if err != nil {
				t.Fatalf("read %s: %v", rel, err)
			}
			e.Sum = checksum(b)
			if st.Nlink > 1 {
				if first, ok := seen[st.Ino]; ok {
					e.Link = first
				} else {
					seen[st.Ino] = rel
				}
			}
		case syscall.S_IFLNK:
			e.Target, _ = os.Readlink(p)
		case syscall.S_IFCHR, syscall.S_IFBLK:
			e.Rdev = st.Rdev
		}
		if rel == "." {
			e.Mtime = 0 // the root's time is the mount point's
			e.Mode &^= 0o7777
			e.UID, e.GID = 0, 0
		}
		if sz, err := unix.Llistxattr(p, nil); err == nil && sz > 0 {
			buf := make([]byte, sz)
			n, _ := unix.Llistxattr(p, buf)
			for _, name := range bytes.Split(buf[:n], []byte{0}) {
				if len(name) == 0 {
					continue
				}
				v := make([]byte, 256)
				m, err := unix.Lgetxattr(p, string(name), v)
				if err == nil {
					e.Xattrs[string(name)] = string(v[:m])
				}
			}
		}
		out[rel] = e
	}
	return out
}

func checksum(b []byte) []byte {
	h := sha256.Sum256(b)
	return h[:]
}

// Compare fails t for every difference between two scans.
func Compare(t testing.TB, want, got map[string]Entry) {
	t.Helper()
	for p, w := range want {
		g, ok := got[p]
		if !ok {
			t.Errorf("%s: missing", p)
			continue
		}
		if d := diff(w, g); d != "" {
			t.Errorf("%s: %s", p, d)
		}
	}
	for p := range got {
		if _, ok := want[p]; !ok {
			t.Errorf("%s: unexpected entry", p)
		}
	}
}

func diff(w, g Entry) string {
	switch {
	case w.Mode != g.Mode:
		return fmt.Sprintf("mode %o, want %o", g.Mode, w.Mode)
	case w.UID != g.UID || w.GID != g.GID:
		return fmt.Sprintf("owner %d:%d, want %d:%d", g.UID, g.GID, w.UID, w.GID)
	case w.Size != g.Size:
		return fmt.Sprintf("size %d, want %d", g.Size, w.Size)
	case !bytes.Equal(w.Sum, g.Sum):
		return "content differs"
	case w.Mtime != g.Mtime:
		return fmt.Sprintf("mtime %d, want %d", g.Mtime, w.Mtime)
	case w.Rdev != g.Rdev:
		return fmt.Sprintf("rdev %d, want %d", g.Rdev, w.Rdev)
	case w.Target != g.Target:
		return fmt.Sprintf("link target %q, want %q", g.Target, w.Target)
	case w.Link != g.Link:
		return fmt.Sprintf("hard link of %q, want %q", g.Link, w.Link)
	case fmt.Sprint(w.Xattrs) != fmt.Sprint(g.Xattrs):
		return fmt.Sprintf("xattrs %v, want %v", g.Xattrs, w.Xattrs)
	}
	return ""
}
