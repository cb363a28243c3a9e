package oci

import (
	"archive/tar"
	"bytes"
	"context"
	"errors"
	"io"
	"testing"

	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

// ent describes one tar entry of a test layer.
type ent struct {
	name    string
	typ     byte // tar.Type*; 0 means regular file
	body    string
	link    string
	mode    int64
	uid     int
	xattrs  map[string]string
	devMaj  int64
	devMin  int64
	rawName bool // write name as is (tests of unsafe names)
}

// layerTar builds an uncompressed tar stream from entries.
func layerTar(t testing.TB, ents ...ent) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range ents {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.uid,
			Devmajor: e.devMaj, Devminor: e.devMin, Format: tar.FormatPAX}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		if h.Typeflag == tar.TypeReg {
			tw.Write([]byte(e.body))
		}
	}
	if err := tw.Close(); err != nil {
		t.Fatal(err)
	}
	return buf.Bytes()
}

// memLayers wraps tar streams as flatten layers without digests.
func memLayers(tars ...[]byte) []Layer {
	var ls []Layer
	for _, b := range tars {
		ls = append(ls, Layer{Open: func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil }})
	}
	return ls
}

// testImage builds a gzip-layered image with a configuration.
func testImage(t testing.TB, cfg v1.Config, tars ...[]byte) v1.Image {
	t.Helper()
	img := empty.Image
	for _, b := range tars {
		l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			t.Fatal(err)
		}
		img, err = mutate.AppendLayers(img, l)
		if err != nil {
			t.Fatal(err)
		}
	}
	cf, err := img.ConfigFile()
	if err != nil {
		t.Fatal(err)
	}
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture, cf.Config = "linux", "amd64", cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

// merged is a flattened stream read back.
type merged struct {
	order   []string
	entries map[string]*tar.Header
	bodies  map[string]string
}

func readMerged(t testing.TB, b []byte) merged {
	t.Helper()
	m := merged{entries: map[string]*tar.Header{}, bodies: map[string]string{}}
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return m
		}
		if err != nil {
			t.Fatalf("merged stream: %v", err)
		}
		name := h.Name
		if h.Typeflag == tar.TypeDir && name != "./" {
			name = name[:len(name)-1]
		}
		if _, dup := m.entries[name]; dup {
			t.Fatalf("merged stream has %q twice", name)
		}
		if dir := parentOf(name); dir != "" && dir != "./" {
			if p, ok := m.entries[dir]; !ok || p.Typeflag != tar.TypeDir {
				t.Fatalf("%q comes before its parent directory %q", name, dir)
			}
		}
		m.order = append(m.order, name)
		m.entries[name] = h
		body, _ := io.ReadAll(tr)
		m.bodies[name] = string(body)
	}
}

func parentOf(p string) string {
	if p == "./" {
		return ""
	}
	i := bytes.LastIndexByte([]byte(p), '/')
	if i < 0 {
		return "./"
	}
	return p[:i]
}

func flatten(t testing.TB, layers []Layer) (merged, FlattenStats) {
	t.Helper()
	var out bytes.Buffer
	st, err := Flatten(context.Background(), layers, &out)
	if err != nil {
		t.Fatalf("Flatten: %v", err)
	}
	return readMerged(t, out.Bytes()), st
}
