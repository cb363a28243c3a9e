package erofs_test

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/erofs"
	"github.com/zosgrid/zos/internal/zostest"
)

const (
	dir  = unix.S_IFDIR
	reg  = unix.S_IFREG
	lnk  = unix.S_IFLNK
	tib  = uint64(1) << 40
	kib4 = 4096
)

// variedTree covers every file type, special mode bits, ids and times at
// their edges, xattrs of every namespace and size, hard links, sparse sizes
// and a directory spanning many blocks.
func variedTree() []erofs.Entry {
	big := bytes.Repeat([]byte("v"), 4000)
	acl := []byte{2, 0, 0, 0, // POSIX_ACL_XATTR_VERSION
		1, 0, 7, 0, 0xff, 0xff, 0xff, 0xff, // ACL_USER_OBJ rwx
		4, 0, 5, 0, 0xff, 0xff, 0xff, 0xff, // ACL_GROUP_OBJ r-x
		0x20, 0, 5, 0, 0xff, 0xff, 0xff, 0xff} // ACL_OTHER r-x
	es := []erofs.Entry{
		{Path: "", Mode: dir | 0o755, Mtime: 1700000000, MtimeNsec: 123456789, Xattrs: []erofs.Xattr{{Name: "user.root", Value: []byte("r")}}},
		{Path: "a", Mode: reg | 0o4755, UID: 4000000000, GID: 65534, Mtime: -2208988800, MtimeNsec: 1, Size: 1,
			Xattrs: []erofs.Xattr{{Name: "user.empty"}, {Name: "user.big", Value: big}, {Name: "trusted.overlay.metacopy"},
				{Name: "trusted.overlay.redirect", Value: []byte("/ab/cd")}, {Name: "security.test", Value: []byte{0, 1, 2}}}},
		{Path: "dir", Mode: dir | 0o2775, UID: 1000, GID: 1000, Mtime: 253402300799, MtimeNsec: 999999999},
		{Path: "dir/sub", Mode: dir | 0o700, Mtime: -1, MtimeNsec: 500000000},
		{Path: "dir/sub/deeper", Mode: dir | 0o755},
		{Path: "dir/sub/deeper/empty", Mode: reg | 0o600},
		{Path: "dir/ha", LinkTo: "a"},
		{Path: "hb", LinkTo: "dir/ha"},
		{Path: "tmp", Mode: dir | 0o1777, UID: 65534, GID: 65534},
		{Path: "tmp/page", Mode: reg | 0o644, Size: kib4},
		{Path: "tmp/page1", Mode: reg | 0o644, Size: kib4 + 1},
		{Path: "tmp/tib", Mode: reg | 0o644, Size: tib},
		{Path: "tmp/two-chunks", Mode: reg | 0o644, Size: 1<<43 + kib4 + 3},
		{Path: "tmp/setgid", Mode: reg | 0o2711},
		{Path: "dev", Mode: dir | 0o755},
		{Path: "dev/null", Mode: unix.S_IFCHR | 0o666, Rdev: unix.Mkdev(1, 3)},
		{Path: "dev/sda1", Mode: unix.S_IFBLK | 0o660, GID: 6, Rdev: unix.Mkdev(8, 1)},
		{Path: "dev/wide", Mode: unix.S_IFCHR | 0o600, Rdev: unix.Mkdev(4095, 1<<20-1)},
		{Path: "dev/fifo", Mode: unix.S_IFIFO | 0o644},
		{Path: "dev/sock", Mode: unix.S_IFSOCK | 0o755},
		{Path: "links", Mode: dir | 0o755},
		{Path: "links/short", Mode: lnk | 0o777, Target: "../a"},
		{Path: "links/long", Mode: lnk | 0o777, Target: strings.Repeat("x/", 2047) + "y"},
		{Path: "links/fat", Mode: lnk | 0o777, Target: strings.Repeat("t", 3000),
			Xattrs: []erofs.Xattr{{Name: "trusted.pad", Value: big[:2000]}}}, // user. is refused on symlinks by the VFS
		{Path: "fatdir", Mode: dir | 0o755, Xattrs: []erofs.Xattr{{Name: "user.pad", Value: big}}},
		{Path: "fatdir/x", Mode: reg | 0o644},
		{Path: "manyx", Mode: reg | 0o644, Size: 10, Xattrs: []erofs.Xattr{
			{Name: "user.1", Value: big[:3000]}, {Name: "user.2", Value: big[:3001]}, {Name: "user.3", Value: big[:3002]},
			{Name: "security.capability", Value: []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}},
			{Name: "system.posix_acl_access", Value: acl}}},
		{Path: "big", Mode: dir | 0o755},
		{Path: "hugex", Mode: reg | 0o644, Size: 1, Xattrs: []erofs.Xattr{ // an inode of many blocks
			{Name: "user.h1", Value: bytes.Repeat([]byte{1}, 65535)}, {Name: "trusted.h2", Value: bytes.Repeat([]byte{2}, 65535)}}},
	}
	// 5000 names of 1..255 bytes, with bytes sorting before "." and after
	// ASCII, some of them directories.
	for i := range 5000 {
		s := strconv.Itoa(i)
		n := max(len(s), 1+i%255)
		fill := "-~a\xff \xc3"[i%6 : i%6+1]
		name := s + strings.Repeat(fill, n-len(s))
		name = name[:n]
		mode := uint32(reg | 0o644)
		if i%97 == 0 {
			mode = dir | 0o755
		}
		es = append(es, erofs.Entry{Path: "big/" + name, Mode: mode, UID: uint32(i), Mtime: int64(i)})
	}
	es = append(es, erofs.Entry{Path: "big/-", Mode: reg}, erofs.Entry{Path: "big/+", Mode: reg})
	return es
}

func writeImage(t testing.TB, entries []erofs.Entry) string {
	t.Helper()
	var buf bytes.Buffer
	if err := erofs.Write(&buf, entries); err != nil {
		t.Fatalf("Write: %v", err)
	}
	img := filepath.Join(t.TempDir(), "image.erofs")
	if err := os.WriteFile(img, buf.Bytes(), 0o644); err != nil {
		t.Fatal(err)
	}
	return img
}

// mountImage mounts img read-only, file-backed (kernel 6.12+), the same as
// `mount -t erofs -o ro img mnt`.
func mountImage(t *testing.T, img string) string {
	t.Helper()
	mnt := t.TempDir()
	if err := unix.Mount(img, mnt, "erofs", unix.MS_RDONLY, ""); err != nil {
		t.Fatalf("mount -t erofs -o ro %s %s: %v (see dmesg)", img, mnt, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(mnt, 0); err != nil {
			t.Errorf("umount %s: %v", mnt, err)
		}
	})
	return mnt
}

func TestMountedImageMatchesEntries(t *testing.T) {
	zostest.RequiresRoot(t)
	entries := variedTree()
	mnt := mountImage(t, writeImage(t, entries))
	checkTree(t, mnt, entries)
}

// TestDefaultRoot checks the root that Write makes when entries have none.
func TestDefaultRoot(t *testing.T) {
	zostest.RequiresRoot(t)
	mnt := mountImage(t, writeImage(t, []erofs.Entry{{Path: "f", Mode: reg | 0o644, Size: 3}}))
	var st unix.Stat_t
	if err := unix.Lstat(mnt, &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != dir|0o755 || st.Uid != 0 || st.Gid != 0 || st.Mtim.Sec != 0 || st.Mtim.Nsec != 0 || st.Nlink != 2 {
		t.Errorf("root: mode %o uid %d gid %d mtime %d.%d nlink %d, want a 0755 directory of 0:0 at 0 with 2 links",
			st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec, st.Nlink)
	}
	got, err := os.ReadFile(filepath.Join(mnt, "f"))
	if err != nil || !bytes.Equal(got, make([]byte, 3)) {
		t.Errorf("f: %q, %v; want 3 zeros", got, err)
	}

	mnt = mountImage(t, writeImage(t, nil))
	if des, err := os.ReadDir(mnt); err != nil || len(des) != 0 {
		t.Errorf("image of no entries: readdir %v, %v; want an empty root", des, err)
	}
}

// checkTree compares what the kernel shows under mnt with entries.
func checkTree(t *testing.T, mnt string, entries []erofs.Entry) {
	t.Helper()
	byPath := map[string]*erofs.Entry{}
	children := map[string][]string{}
	nlink := map[string]uint64{}
	owner := func(p string) string {
		for byPath[p].LinkTo != "" {
			p = byPath[p].LinkTo
		}
		return p
	}
	for i := range entries {
		e := &entries[i]
		byPath[e.Path] = e
	}
	for _, e := range entries {
		if e.Path == "" {
			continue
		}
		parent, name := "", e.Path
		if k := strings.LastIndexByte(e.Path, '/'); k >= 0 {
			parent, name = e.Path[:k], e.Path[k+1:]
		}
		children[parent] = append(children[parent], name)
		o := owner(e.Path)
		nlink[o]++
		if byPath[o].Mode&unix.S_IFMT == dir {
			nlink[parent]++
		}
	}
	for p, e := range byPath {
		if e.Mode&unix.S_IFMT == dir {
			nlink[p] += 2
			if p != "" {
				nlink[p]--
			}
		}
	}

	for _, e := range entries {
		path := filepath.Join(mnt, e.Path)
		o := byPath[owner(e.Path)]
		var st unix.Stat_t
		if err := unix.Lstat(path, &st); err != nil {
			t.Errorf("lstat %q: %v", e.Path, err)
			continue
		}
		if e.LinkTo != "" {
			var ost unix.Stat_t
			if err := unix.Lstat(filepath.Join(mnt, o.Path), &ost); err != nil || ost.Ino != st.Ino {
				t.Errorf("%q: inode %d, want %d of %q (%v)", e.Path, st.Ino, ost.Ino, o.Path, err)
			}
		}
		want := struct {
			mode, uid, gid uint32
			sec, nsec      int64
			nlink          uint64
			rdev           uint64
		}{o.Mode, o.UID, o.GID, o.Mtime, int64(o.MtimeNsec), nlink[o.Path], 0}
		if typ := o.Mode & unix.S_IFMT; typ == unix.S_IFCHR || typ == unix.S_IFBLK {
			want.rdev = o.Rdev
		}
		got := want
		got.mode, got.uid, got.gid, got.sec, got.nsec, got.nlink, got.rdev = st.Mode, st.Uid, st.Gid, st.Mtim.Sec, st.Mtim.Nsec, st.Nlink, st.Rdev
		if got != want {
			t.Errorf("%q: stat %+v, want %+v", e.Path, got, want)
		}
		switch o.Mode & unix.S_IFMT {
		case reg:
			if uint64(st.Size) != o.Size {
				t.Errorf("%q: size %d, want %d", e.Path, st.Size, o.Size)
			}
			checkZeros(t, path, o.Size)
		case lnk:
			if st.Size != int64(len(o.Target)) {
				t.Errorf("%q: size %d, want %d", e.Path, st.Size, len(o.Target))
			}
			if got, err := os.Readlink(path); err != nil || got != o.Target {
				t.Errorf("readlink %q: %d bytes, %v; want %d bytes", e.Path, len(got), err, len(o.Target))
			}
		case dir:
			checkDir(t, path, children[e.Path], func(name string) uint32 {
				p := name
				if e.Path != "" {
					p = e.Path + "/" + name
				}
				return byPath[owner(p)].Mode & unix.S_IFMT
			})
		}
		checkXattrs(t, path, o.Xattrs)
	}
}

func checkZeros(t *testing.T, path string, size uint64) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Errorf("open: %v", err)
		return
	}
	defer f.Close()
	buf := make([]byte, 3*kib4)
	for _, at := range []uint64{0, size / 2, max(size, kib4+1) - kib4 - 1, 1 << 43} {
		if at >= size {
			continue
		}
		n, err := f.ReadAt(buf, int64(at))
		want := min(uint64(len(buf)), size-at)
		if uint64(n) != want || (err != nil && err != io.EOF) || !bytes.Equal(buf[:n], make([]byte, n)) {
			t.Errorf("%s: read at %d: %d bytes, %v; want %d zeros", path, at, n, err, want)
		}
	}
	if n, err := f.ReadAt(buf, int64(size)); n != 0 || err != io.EOF {
		t.Errorf("%s: read at end: %d bytes, %v; want EOF", path, n, err)
	}
}

func checkDir(t *testing.T, path string, names []string, fileType func(name string) uint32) {
	t.Helper()
	des, err := os.ReadDir(path)
	if err != nil {
		t.Errorf("readdir %s: %v", path, err)
		return
	}
	got := make([]string, len(des))
	for i, d := range des {
		got[i] = d.Name()
		if want := modeType[fileType(d.Name())]; d.Type() != want {
			t.Errorf("readdir %s: %q has type %v, want %v", path, d.Name(), d.Type(), want)
		}
	}
	want := slices.Clone(names)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		i := 0
		for i < min(len(got), len(want)) && got[i] == want[i] {
			i++
		}
		t.Errorf("readdir %s: %d names, want %d; they differ at #%d: %q, want %q", path, len(got), len(want), i, got[i:min(i+3, len(got))], want[i:min(i+3, len(want))])
	}
	// Lookups of absent names around every present one must fail cleanly:
	// they exercise the binary searches over blocks and within a block.
	present := map[string]bool{}
	for _, n := range names {
		present[n] = true
	}
	absent := []string{"\x01", "\xff\xff\xff", "zzzz", ".x", "-x"}
	for _, n := range names {
		absent = append(absent, n+"\x01", n[:len(n)-1]+"\x02")
		if len(n) > 1 {
			absent = append(absent, n[:len(n)-1])
		}
	}
	var st unix.Stat_t
	for _, n := range absent {
		if present[n] || len(n) > 255 {
			continue
		}
		if err := unix.Lstat(filepath.Join(path, n), &st); !errors.Is(err, unix.ENOENT) {
			t.Errorf("lstat absent %q in %s: %v, want ENOENT", n, path, err)
		}
	}
}

// modeType maps st_mode types to the types readdir reports.
var modeType = map[uint32]fs.FileMode{
	reg: 0, dir: fs.ModeDir, lnk: fs.ModeSymlink, unix.S_IFCHR: fs.ModeDevice | fs.ModeCharDevice,
	unix.S_IFBLK: fs.ModeDevice, unix.S_IFIFO: fs.ModeNamedPipe, unix.S_IFSOCK: fs.ModeSocket,
}

func checkXattrs(t *testing.T, path string, xs []erofs.Xattr) {
	t.Helper()
	buf := make([]byte, 1<<16)
	n, err := unix.Llistxattr(path, buf)
	if err != nil {
		t.Errorf("llistxattr %s: %v", path, err)
		return
	}
	var got, want []string
	for _, name := range strings.Split(string(buf[:n]), "\x00") {
		if name != "" {
			got = append(got, name)
		}
	}
	for _, x := range xs {
		want = append(want, x.Name)
		n, err := unix.Lgetxattr(path, x.Name, buf)
		if err != nil || !bytes.Equal(buf[:n], x.Value) {
			t.Errorf("lgetxattr %s %s: %d bytes, %v; want %d bytes", path, x.Name, n, err, len(x.Value))
		}
	}
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Errorf("llistxattr %s: %q, want %q", path, got, want)
	}
	if _, err := unix.Lgetxattr(path, "user.absent", buf); !errors.Is(err, unix.ENODATA) {
		t.Errorf("lgetxattr %s user.absent: %v, want ENODATA", path, err)
	}
}

// TestOverlayMetacopy is the real use: an image whose files redirect into a
// data-only layer, stacked by overlayfs, reads the cache files' bytes.
func TestOverlayMetacopy(t *testing.T) {
	zostest.RequiresRoot(t)
	data := t.TempDir()
	small := []byte("hello, metacopy\n")
	large := make([]byte, 300_000)
	for i := range large {
		large[i] = byte(i * 7)
	}
	if err := os.MkdirAll(filepath.Join(data, "ab"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "ab", "cdef"), small, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "large"), large, 0o644); err != nil {
		t.Fatal(err)
	}
	meta := func(p, target string, size int) erofs.Entry {
		return erofs.Entry{Path: p, Mode: reg | 0o640, UID: 1000, GID: 1000, Mtime: 1600000000, Size: uint64(size),
			Xattrs: []erofs.Xattr{{Name: "trusted.overlay.metacopy"}, {Name: "trusted.overlay.redirect", Value: []byte(target)}}}
	}
	entries := []erofs.Entry{
		{Path: "", Mode: dir | 0o755},
		meta("small", "/ab/cdef", len(small)),
		{Path: "sub", Mode: dir | 0o750},
		meta("sub/large", "/large", len(large)),
		{Path: "sub/again", LinkTo: "small"},
		{Path: "sub/link", Mode: lnk | 0o777, Target: "../small"},
	}
	lower := mountImage(t, writeImage(t, entries))
	target := t.TempDir()
	opts := "metacopy=on,redirect_dir=on,lowerdir=" + lower + "::" + data
	// mount -t overlay overlay -o ro,<opts> target
	if err := unix.Mount("overlay", target, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mount -t overlay overlay -o ro,%s %s: %v (see dmesg)", opts, target, err)
	}
	t.Cleanup(func() {
		if err := unix.Unmount(target, 0); err != nil {
			t.Errorf("umount %s: %v", target, err)
		}
	})
	for p, want := range map[string][]byte{"small": small, "sub/large": large, "sub/again": small, "sub/link": small} {
		got, err := os.ReadFile(filepath.Join(target, p))
		if err != nil || !bytes.Equal(got, want) {
			t.Errorf("%s through overlay: %d bytes, %v; want %d bytes of the data layer", p, len(got), err, len(want))
		}
	}
	var st unix.Stat_t
	if err := unix.Stat(filepath.Join(target, "sub/large"), &st); err != nil {
		t.Fatal(err)
	}
	if st.Mode != reg|0o640 || st.Uid != 1000 || st.Size != int64(len(large)) || st.Mtim.Sec != 1600000000 {
		t.Errorf("sub/large: mode %o uid %d size %d mtime %d: want the image's metadata", st.Mode, st.Uid, st.Size, st.Mtim.Sec)
	}
}

func TestWriteRejects(t *testing.T) {
	root := erofs.Entry{Path: "", Mode: dir | 0o755}
	file := func(p string) erofs.Entry { return erofs.Entry{Path: p, Mode: reg | 0o644} }
	withX := func(names ...string) erofs.Entry {
		e := file("x")
		for _, n := range names {
			e.Xattrs = append(e.Xattrs, erofs.Xattr{Name: n})
		}
		return e
	}
	for _, tc := range []struct {
		name    string
		entries []erofs.Entry
		want    string
	}{
		{"duplicate", []erofs.Entry{file("a"), file("a")}, "duplicate path"},
		{"duplicate root", []erofs.Entry{root, root}, "duplicate path"},
		{"missing parent", []erofs.Entry{file("a/b")}, "missing parent"},
		{"file parent", []erofs.Entry{file("a"), file("a/b")}, "not a directory"},
		{"link parent", []erofs.Entry{file("a"), {Path: "l", LinkTo: "a"}, file("l/b")}, "not a directory"},
		{"empty component", []erofs.Entry{{Path: "a", Mode: dir}, file("a//b")}, "invalid path component"},
		{"leading slash", []erofs.Entry{file("/a")}, "invalid path component"},
		{"trailing slash", []erofs.Entry{{Path: "a/", Mode: dir}}, "invalid path component"},
		{"dot", []erofs.Entry{file(".")}, "invalid path component"},
		{"dotdot", []erofs.Entry{{Path: "a", Mode: dir}, file("a/..")}, "invalid path component"},
		{"nul", []erofs.Entry{file("a\x00b")}, "NUL"},
		{"long name", []erofs.Entry{file(strings.Repeat("n", 256))}, "longer than 255"},
		{"link to missing", []erofs.Entry{{Path: "l", LinkTo: "nope"}}, "missing entry"},
		{"link to directory", []erofs.Entry{{Path: "d", Mode: dir}, {Path: "l", LinkTo: "d"}}, "to directory"},
		{"link cycle", []erofs.Entry{{Path: "a", LinkTo: "b"}, {Path: "b", LinkTo: "a"}}, "cycle"},
		{"unknown namespace", []erofs.Entry{withX("os2.x")}, "unknown namespace"},
		{"system namespace", []erofs.Entry{withX("system.foo")}, "unknown namespace"},
		{"empty user name", []erofs.Entry{withX("user.")}, "unknown namespace"},
		{"acl suffix", []erofs.Entry{withX("system.posix_acl_accessx")}, "unknown namespace"},
		{"duplicate xattr", []erofs.Entry{withX("user.a", "user.a")}, "duplicate xattr"},
		{"huge xattr", []erofs.Entry{{Path: "x", Mode: reg, Xattrs: []erofs.Xattr{{Name: "user.a", Value: make([]byte, 1<<16)}}}}, "exceeds"},
		{"xattrs beyond an inode", []erofs.Entry{{Path: "x", Mode: reg, Xattrs: []erofs.Xattr{{Name: "user.a", Value: make([]byte, 65535)},
			{Name: "user.b", Value: make([]byte, 65535)}, {Name: "user.c", Value: make([]byte, 65535)},
			{Name: "user.d", Value: make([]byte, 65535)}, {Name: "user.e", Value: make([]byte, 65535)}}}}, "exceed the inode"},
		{"root not dir", []erofs.Entry{file("")}, "root is not a directory"},
		{"no type", []erofs.Entry{{Path: "a", Mode: 0o644}}, "unknown file type"},
		{"empty symlink", []erofs.Entry{{Path: "a", Mode: lnk | 0o777}}, "symlink target"},
		{"nsec", []erofs.Entry{{Path: "a", Mode: reg, MtimeNsec: 1e9}}, "nanoseconds"},
		{"wide device", []erofs.Entry{{Path: "a", Mode: unix.S_IFCHR, Rdev: unix.Mkdev(4096, 0)}}, "32 bits"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var buf bytes.Buffer
			err := erofs.Write(&buf, tc.entries)
			if !errors.Is(err, erofs.ErrInvalid) || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Write: %v, want ErrInvalid saying %q", err, tc.want)
			}
			if buf.Len() != 0 {
				t.Errorf("Write wrote %d bytes before failing", buf.Len())
			}
		})
	}
}

// TestWriteIsDeterministic: the image is a function of the entries, not of
// their order, so equal trees give equal images.
func TestWriteIsDeterministic(t *testing.T) {
	entries := variedTree()
	var a, b bytes.Buffer
	if err := erofs.Write(&a, entries); err != nil {
		t.Fatal(err)
	}
	shuffled := slices.Clone(entries)
	rand.New(rand.NewPCG(1, 2)).Shuffle(len(shuffled), func(i, j int) { shuffled[i], shuffled[j] = shuffled[j], shuffled[i] })
	if err := erofs.Write(&b, shuffled); err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(a.Bytes(), b.Bytes()) {
		t.Error("the same entries in another order gave another image")
	}
	if a.Len()%4096 != 0 {
		t.Errorf("image of %d bytes is not whole blocks", a.Len())
	}
}

// flistLike is the real use's shape: n entries, 100 per directory, every
// file a metacopy redirecting to a content hash.
func flistLike(n int) []erofs.Entry {
	es := make([]erofs.Entry, 0, n+1)
	es = append(es, erofs.Entry{Path: "", Mode: dir | 0o755})
	d := ""
	for i := 1; len(es) < n; i++ {
		if i%100 == 1 {
			d = fmt.Sprintf("usr/share/d%05d", i/100)
			if len(es) == 1 {
				es = append(es, erofs.Entry{Path: "usr", Mode: dir | 0o755}, erofs.Entry{Path: "usr/share", Mode: dir | 0o755})
			}
			es = append(es, erofs.Entry{Path: d, Mode: dir | 0o755, Mtime: 1700000000})
			continue
		}
		redirect := fmt.Sprintf("/%02x/%062x", i%256, i)
		es = append(es, erofs.Entry{Path: fmt.Sprintf("%s/file-%d.txt", d, i), Mode: reg | 0o644, Size: uint64(i * 37),
			Mtime: 1700000000 + int64(i), Xattrs: []erofs.Xattr{{Name: "trusted.overlay.metacopy"},
				{Name: "trusted.overlay.redirect", Value: []byte(redirect)}}})
	}
	return es
}

func TestFlistLikeTree(t *testing.T) {
	zostest.RequiresRoot(t)
	entries := flistLike(3000)
	checkTree(t, mountImage(t, writeImage(t, entries)), entries)
}

func BenchmarkWrite100k(b *testing.B) {
	entries := flistLike(100_000)
	var cw countWriter
	b.ReportAllocs()
	for b.Loop() {
		cw = 0
		if err := erofs.Write(&cw, entries); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(cw), "image-bytes")
}

type countWriter int64

func (c *countWriter) Write(p []byte) (int, error) {
	*c += countWriter(len(p))
	return len(p), nil
}

// TestCompactInodes: inodes whose mtime is the image's most common one, with
// 16-bit ids, take the 32-byte form, so such an image is smaller.
func TestCompactInodes(t *testing.T) {
	tree := func(sameTime bool) []erofs.Entry {
		es := []erofs.Entry{{Path: "", Mode: dir | 0o755, Mtime: 1700000000, MtimeNsec: 5}, {Path: "sub", Mode: dir | 0o700, Mtime: 1},
			{Path: "sub/link", LinkTo: "f7"}}
		for i := range 1000 {
			e := erofs.Entry{Path: fmt.Sprintf("f%d", i), Mode: reg | 0o644, UID: 1000, Size: 10, Mtime: 1700000000, MtimeNsec: 5}
			if !sameTime {
				e.Mtime += int64(i)
			}
			es = append(es, e)
		}
		return es
	}
	var same, varied bytes.Buffer
	if err := erofs.Write(&same, tree(true)); err != nil {
		t.Fatal(err)
	}
	if err := erofs.Write(&varied, tree(false)); err != nil {
		t.Fatal(err)
	}
	if saved := varied.Len() - same.Len(); saved < 1000*32-4096 {
		t.Errorf("1000 files of one mtime take %d bytes, of distinct mtimes %d: want about 32 bytes less per file", same.Len(), varied.Len())
	}
	if os.Geteuid() == 0 {
		checkTree(t, mountImage(t, writeImage(t, tree(true))), tree(true))
	}
}

// FuzzWrite: any entries give an error or an image of whole blocks, never a
// panic.
func FuzzWrite(f *testing.F) {
	f.Add("a", uint32(reg|0o644), "a/b", "", "user.x", []byte("v"), uint64(1), "t")
	f.Add("d", uint32(dir|0o755), "d/l", "d", "trusted.overlay.redirect", []byte("/x"), uint64(1<<40), "")
	f.Add("s", uint32(lnk|0o777), "h", "s", "system.posix_acl_access", []byte{2, 0, 0, 0}, uint64(0), "../s")
	f.Fuzz(func(t *testing.T, p1 string, mode uint32, p2, link, xname string, xval []byte, size uint64, target string) {
		entries := []erofs.Entry{
			{Path: p1, Mode: mode, Size: size, Target: target, Xattrs: []erofs.Xattr{{Name: xname, Value: xval}}},
			{Path: p2, LinkTo: link},
			{Path: p1 + "/" + p2, Mode: mode&^unix.S_IFMT | reg, Target: target},
		}
		var buf bytes.Buffer
		if err := erofs.Write(&buf, entries); err != nil {
			if !errors.Is(err, erofs.ErrInvalid) || buf.Len() != 0 {
				t.Fatalf("Write: %v after %d bytes", err, buf.Len())
			}
			return
		}
		if buf.Len() == 0 || buf.Len()%4096 != 0 {
			t.Fatalf("image of %d bytes", buf.Len())
		}
	})
}
