package container_test

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/zosgrid/zos/container"
)

// TestImageDownloadsArePruned covers the life of images run by URL: a
// download stays while a container (running or not) references it, goes
// with its last container or with a run given up before creating one, and
// prune removes what a killed run left; files given by path are never
// touched.
func TestImageDownloadsArePruned(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, req *http.Request) {
		if req.URL.Path == "/missing" {
			http.NotFound(w, req)
			return
		}
		w.Write([]byte("image " + req.URL.Path))
	}))
	defer srv.Close()
	images := filepath.Join(r.Root(), "images")
	downloaded := func(content string) string {
		sum := sha256.Sum256([]byte(content))
		return filepath.Join(images, hex.EncodeToString(sum[:])+".fl")
	}
	exists := func(p string) bool { _, err := os.Stat(p); return err == nil }

	// Referenced by a created container: kept by done and by prune.
	a, doneA, err := r.FetchImage(ctx, srv.URL+"/a")
	if err != nil || a != downloaded("image /a") {
		t.Fatalf("fetch: %q %v, want %q", a, err, downloaded("image /a"))
	}
	c := sh("true")
	c.ID, c.Image, c.Lower = uniqueName(t), a, t.TempDir()
	if err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	doneA(true)
	doneA(true)
	if !exists(a) {
		t.Fatal("the download of a created container was removed")
	}

	// Given up before a container was created: removed, unless another
	// run of the same image is in flight.
	b1, doneB1, err := r.FetchImage(ctx, srv.URL+"/b")
	if err != nil {
		t.Fatal(err)
	}
	b2, doneB2, err := r.FetchImage(ctx, srv.URL+"/b")
	if err != nil || b2 != b1 {
		t.Fatalf("second fetch: %q %v", b2, err)
	}
	doneB1(false)
	if !exists(b1) {
		t.Fatal("a download another run waits on was removed")
	}
	doneB2(false)
	if exists(b1) {
		t.Error("an abandoned download was kept")
	}

	if _, _, err := r.FetchImage(ctx, srv.URL+"/missing"); err == nil {
		t.Error("fetching a missing image succeeded")
	}

	// Left by a run killed between download and create, and a file a
	// user put there: prune removes the former only.
	stray := downloaded("stray")
	if err := os.WriteFile(stray, []byte("stray"), 0o600); err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(images, "mine.fl")
	if err := os.WriteFile(mine, []byte("mine"), 0o600); err != nil {
		t.Fatal(err)
	}
	partial := filepath.Join(images, ".download-killed")
	if err := os.WriteFile(partial, []byte("part"), 0o600); err != nil {
		t.Fatal(err)
	}
	pruned, err := r.PruneImages(ctx)
	slices.SortFunc(pruned, func(x, y container.PrunedImage) int { return strings.Compare(x.Path, y.Path) })
	want := []container.PrunedImage{{Path: partial, Bytes: 4}, {Path: stray, Bytes: 5}}
	slices.SortFunc(want, func(x, y container.PrunedImage) int { return strings.Compare(x.Path, y.Path) })
	if err != nil || !slices.Equal(pruned, want) {
		t.Errorf("prune: %+v %v, want %+v", pruned, err, want)
	}
	if !exists(a) || !exists(mine) || exists(stray) {
		t.Errorf("after prune: referenced kept %v, user's kept %v, stray kept %v", exists(a), exists(mine), exists(stray))
	}
	if left, _ := filepath.Glob(filepath.Join(images, ".download-*")); len(left) > 0 {
		t.Errorf("partial downloads left: %v", left)
	}

	// rm of its last container removes the download.
	if err := r.Remove(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if exists(a) {
		t.Error("the download outlived its last container")
	}
	if pruned, err := r.PruneImages(ctx); err != nil || len(pruned) != 0 {
		t.Errorf("second prune: %+v %v", pruned, err)
	}
}
