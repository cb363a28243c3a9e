package hub

import (
	"archive/tar"
	"bytes"
	"context"
	"fmt"
	"net/http"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zosgrid/zos/flist/flisttest"
	"github.com/zosgrid/zos/flist/pack"
	"github.com/zosgrid/zos/flist/store"
)

// countingTransport records the method and path of every request.
type countingTransport struct {
	mu   sync.Mutex
	reqs []string
}

func (c *countingTransport) RoundTrip(r *http.Request) (*http.Response, error) {
	c.mu.Lock()
	c.reqs = append(c.reqs, r.Method+" "+r.URL.Path)
	c.mu.Unlock()
	return http.DefaultTransport.RoundTrip(r)
}

func (c *countingTransport) take() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	out := c.reqs
	c.reqs = nil
	return out
}

// A re-import through the hub store asks which blocks are missing in a
// batch (POST /api/v1/block/verify) instead of one HEAD per block.
func TestReimportCostsFewRequests(t *testing.T) {
	h := newTestHub(t, nil)
	ct := &countingTransport{}
	hubStore := store.NewHub(h.http.URL, h.key, &http.Client{Transport: ct})
	image := func() *bytes.Buffer {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for i := range 4 {
			b := flisttest.Random(uint64(i), 700*1024) // two blocks each
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("f%d", i), Mode: 0o644, Size: int64(len(b)), Typeflag: tar.TypeReg})
			tw.Write(b)
		}
		tw.Close()
		return &buf
	}
	dir := t.TempDir()
	first, err := pack.Tar(context.Background(), image(), filepath.Join(dir, "1.fl"), pack.Options{Store: hubStore, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	if first.NewBlocks != 8 {
		t.Fatalf("first import uploaded %d blocks, want 8", first.NewBlocks)
	}
	ct.take()
	again, err := pack.Tar(context.Background(), image(), filepath.Join(dir, "2.fl"), pack.Options{Store: hubStore, Workers: 4})
	if err != nil {
		t.Fatal(err)
	}
	reqs := ct.take()
	if again.NewBlocks != 0 {
		t.Errorf("re-import uploaded %d blocks", again.NewBlocks)
	}
	if len(reqs) < 1 || len(reqs) > 3 {
		t.Errorf("re-import of 8 blocks made %d requests, want 1 to 3: %v", len(reqs), reqs)
	}
	for _, r := range reqs {
		if r != "POST /api/v1/block/verify" {
			t.Errorf("re-import made request %q, want only batched verifies", r)
		}
	}
}
