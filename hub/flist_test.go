package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/pack"
	"github.com/zosgrid/zos/flist/store"
	"github.com/zosgrid/zos/flist/store/storetest"
	"github.com/zosgrid/zos/key"
)

func TestHubStoreConformance(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.ListBlocks = nil })
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		st := store.NewHub(h.http.URL, h.key, nil)
		return storetest.Harness{
			Store: st,
			Corrupt: func(id flist.ID, data []byte) {
				if err := h.srv.blocks.set(context.Background(), blockKey(id), data); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

func TestHubStoreReadOnlyWithoutKey(t *testing.T) {
	h := newTestHub(t, nil)
	st := store.NewHub(h.http.URL, key.Private{}, nil)
	b, ct, _ := flist.EncodeBlock([]byte("x"))
	if err := st.Set(context.Background(), b.ID, ct); err == nil {
		t.Fatal("a hub store without a key accepted a write")
	}
	base, kf, err := store.ParseHubURL("hub+http://127.0.0.1:9/?key=/k")
	if err != nil || base != "http://127.0.0.1:9" || kf != "/k" {
		t.Fatalf("ParseHubURL: %q %q %v", base, kf, err)
	}
	for _, bad := range []string{"http://x", "hub+ftp://x", "hub+http://"} {
		if _, _, err := store.ParseHubURL(bad); err == nil {
			t.Errorf("ParseHubURL(%q) accepted", bad)
		}
	}
}

// packTree packs a small tree into out through st and returns the stats.
func packTree(t *testing.T, out string, st pack.BlockStore, content string) pack.Stats {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	files := map[string]string{"a": content, "b/c": strings.Repeat(content, 3000), "d": "small"}
	for n, b := range files {
		tw.WriteHeader(&tar.Header{Name: n, Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
		io.WriteString(tw, b)
	}
	tw.Close()
	s, err := pack.Tar(context.Background(), &buf, out, pack.Options{Store: st})
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestUploadRealFlist(t *testing.T) {
	h := newTestHub(t, func(c *Config) { c.ListBlocks = nil })
	dir := t.TempDir()
	local, err := store.NewDir(filepath.Join(dir, "blocks"))
	if err != nil {
		t.Fatal(err)
	}
	fl := filepath.Join(dir, "app.fl")
	packTree(t, fl, local, "hello hub")
	data, _ := os.ReadFile(fl)
	path := "/api/v1/flists/" + h.user() + "/app.fl"

	// The hub holds none of its blocks: refused, nothing stored.
	got := h.want(409, "PUT", path, data, h.key)
	var refusal struct {
		MissingCount int `json:"missing_count"`
	}
	json.Unmarshal(got, &refusal)
	if refusal.MissingCount == 0 {
		t.Errorf("refusal without missing ids: %s", got)
	}
	h.want(404, "GET", path, nil, key.Private{})
	h.want(400, "PUT", path, []byte("SQLite format 3\x00 but not really"), h.key)

	// Pack again through the hub store: blocks go up, then the upload passes.
	hubStore := store.NewHub(h.http.URL, h.key, nil)
	st := packTree(t, filepath.Join(dir, "again.fl"), hubStore, "hello hub")
	if st.NewBlocks == 0 {
		t.Fatalf("no blocks uploaded: %+v", st)
	}
	again := packTree(t, filepath.Join(dir, "third.fl"), hubStore, "hello hub")
	if again.NewBlocks != 0 {
		t.Errorf("second pack uploaded %d blocks, want 0", again.NewBlocks)
	}
	missing, err := hubStore.Missing(context.Background(), []flist.ID{{1}})
	if err != nil || len(missing) != 1 {
		t.Errorf("Missing: %v %v", missing, err)
	}
	h.want(201, "PUT", path, data, h.key)
	if got := h.want(200, "GET", path, nil, key.Private{}); !bytes.Equal(got, data) {
		t.Error("downloaded flist differs")
	}
}

func TestConvertImage(t *testing.T) {
	reg := httptest.NewServer(ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0))))
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/app:1"
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	body := strings.Repeat("converted content ", 40000)
	tw.WriteHeader(&tar.Header{Name: "bin/app", Mode: 0o755, Size: int64(len(body)), Typeflag: tar.TypeReg})
	io.WriteString(tw, body)
	tw.WriteHeader(&tar.Header{Name: "bin/link", Typeflag: tar.TypeSymlink, Linkname: "app"})
	tw.Close()
	lb := buf.Bytes()
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(lb)), nil })
	if err != nil {
		t.Fatal(err)
	}
	img, _ := mutate.AppendLayers(empty.Image, layer)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = v1.Config{Entrypoint: []string{"/bin/app"}, Env: []string{"A=1"}}
	img, _ = mutate.ConfigFile(img, cf)
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}

	h := newTestHub(t, func(c *Config) { c.ListBlocks = nil; c.EnableConvert = true; c.PublicURL = "http://hub.example" })
	st := h.convert(t, `{"image":"`+ref+`","name":"app.fl","platform":"linux/amd64"}`)
	if st.State != "done" {
		t.Fatalf("conversion: %+v", st)
	}
	data := h.want(200, "GET", "/api/v1/flists/"+h.user()+"/app.fl", nil, key.Private{})
	fl := filepath.Join(t.TempDir(), "app.fl")
	os.WriteFile(fl, data, 0o644)
	f, err := flist.Open(context.Background(), fl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cfgJSON, err := f.ImageConfig(context.Background())
	if err != nil || !strings.Contains(string(cfgJSON), `"entrypoint":["/bin/app"]`) {
		t.Errorf("image config %s, %v", cfgJSON, err)
	}
	routes, _ := f.Routes(context.Background())
	if len(routes) != 1 || routes[0].URL != "http://hub.example/blocks" {
		t.Errorf("routes %+v", routes)
	}
	// Every block is served by the hub at the rfs http store layout.
	rd := store.NewHTTP(h.http.URL+"/blocks", nil)
	tree, err := f.Tree(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, bs := range tree.Blocks {
		for _, b := range bs {
			if _, err := rd.Get(context.Background(), b.ID); err != nil {
				t.Fatalf("block %s: %v", b.ID, err)
			}
			n++
		}
	}
	if n == 0 {
		t.Error("converted flist has no blocks")
	}

	// A bad image reference fails the job with a clear error.
	st = h.convert(t, `{"image":"`+strings.TrimPrefix(reg.URL, "http://")+`/nope:1"}`)
	if st.State != "failed" || !strings.Contains(st.Error, "nope") {
		t.Errorf("bad image: %+v", st)
	}
}
