package oci

import (
	"bytes"
	"context"
	"errors"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

var testConfig = v1.Config{
	Entrypoint:   []string{"/bin/sh", "-c"},
	Cmd:          []string{"echo hi"},
	Env:          []string{"PATH=/bin", "A=b c"},
	WorkingDir:   "/home/user",
	User:         "1000:1000",
	ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
	Volumes:      map[string]struct{}{"/data": {}},
	Labels:       map[string]string{"org.example": "yes"},
}

// spoolAndFlatten runs the whole import front end on src.
func spoolAndFlatten(t *testing.T, src *Source) (*Spooled, merged) {
	t.Helper()
	var last Progress
	sp, err := Spool(context.Background(), src, t.TempDir(), func(p Progress) { last = p })
	if err != nil {
		t.Fatalf("Spool: %v", err)
	}
	t.Cleanup(func() { sp.Close() })
	if last.Done != last.Total || last.Total != sp.Size || last.Layers != len(sp.Layers) {
		t.Errorf("last progress %+v, size %d", last, sp.Size)
	}
	var out bytes.Buffer
	if _, err := Flatten(context.Background(), sp.Layers, &out); err != nil {
		t.Fatalf("Flatten: %v", err)
	}
	return sp, readMerged(t, out.Bytes())
}

func checkImport(t *testing.T, img v1.Image, sp *Spooled, m merged) {
	t.Helper()
	d, _ := img.Digest()
	c := sp.Config
	if c.Digest != d.String() {
		t.Errorf("digest %s, want %s", c.Digest, d)
	}
	if !slices.Equal(c.Entrypoint, testConfig.Entrypoint) || !slices.Equal(c.Cmd, testConfig.Cmd) ||
		!slices.Equal(c.Env, testConfig.Env) || c.WorkingDir != "/home/user" || c.User != "1000:1000" ||
		!slices.Equal(c.ExposedPorts, []string{"53/udp", "8080/tcp"}) || !slices.Equal(c.Volumes, []string{"/data"}) ||
		c.Labels["org.example"] != "yes" || c.Architecture != "amd64" || c.OS != "linux" {
		t.Errorf("config %+v", c)
	}
	if m.bodies["bin/busybox"] != "new busybox" || m.bodies["bin/sh"] != "old busybox" {
		t.Errorf("busybox %q sh %q", m.bodies["bin/busybox"], m.bodies["bin/sh"])
	}
	if _, ok := m.entries["etc/passwd"]; ok {
		t.Error("etc/passwd survived its whiteout")
	}
}

func TestOpenLayoutTarballAndRegistry(t *testing.T) {
	img := testImage(t, testConfig, baseLayers(t)...)
	dir := t.TempDir()

	lp := filepath.Join(dir, "layout")
	p, err := layout.Write(lp, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	if err := p.AppendImage(img); err != nil {
		t.Fatal(err)
	}
	tb := filepath.Join(dir, "image.tar")
	tag, _ := name.NewTag("example.org/app:1")
	if err := tarball.WriteToFile(tb, tag, img); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/app:1"
	if err := pushImage(ref, img); err != nil {
		t.Fatal(err)
	}

	for _, c := range []struct {
		src  string
		kind Kind
	}{{lp, KindLayout}, {"oci:" + lp, KindLayout}, {tb, KindTarball}, {"docker-archive:" + tb, KindTarball}, {ref, KindRegistry}} {
		t.Run(string(c.kind)+" "+filepath.Base(c.src), func(t *testing.T) {
			src, err := Open(context.Background(), c.src, SourceOptions{Platform: "linux/amd64"})
			if err != nil {
				t.Fatalf("Open: %v", err)
			}
			if src.Kind != c.kind {
				t.Errorf("kind %s, want %s", src.Kind, c.kind)
			}
			sp, m := spoolAndFlatten(t, src)
			checkImport(t, img, sp, m)
		})
	}
}

func pushImage(ref string, img v1.Image) error {
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}

func TestOpenPicksPlatform(t *testing.T) {
	amd := testImage(t, v1.Config{Cmd: []string{"amd"}}, layerTar(t, ent{name: "arch", body: "amd64"}))
	armCfg := testImage(t, v1.Config{Cmd: []string{"arm"}}, layerTar(t, ent{name: "arch", body: "arm64"}))
	cf, _ := armCfg.ConfigFile()
	cf = cf.DeepCopy()
	cf.Architecture, cf.Variant = "arm64", "v8"
	arm, err := mutate.ConfigFile(armCfg, cf)
	if err != nil {
		t.Fatal(err)
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: amd, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: arm, Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64", Variant: "v8"}}},
	)
	lp := filepath.Join(t.TempDir(), "multi")
	if _, err := layout.Write(lp, idx); err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(registry.New(registry.Logger(log.New(io.Discard, "", 0))))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/multi:latest"
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	for _, src := range []string{lp, ref} {
		for plat, want := range map[string]string{"linux/amd64": "amd64", "linux/arm64/v8": "arm64", "linux/arm64": "arm64"} {
			s, err := Open(context.Background(), src, SourceOptions{Platform: plat})
			if err != nil {
				t.Fatalf("%s %s: %v", src, plat, err)
			}
			_, m := spoolAndFlatten(t, s)
			if m.bodies["arch"] != want {
				t.Errorf("%s %s: got the %s image", src, plat, m.bodies["arch"])
			}
		}
		if _, err := Open(context.Background(), src, SourceOptions{Platform: "linux/s390x"}); !errors.Is(err, ErrOCINoPlatform) && src == lp {
			t.Errorf("%s: missing platform: err = %v, want ErrOCINoPlatform", src, err)
		} else if err == nil {
			t.Errorf("%s: missing platform accepted", src)
		}
	}
}

func TestOpenBadSources(t *testing.T) {
	dir := t.TempDir()
	notTar := filepath.Join(dir, "notatar")
	os.WriteFile(notTar, []byte("hello"), 0o644)
	for _, src := range []string{notTar, dir, "/does/not/exist", "UPPER/Case:bad!"} {
		if _, err := Open(context.Background(), src, SourceOptions{}); err == nil {
			t.Errorf("Open(%q) succeeded", src)
		}
	}
	if _, err := Open(context.Background(), "x", SourceOptions{Platform: "amd64"}); err == nil {
		t.Error("bad platform accepted")
	}
}

// corruptingRegistry serves a real registry but changes blob bytes, or cuts
// the connection half way through a blob once armed.
type corruptingRegistry struct {
	next    http.Handler
	corrupt atomic.Bool
	hangup  atomic.Bool
}

func (c *corruptingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/") || !(c.corrupt.Load() || c.hangup.Load()) {
		c.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	c.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if !strings.Contains(r.URL.Path, "sha256:") || len(body) < 64 || rec.Code != 200 {
		w.WriteHeader(rec.Code)
		w.Write(body)
		return
	}
	// Layer blobs only: the config blob is JSON and starts with '{'.
	if body[0] == '{' {
		w.Write(body)
		return
	}
	if c.corrupt.Load() {
		b := bytes.Clone(body)
		b[len(b)/2] ^= 0xff
		w.Write(b)
		return
	}
	w.Header().Set("Content-Length", strconv.Itoa(len(body)))
	w.WriteHeader(200)
	w.Write(body[:len(body)/2])
	w.(http.Flusher).Flush()
	panic(http.ErrAbortHandler) // the registry goes away mid-pull
}

func TestSpoolBadRegistry(t *testing.T) {
	big := make([]byte, 64<<10)
	for i := range big {
		big[i] = byte(i * 7)
	}
	img := testImage(t, testConfig, layerTar(t, ent{name: "big", body: string(big)}))
	cr := &corruptingRegistry{next: registry.New(registry.Logger(log.New(io.Discard, "", 0)))}
	srv := httptest.NewServer(cr)
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/bad:1"
	if err := pushImage(ref, img); err != nil {
		t.Fatal(err)
	}
	for _, mode := range []string{"corrupt", "hangup"} {
		t.Run(mode, func(t *testing.T) {
			cr.corrupt.Store(mode == "corrupt")
			cr.hangup.Store(mode == "hangup")
			src, err := Open(context.Background(), ref, SourceOptions{Platform: "linux/amd64"})
			if err != nil {
				t.Fatal(err)
			}
			tmp := t.TempDir()
			_, err = Spool(context.Background(), src, tmp, nil)
			if err == nil {
				t.Fatal("spooling a damaged layer succeeded")
			}
			if mode == "corrupt" && !errors.Is(err, ErrOCIBadLayer) {
				t.Errorf("err = %v, want ErrOCIBadLayer", err)
			}
			left, _ := os.ReadDir(tmp)
			if len(left) != 0 {
				t.Errorf("spool left %d entries behind", len(left))
			}
		})
	}
}

func TestSpoolChecksDiffID(t *testing.T) {
	img := testImage(t, testConfig, layerTar(t, ent{name: "f", body: "x"}))
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.RootFS.DiffIDs[0].Hex = strings.Repeat("0", 64)
	bad, err := mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	lp := filepath.Join(t.TempDir(), "layout")
	p, _ := layout.Write(lp, empty.Index)
	if err := p.AppendImage(bad); err != nil {
		t.Fatal(err)
	}
	src, err := Open(context.Background(), lp, SourceOptions{})
	if err != nil {
		t.Fatal(err)
	}
	tmp := t.TempDir()
	if _, err := Spool(context.Background(), src, tmp, nil); !errors.Is(err, ErrOCIBadLayer) || !strings.Contains(err.Error(), "uncompressed digest") {
		t.Fatalf("wrong diff_id: err = %v", err)
	}
	if left, _ := os.ReadDir(tmp); len(left) != 0 {
		t.Errorf("spool left %d entries behind", len(left))
	}
}

// TestOpenExplainsRefusals: a registry that refuses the credentials gives
// ErrOCIUnauthorized, and a token realm on another private address gets a
// hint about go-containerregistry's guard against it.
func TestOpenExplainsRefusals(t *testing.T) {
	var realm string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if realm != "" {
			w.Header().Set("WWW-Authenticate", `Bearer realm="`+realm+`",service="test"`)
		} else {
			w.Header().Set("WWW-Authenticate", `Basic realm="test"`)
		}
		w.WriteHeader(http.StatusUnauthorized)
	}))
	defer srv.Close()
	ref := strings.TrimPrefix(srv.URL, "http://") + "/app:1"
	opts := SourceOptions{Username: "u", Password: "wrong", Platform: "linux/amd64"}
	if _, err := Open(context.Background(), ref, opts); !errors.Is(err, ErrOCIUnauthorized) || strings.Contains(err.Error(), "wrong") {
		t.Errorf("refused credentials: %v", err)
	}
	realm = "http://10.0.0.1:1/token"
	if _, err := Open(context.Background(), ref, opts); err == nil || !strings.Contains(err.Error(), "host name rather than a private IP") {
		t.Errorf("private realm: %v", err)
	}
}
