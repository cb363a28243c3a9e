package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"io"
	"log"
	"net/http"
	"net/http/httptest"
	"os"
	"strconv"
	"strings"
	"sync/atomic"
	"testing"

	"github.com/google/go-containerregistry/pkg/name"
	ggcrregistry "github.com/google/go-containerregistry/pkg/registry"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"

	"github.com/zosgrid/zos/key"
)

// damagingRegistry passes requests to a real (in-process) registry, but once
// armed it damages layer blobs: "corrupt" flips a byte (the digest no longer
// matches), "truncate" sends half the blob and ends the response, "hangup"
// sends half and then drops the connection (the registry goes away mid-pull).
type damagingRegistry struct {
	next http.Handler
	mode atomic.Value // string
}

func (d *damagingRegistry) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	mode, _ := d.mode.Load().(string)
	if mode == "" || r.Method != http.MethodGet || !strings.Contains(r.URL.Path, "/blobs/sha256:") {
		d.next.ServeHTTP(w, r)
		return
	}
	rec := httptest.NewRecorder()
	d.next.ServeHTTP(rec, r)
	body := rec.Body.Bytes()
	if rec.Code != http.StatusOK || len(body) < 64 || body[0] == '{' { // the config blob is JSON
		w.WriteHeader(rec.Code)
		w.Write(body)
		return
	}
	switch mode {
	case "corrupt":
		b := bytes.Clone(body)
		b[len(b)/2] ^= 0xff
		w.Write(b)
	case "truncate":
		w.Write(body[:len(body)/2])
	case "hangup":
		w.Header().Set("Content-Length", strconv.Itoa(len(body)))
		w.WriteHeader(http.StatusOK)
		w.Write(body[:len(body)/2])
		w.(http.Flusher).Flush()
		panic(http.ErrAbortHandler)
	}
}

// TestConvertBadLayerLeavesNothing converts an image whose layer arrives
// damaged: each job fails with an error that says what went wrong, and the
// hub keeps nothing of it: no flist, no .fl body, no block, no spool file.
func TestConvertBadLayerLeavesNothing(t *testing.T) {
	dr := &damagingRegistry{next: ggcrregistry.New(ggcrregistry.Logger(log.New(io.Discard, "", 0)))}
	reg := httptest.NewServer(dr)
	defer reg.Close()
	ref := strings.TrimPrefix(reg.URL, "http://") + "/bad:1"
	big := make([]byte, 256<<10)
	for i := range big {
		big[i] = byte(i*7 + i>>9)
	}
	layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) {
		return io.NopCloser(bytes.NewReader(tarOf(t, "big", big))), nil
	})
	if err != nil {
		t.Fatal(err)
	}
	img, _ := mutate.AppendLayers(empty.Image, layer)
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, _ = mutate.ConfigFile(img, cf)
	r, _ := name.ParseReference(ref)
	if err := remote.Write(r, img); err != nil {
		t.Fatal(err)
	}

	tmp := t.TempDir()
	h := newTestHub(t, func(c *Config) { c.ListBlocks = nil; c.EnableConvert = true; c.TempDir = tmp })
	ctx := context.Background()
	for mode, want := range map[string]string{"corrupt": "error verifying sha256 checksum", "truncate": "error verifying size", "hangup": "unexpected EOF"} {
		t.Run(mode, func(t *testing.T) {
			dr.mode.Store(mode)
			st := h.convert(t, `{"image":"`+ref+`","name":"`+mode+`.fl","platform":"linux/amd64"}`)
			if st.State != "failed" || !strings.Contains(st.Error, want) || st.Hash != "" {
				t.Errorf("job with a %s layer: %+v, want failed with %q", mode, st, want)
			}
			if code, b := h.do("GET", "/api/v1/flists/"+h.user()+"/"+mode+".fl", nil, key.Private{}); code != 404 {
				t.Errorf("failed conversion is served: %d %s", code, b)
			}
			if n, err := h.srv.blocks.c.DBSize(ctx).Result(); err != nil || n != 0 {
				t.Errorf("failed conversion stored %d blocks (%v)", n, err)
			}
			keys, _ := h.srv.meta.c.Keys(ctx, "fl*").Result()
			if len(keys) != 0 {
				t.Errorf("failed conversion stored .fl data: %q", keys)
			}
			if left, _ := os.ReadDir(tmp); len(left) != 0 {
				t.Errorf("failed conversion left %d entries in the hub's temp dir", len(left))
			}
		})
	}
	// The same image, undamaged, converts (the failures were the damage).
	dr.mode.Store("")
	st := h.convert(t, `{"image":"`+ref+`","name":"good.fl","platform":"linux/amd64"}`)
	if st.State != "done" {
		t.Fatalf("undamaged image: %+v", st)
	}
}

// tarOf is a tar stream of one regular file.
func tarOf(t *testing.T, name string, body []byte) []byte {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	if err := tw.WriteHeader(&tar.Header{Name: name, Mode: 0o644, Size: int64(len(body)), Typeflag: tar.TypeReg}); err != nil {
		t.Fatal(err)
	}
	tw.Write(body)
	tw.Close()
	return buf.Bytes()
}
