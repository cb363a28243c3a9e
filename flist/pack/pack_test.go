package pack_test

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/flisttest"
	"github.com/zosgrid/zos/flist/pack"
	"github.com/zosgrid/zos/flist/store"
)

func packDir(t *testing.T, src string, s *store.Dir) (string, pack.Stats) {
	t.Helper()
	out := filepath.Join(t.TempDir(), "x.fl")
	st, err := pack.Dir(context.Background(), src, out, pack.Options{
		Store: s, Workers: 4,
		Routes: []flist.Route{{Start: 0, End: 0xff, URL: "dir://" + s.Root()}},
		Tags:   map[string]string{"version": "1.0"},
	})
	if err != nil {
		t.Fatal(err)
	}
	return out, st
}

func unpackTo(t *testing.T, fl string, s pack.BlockGetter) string {
	t.Helper()
	ctx := context.Background()
	f, err := flist.Open(ctx, fl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	tree, err := f.Tree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	dest := filepath.Join(t.TempDir(), "out")
	if err := pack.Unpack(ctx, tree, s, dest, pack.UnpackOptions{PreserveOwner: os.Geteuid() == 0}); err != nil {
		t.Fatal(err)
	}
	return dest
}

func TestDirRoundTrip(t *testing.T) {
	src := t.TempDir()
	flisttest.MakeTree(t, src)
	s, _ := store.NewDir(t.TempDir())
	fl, st := packDir(t, src, s)
	if st.Files != 7 || st.HardLinks != 1 || st.Symlinks != 2 {
		t.Errorf("stats = %+v", st)
	}
	// big.bin and dup.bin share 4 blocks: 1+1+3+4+4+1 referenced, minus 4 dups.
	if st.Blocks != 14 || st.UniqueBlocks != 10 || st.NewBlocks != 10 {
		t.Errorf("blocks = %d referenced, %d unique, %d new; want 14, 10, 10", st.Blocks, st.UniqueBlocks, st.NewBlocks)
	}
	dest := unpackTo(t, fl, s)
	root := os.Geteuid() == 0
	flisttest.Compare(t, flisttest.Scan(t, src, root), flisttest.Scan(t, dest, root))

	// Second pack of the same tree uploads nothing.
	_, st2 := packDir(t, src, s)
	if st2.NewBlocks != 0 || st2.DedupRatio() != 14 {
		t.Errorf("second pack: new blocks %d, ratio %v", st2.NewBlocks, st2.DedupRatio())
	}
}

func TestTarRoundTrip(t *testing.T) {
	ctx := context.Background()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	big := flisttest.Random(9, flist.BlockSize+100)
	capv := "\x01\x00\x00\x02\x00\x04\x00\x00" + strings.Repeat("\x00", 12)
	ents := []struct {
		h    tar.Header
		data []byte
	}{
		{tar.Header{Name: "bin/", Typeflag: tar.TypeDir, Mode: 0o755}, nil}, // implied parent first? no: explicit
		{tar.Header{Name: "bin/sh", Typeflag: tar.TypeReg, Mode: 0o755, Uid: 0, PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capv}}, big},
		{tar.Header{Name: "bin/ash", Typeflag: tar.TypeLink, Linkname: "bin/sh"}, nil},
		{tar.Header{Name: "./etc/passwd", Typeflag: tar.TypeReg, Mode: 0o644, Uid: 7, Gid: 8}, []byte("root:x:0:0\n")},
		{tar.Header{Name: "usr/lib/os-release", Typeflag: tar.TypeSymlink, Linkname: "../../etc/os-release"}, nil},
		{tar.Header{Name: "usr/", Typeflag: tar.TypeDir, Mode: 0o711, Uid: 3}, nil},
		{tar.Header{Name: "dev/null", Typeflag: tar.TypeChar, Mode: 0o666, Devmajor: 1, Devminor: 3}, nil},
	}
	for _, e := range ents {
		h := e.h
		h.Size = int64(len(e.data))
		h.Format = tar.FormatPAX
		if err := tw.WriteHeader(&h); err != nil {
			t.Fatal(err)
		}
		tw.Write(e.data)
	}
	tw.Close()
	s, _ := store.NewDir(t.TempDir())
	out := filepath.Join(t.TempDir(), "t.fl")
	cfg := []byte(`{"config":{"Entrypoint":["/bin/sh"]}}`)
	st, err := pack.Tar(ctx, &buf, out, pack.Options{Store: s, ImageConfig: cfg})
	if err != nil {
		t.Fatal(err)
	}
	if st.Files != 2 || st.HardLinks != 1 || st.Blocks != 3 {
		t.Errorf("stats %+v", st)
	}
	f, err := flist.Open(ctx, out)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	got, err := f.ImageConfig(ctx)
	if err != nil || string(got) != string(cfg) {
		t.Fatalf("image config = %q, %v", got, err)
	}
	tree, err := f.Tree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	byPath := map[string]*flist.Inode{}
	tree.Walk(func(p string, in *flist.Inode) error { byPath[p] = in; return nil })
	if in := byPath["usr"]; in == nil || in.Mode&0o7777 != 0o711 || in.UID != 3 {
		t.Errorf("usr attributes not taken from its late entry: %+v", in)
	}
	if in := byPath["etc/passwd"]; in == nil || in.UID != 7 || in.GID != 8 {
		t.Errorf("etc/passwd: %+v", in)
	}
	if in := byPath["dev/null"]; in == nil || in.Rdev == 0 {
		t.Errorf("dev/null: %+v", in)
	}
	sh, ash := byPath["bin/sh"], byPath["bin/ash"]
	if tree.HardLinks[ash.Ino] != sh.Ino || len(tree.Blocks[ash.Ino]) != 2 {
		t.Errorf("hard link not recorded with the target's blocks (rfs sees a copy)")
	}
	if xs := tree.Xattrs[sh.Ino]; len(xs) != 1 || xs[0].Name != "security.capability" {
		t.Errorf("xattrs of bin/sh: %+v", xs)
	}
	if os.Geteuid() == 0 {
		dest := unpackTo(t, out, s)
		b, err := os.ReadFile(filepath.Join(dest, "bin/ash"))
		if err != nil || !bytes.Equal(b, big) {
			t.Fatalf("unpacked hard link content wrong: %v", err)
		}
	}
}

func TestTarBadInput(t *testing.T) {
	ctx := context.Background()
	s, _ := store.NewDir(t.TempDir())
	mk := func(hs ...tar.Header) io.Reader {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for _, h := range hs {
			tw.WriteHeader(&h)
		}
		tw.Close()
		return &buf
	}
	for name, r := range map[string]io.Reader{
		"escape":     mk(tar.Header{Name: "../evil", Typeflag: tar.TypeReg, Mode: 0o644}),
		"dangling":   mk(tar.Header{Name: "a", Typeflag: tar.TypeLink, Linkname: "nope"}),
		"dup":        mk(tar.Header{Name: "a", Typeflag: tar.TypeReg}, tar.Header{Name: "a", Typeflag: tar.TypeReg}),
		"under-file": mk(tar.Header{Name: "a", Typeflag: tar.TypeReg}, tar.Header{Name: "a/b", Typeflag: tar.TypeReg}),
		"not-a-tar":  strings.NewReader(strings.Repeat("garbage!", 200)),
		"truncated":  io.LimitReader(mk(tar.Header{Name: "a", Typeflag: tar.TypeReg, Size: 1000}), 700),
	} {
		out := filepath.Join(t.TempDir(), "x.fl")
		os.WriteFile(out, []byte("old flist"), 0o644)
		_, err := pack.Tar(ctx, r, out, pack.Options{Store: s})
		if err == nil {
			t.Errorf("%s: accepted", name)
		}
		if b, _ := os.ReadFile(out); string(b) != "old flist" {
			t.Errorf("%s: failed pack clobbered the existing output", name)
		}
		left, _ := filepath.Glob(filepath.Join(filepath.Dir(out), ".x.fl.*"))
		if len(left) != 0 {
			t.Errorf("%s: temp files left: %v", name, left)
		}
	}
}

func TestUnpackCorruptBlock(t *testing.T) {
	src := t.TempDir()
	os.WriteFile(filepath.Join(src, "f"), flisttest.Random(4, 1000), 0o644)
	s, _ := store.NewDir(t.TempDir())
	fl, _ := packDir(t, src, s)
	ctx := context.Background()
	f, _ := flist.Open(ctx, fl)
	defer f.Close()
	tree, err := f.Tree(ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, bl := range tree.Blocks {
		os.WriteFile(s.Path(bl[0].ID), []byte("tampered"), 0o644)
	}
	err = pack.Unpack(ctx, tree, s, filepath.Join(t.TempDir(), "o"), pack.UnpackOptions{})
	if !errors.Is(err, flist.ErrCorruptBlock) {
		t.Fatalf("unpack of a tampered block = %v; want ErrCorruptBlock", err)
	}
}
