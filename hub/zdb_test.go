package hub

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zosgrid/zos/flist/store"
	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/zdb/zdbtest"
)

// TestHubOnZdb runs the hub on two namespaces of the real zdb server (the
// block namespace password-protected) and packs, uploads and reads back.
func TestHubOnZdb(t *testing.T) {
	ctx := context.Background()
	// First, so that the check runs after the zdb server stopped: its
	// event loops start with the clients and end with it.
	zostest.CheckLeaks(t)
	addr := zdbtest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, PoolSize: 1})
	for _, args := range [][]any{{"NSNEW", "hub-blocks"}, {"NSSET", "hub-blocks", "password", "s3cret"}, {"NSNEW", "hub-meta"}} {
		if err := admin.Do(ctx, args...).Err(); err != nil {
			t.Fatalf("%v: %v", args, err)
		}
	}
	admin.Close()

	if _, err := New(ctx, Config{Blocks: "zdb://:wrong@" + addr + "/hub-blocks", Meta: "zdb://" + addr + "/hub-meta"}); err == nil {
		t.Fatal("hub started with a wrong namespace password")
	}
	if _, err := New(ctx, Config{Blocks: "zdb://" + addr + "/nosuchns", Meta: "zdb://" + addr + "/hub-meta"}); err == nil {
		t.Fatal("hub started on a missing namespace")
	}

	s, err := New(ctx, Config{Blocks: "zdb://:s3cret@" + addr + "/hub-blocks", Meta: "zdb://" + addr + "/hub-meta", TempDir: t.TempDir()})
	if err != nil {
		t.Fatal(err)
	}
	h := serveTestHub(t, s, zostest.NewClock(time.Now()))

	dir := t.TempDir()
	hubStore := store.NewHub(h.http.URL, h.key, nil)
	fl := filepath.Join(dir, "app.fl")
	st := packTree(t, fl, hubStore, strings.Repeat("zdb backed ", 200))
	if st.NewBlocks == 0 {
		t.Fatalf("nothing uploaded: %+v", st)
	}
	data := readFile(t, fl)
	path := "/api/v1/flists/" + h.user() + "/app.fl"
	h.want(201, "PUT", path, data, h.key)
	if got := h.want(200, "GET", path, nil, key.Private{}); string(got) != string(data) {
		t.Fatal("flist read back from zdb differs")
	}
	if again := packTree(t, filepath.Join(dir, "again.fl"), hubStore, strings.Repeat("zdb backed ", 200)); again.NewBlocks != 0 {
		t.Errorf("second pack uploaded %d blocks", again.NewBlocks)
	}
}
