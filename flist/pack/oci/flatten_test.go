package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"slices"
	"testing"
)

// baseLayers is a small root with every kind of entry, then an upper layer
// that deletes, hides, replaces and adds.
func baseLayers(t testing.TB) [][]byte {
	l1 := layerTar(t,
		ent{name: "./", typ: tar.TypeDir, mode: 0o755},
		ent{name: "bin/", typ: tar.TypeDir},
		ent{name: "bin/busybox", body: "old busybox", mode: 0o755},
		ent{name: "bin/sh", typ: tar.TypeLink, link: "bin/busybox"},
		ent{name: "bin/ash", typ: tar.TypeLink, link: "bin/sh"},
		ent{name: "bin/ls", typ: tar.TypeSymlink, link: "busybox"},
		ent{name: "dev/", typ: tar.TypeDir},
		ent{name: "dev/null", typ: tar.TypeChar, devMaj: 1, devMin: 3, mode: 0o666},
		ent{name: "etc/", typ: tar.TypeDir},
		ent{name: "etc/passwd", body: "root:x:0:0"},
		ent{name: "etc/group", body: "root:x:0:"},
		ent{name: "opt/", typ: tar.TypeDir},
		ent{name: "opt/old", body: "old"},
		ent{name: "opt/sub/", typ: tar.TypeDir},
		ent{name: "opt/sub/deep", body: "deep"},
		ent{name: "var/cache/x", body: "cached"}, // no parent entries
		ent{name: "usr/bin/ping", body: "ping", xattrs: map[string]string{"security.capability": "\x01\x00\x00\x02"}},
		ent{name: "home/user/", typ: tar.TypeDir, uid: 1000, mode: 0o700},
		ent{name: "home/user/f", body: "mine", uid: 1000},
		ent{name: "keep/same", body: "a"},
		ent{name: "keep/twin", typ: tar.TypeLink, link: "keep/same"},
	)
	l2 := layerTar(t,
		ent{name: "bin/busybox", body: "new busybox", mode: 0o755},
		ent{name: "etc/.wh.passwd"},
		ent{name: "etc/hosts", body: "127.0.0.1 localhost"},
		ent{name: "opt/new", body: "new"},
		ent{name: "opt/.wh..wh..opq"},
		ent{name: "var/cache", body: "now a file"},
		ent{name: "home/user/", typ: tar.TypeDir, uid: 1000, mode: 0o750},
	)
	return [][]byte{l1, l2}
}

func TestFlattenAppliesLayers(t *testing.T) {
	m, st := flatten(t, memLayers(baseLayers(t)...))
	want := []string{"./", "bin", "bin/busybox", "bin/sh", "bin/ash", "bin/ls", "dev", "dev/null", "etc",
		"etc/group", "etc/hosts", "opt", "opt/new", "var", "var/cache", "usr", "usr/bin", "usr/bin/ping",
		"home", "home/user", "home/user/f", "keep", "keep/same", "keep/twin"}
	got := slices.Clone(m.order)
	slices.Sort(got)
	slices.Sort(want)
	if !slices.Equal(got, want) {
		t.Fatalf("merged paths\n got %v\nwant %v", got, want)
	}
	if m.order[0] != "./" {
		t.Errorf("first entry %q, want the root", m.order[0])
	}
	checks := []struct{ path, body string }{
		{"bin/busybox", "new busybox"},
		{"bin/sh", "old busybox"}, // the link keeps the content it had
		{"etc/hosts", "127.0.0.1 localhost"},
		{"opt/new", "new"},
		{"var/cache", "now a file"},
		{"keep/same", "a"},
	}
	for _, c := range checks {
		if h := m.entries[c.path]; h.Typeflag != tar.TypeReg || m.bodies[c.path] != c.body {
			t.Errorf("%s: type %c body %q, want regular file %q", c.path, h.Typeflag, m.bodies[c.path], c.body)
		}
	}
	if h := m.entries["bin/ash"]; h.Typeflag != tar.TypeLink || h.Linkname != "bin/sh" {
		t.Errorf("bin/ash: type %c -> %q, want hard link to bin/sh", h.Typeflag, h.Linkname)
	}
	if h := m.entries["keep/twin"]; h.Typeflag != tar.TypeLink || h.Linkname != "keep/same" {
		t.Errorf("keep/twin: type %c -> %q, want hard link to keep/same", h.Typeflag, h.Linkname)
	}
	if h := m.entries["bin/ls"]; h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox" {
		t.Errorf("bin/ls: %c -> %q", h.Typeflag, h.Linkname)
	}
	if h := m.entries["dev/null"]; h.Typeflag != tar.TypeChar || h.Devmajor != 1 || h.Devminor != 3 || h.Mode != 0o666 {
		t.Errorf("dev/null: %+v", h)
	}
	if h := m.entries["usr/bin/ping"]; h.PAXRecords["SCHILY.xattr.security.capability"] != "\x01\x00\x00\x02" {
		t.Errorf("usr/bin/ping lost its capability xattr: %v", h.PAXRecords)
	}
	if h := m.entries["home/user"]; h.Uid != 1000 || h.Mode != 0o750 {
		t.Errorf("home/user: uid %d mode %o, want the upper layer's 1000 0750", h.Uid, h.Mode)
	}
	if h := m.entries["home/user/f"]; h.Uid != 1000 {
		t.Errorf("home/user/f: uid %d", h.Uid)
	}
	if st.Whiteouts != 2 || st.Files != 9 {
		t.Errorf("stats %+v, want 2 whiteouts and 9 files", st)
	}
}

func TestFlattenWhiteoutOfDirectoryAndRecreate(t *testing.T) {
	l1 := layerTar(t, ent{name: "a/", typ: tar.TypeDir}, ent{name: "a/x", body: "x"}, ent{name: "a/b/y", body: "y"})
	l2 := layerTar(t, ent{name: ".wh.a"})
	l3 := layerTar(t, ent{name: "a/z", body: "z"})
	m, _ := flatten(t, memLayers(l1, l2, l3))
	got := slices.Clone(m.order)
	slices.Sort(got)
	if want := []string{"./", "a", "a/z"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestFlattenOpaqueKeepsDirsOfSameLayer(t *testing.T) {
	l1 := layerTar(t, ent{name: "a/b/x", body: "x"}, ent{name: "a/c/y", body: "y"})
	l2 := layerTar(t, ent{name: "a/b/new", body: "n"}, ent{name: "a/.wh..wh..opq"})
	m, _ := flatten(t, memLayers(l1, l2))
	got := slices.Clone(m.order)
	slices.Sort(got)
	if want := []string{"./", "a", "a/b", "a/b/new"}; !slices.Equal(got, want) {
		t.Fatalf("got %v, want %v", got, want)
	}
}

func TestFlattenRemovedLinkTarget(t *testing.T) {
	// The target is deleted by an upper layer; both links keep the content.
	l1 := layerTar(t, ent{name: "t", body: "content"}, ent{name: "l1", typ: tar.TypeLink, link: "t"},
		ent{name: "l2", typ: tar.TypeLink, link: "t"})
	l2 := layerTar(t, ent{name: ".wh.t"}, ent{name: ".wh.l1"})
	m, _ := flatten(t, memLayers(l1, l2))
	if h := m.entries["l2"]; h == nil || h.Typeflag != tar.TypeReg || m.bodies["l2"] != "content" {
		t.Fatalf("l2 = %+v %q, want a regular file with the content", h, m.bodies["l2"])
	}
	if _, ok := m.entries["t"]; ok {
		t.Error("t survived its whiteout")
	}
}

func TestFlattenDiffIDChecked(t *testing.T) {
	b := layerTar(t, ent{name: "f", body: "x"})
	sum := sha256.Sum256(b)
	good := Layer{Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil },
		DiffID: "sha256:" + hex.EncodeToString(sum[:])}
	if _, err := Flatten(context.Background(), []Layer{good}, io.Discard); err != nil {
		t.Fatalf("good digest: %v", err)
	}
	bad := good
	bad.DiffID = "sha256:" + hex.EncodeToString(make([]byte, 32))
	_, err := Flatten(context.Background(), []Layer{bad}, io.Discard)
	if !errors.Is(err, ErrOCIBadLayer) {
		t.Fatalf("wrong diff_id: err = %v, want ErrOCIBadLayer", err)
	}
}

func TestFlattenRejectsBadInput(t *testing.T) {
	full := layerTar(t, ent{name: "f", body: string(make([]byte, 4096))}, ent{name: "g", body: "g"})
	cases := []struct {
		name string
		tar  []byte
		want error
	}{
		{"escaping path", layerTar(t, ent{name: "../etc/passwd", body: "x"}), ErrOCIUnsafePath},
		{"escaping link", layerTar(t, ent{name: "f", body: "x"}, ent{name: "l", typ: tar.TypeLink, link: "../../f"}), ErrOCIUnsafePath},
		{"link to missing", layerTar(t, ent{name: "l", typ: tar.TypeLink, link: "nothere"}), ErrOCIBadLayer},
		{"truncated", full[:len(full)/2], ErrOCIBadLayer},
		{"garbage", []byte("this is not a tar stream at all, not even close......"), ErrOCIBadLayer},
		{"file as parent", layerTar(t, ent{name: "f", body: "x"}, ent{name: "f/g", body: "y"}), ErrOCIBadLayer},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			_, err := Flatten(context.Background(), memLayers(c.tar), io.Discard)
			if !errors.Is(err, c.want) {
				t.Fatalf("err = %v, want %v", err, c.want)
			}
		})
	}
}

func TestFlattenCancelled(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	_, err := Flatten(ctx, memLayers(baseLayers(t)...), io.Discard)
	if !errors.Is(err, context.Canceled) {
		t.Fatalf("err = %v, want context.Canceled", err)
	}
}

// FuzzFlatten feeds arbitrary bytes as a layer above a fixed one: it must
// never panic, and whatever it writes on success is a well-formed stream.
func FuzzFlatten(f *testing.F) {
	base := layerTar(f, ent{name: "a/b", body: "b"}, ent{name: "l", typ: tar.TypeLink, link: "a/b"})
	f.Add(layerTar(f, ent{name: "a/.wh.b"}))
	f.Add(layerTar(f, ent{name: "a/.wh..wh..opq"}, ent{name: "a/c", body: "c"}))
	f.Add(layerTar(f, ent{name: "x", typ: tar.TypeLink, link: "l"}))
	f.Add([]byte("garbage"))
	f.Fuzz(func(t *testing.T, data []byte) {
		var out bytes.Buffer
		if _, err := Flatten(context.Background(), memLayers(base, data), &out); err != nil {
			return
		}
		readMerged(t, out.Bytes())
	})
}
