package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/zdb/zdbtest"
)

// gcHub is a hub on two namespaces of the real zdb server, with an admin key.
func gcHub(t *testing.T) (*testHub, key.Private) {
	t.Helper()
	ctx := context.Background()
	addr := zdbtest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, PoolSize: 1})
	for _, ns := range []string{"gc-blocks", "gc-meta"} {
		if err := admin.Do(ctx, "NSNEW", ns).Err(); err != nil {
			t.Fatal(err)
		}
	}
	admin.Close()
	adminKey, _ := key.New()
	clock := zostest.NewClock(time.Now())
	s, err := New(ctx, Config{Blocks: "zdb://" + addr + "/gc-blocks", Meta: "zdb://" + addr + "/gc-meta", Now: clock.Now,
		ListBlocks: listFile, TempDir: t.TempDir(), AdminKeys: []key.Public{adminKey.Public()}})
	if err != nil {
		t.Fatal(err)
	}
	return serveTestHub(t, s, clock), adminKey
}

func (h *testHub) gc(k key.Private, grace string, dryRun bool) GCResult {
	h.t.Helper()
	body, _ := json.Marshal(GCRequest{Grace: grace, DryRun: dryRun})
	var res GCResult
	if err := json.Unmarshal(h.want(200, "POST", "/api/v1/admin/gc", body, k), &res); err != nil {
		h.t.Fatal(err)
	}
	return res
}

// TestGCFreesUnreferencedBlocks deletes a flist, collects, and checks that
// only the blocks no flist references are gone, that young blocks are kept,
// and that blocks an upload relies on while the collection runs are kept.
func TestGCFreesUnreferencedBlocks(t *testing.T) {
	h, adminKey := gcHub(t)
	blk := map[string]string{}
	for _, n := range []string{"a", "b", "c", "d"} {
		body := []byte(strings.Repeat("block "+n+" ", 100))
		blk[n] = blockID(body)
		h.want(201, "POST", "/api/v1/block", body, h.key)
	}
	list := func(names ...string) []byte {
		var ids []string
		for _, n := range names {
			ids = append(ids, blk[n])
		}
		return []byte(strings.Join(ids, "\n") + "\n")
	}
	flists := "/api/v1/flists/" + h.user() + "/"
	h.want(201, "PUT", flists+"x", list("a", "b"), h.key)
	var y PutResult
	json.Unmarshal(h.want(201, "PUT", flists+"y", list("c"), h.key), &y)
	h.want(204, "DELETE", flists+"y", nil, h.key)
	h.want(200, "GET", "/api/v1/block/"+blk["c"], nil, key.Private{}) // now in the cache too

	// Only admins collect.
	if code, b := h.do("POST", "/api/v1/admin/gc", []byte(`{}`), h.key); code != 403 {
		t.Errorf("gc by a user: %d %s", code, b)
	}

	// Everything is younger than an hour: nothing goes.
	if res := h.gc(adminKey, "", false); res.DeletedBlocks != 0 || res.RecentBlocks != 2 || res.LiveBlocks != 2 || res.DeadFlists != 1 {
		t.Errorf("gc of young blocks: %+v", res)
	}
	h.want(200, "GET", "/api/v1/block/"+blk["c"], nil, key.Private{})

	// With no grace, blocks written in an earlier second are old enough
	// (zdb keeps write times in seconds).
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond)))
	if res := h.gc(adminKey, "0s", true); !res.DryRun || res.DeletedBlocks != 2 || res.LiveBlocks != 2 {
		t.Errorf("dry run: %+v", res)
	}
	h.want(200, "HEAD", "/api/v1/block/"+blk["c"], nil, key.Private{})

	// While the collection runs: an upload of a flist that uses the
	// unreferenced block d, a new block e, and a tag by hash (refused).
	eBody := []byte("block e, uploaded during the collection")
	h.srv.gcHook = func(phase string) {
		h.want(201, "PUT", flists+"z", list("d"), h.key)
		h.want(201, "POST", "/api/v1/block", eBody, h.key)
		if code, b := h.do("PUT", "/api/v1/tags/"+h.user()+"/old", []byte(`{"hash":"`+y.Hash+`"}`), h.key); code != 503 {
			t.Errorf("tag by hash during gc: %d %s", code, b)
		}
	}
	res := h.gc(adminKey, "0s", false)
	h.srv.gcHook = nil
	if res.DeletedBlocks != 1 || res.KeptBlocks != 1 || res.LiveBlocks != 2 || res.RecentBlocks != 1 || res.DeletedBytes != int64(len(strings.Repeat("block c ", 100))) {
		t.Errorf("gc: %+v", res)
	}
	for n, want := range map[string]int{"a": 200, "b": 200, "c": 404, "d": 200} {
		if code, _ := h.do("GET", "/api/v1/block/"+blk[n], nil, key.Private{}); code != want {
			t.Errorf("block %s after gc: %d, want %d", n, code, want)
		}
	}
	h.want(200, "GET", "/api/v1/block/"+blockID(eBody), nil, key.Private{})
	h.want(404, "GET", "/api/v1/flist/"+y.Hash, nil, key.Private{})
	h.want(200, "GET", flists+"x", nil, key.Private{})
	h.want(200, "GET", flists+"z", nil, key.Private{})
	var miss struct{ Missing []string }
	json.Unmarshal(h.want(200, "POST", "/api/v1/block/verify", []byte(fmt.Sprintf(`{"ids":[%q,%q]}`, blk["a"], blk["c"])), key.Private{}), &miss)
	if len(miss.Missing) != 1 || miss.Missing[0] != blk["c"] {
		t.Errorf("verify after gc: %v", miss.Missing)
	}

	// Re-uploading the deleted flist is refused until its block is back.
	h.want(409, "PUT", flists+"y", list("c"), h.key)

	// A second collection finds nothing more to do (z now holds d).
	if res := h.gc(adminKey, "1h", false); res.DeletedBlocks != 0 || res.DeadFlists != 0 || res.LiveBlocks != 3 {
		t.Errorf("second gc: %+v", res)
	}
}

// TestGCNeedsZdbAndAdmins: a redis block backend has no write times, and a
// hub without admin keys lets nobody collect.
func TestGCNeedsZdbAndAdmins(t *testing.T) {
	k, _ := key.New()
	h := newTestHub(t, func(c *Config) { c.AdminKeys = []key.Public{k.Public()} })
	if code, b := h.do("POST", "/api/v1/admin/gc", nil, k); code != 400 || !strings.Contains(string(b), "zdb") {
		t.Errorf("gc on redis: %d %s", code, b)
	}
	h2 := newTestHub(t, nil)
	if code, b := h2.do("POST", "/api/v1/admin/gc", nil, h2.key); code != 403 {
		t.Errorf("gc with no admin keys: %d %s", code, b)
	}
}

// TestGCWithConcurrentUploads runs collections while a user uploads flists
// that use old, unreferenced blocks, the way a packer does: a refused upload
// (409) sends the missing blocks again and retries. An accepted upload must
// never lose a block, whichever of the two gets there first.
func TestGCWithConcurrentUploads(t *testing.T) {
	h, adminKey := gcHub(t)
	var ids []string
	bodies := map[string][]byte{}
	for i := 0; i < 200; i++ {
		body := []byte(fmt.Sprintf("old block %d %s", i, strings.Repeat("x", i)))
		ids = append(ids, blockID(body))
		bodies[blockID(body)] = body
		h.want(201, "POST", "/api/v1/block", body, h.key)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond))) // old enough for grace 0

	done := make(chan struct{})
	gcErr := make(chan error, 1)
	go func() {
		defer close(gcErr)
		for i := 0; i < 5; i++ {
			if _, err := h.srv.GC(context.Background(), 0, false); err != nil {
				gcErr <- err
				return
			}
		}
	}()
	accepted := map[string][]string{}
	retries := 0
	go func() {
		defer close(done)
		for i := 0; i < 40; i++ {
			set := ids[i*5 : i*5+5]
			name := fmt.Sprintf("f%d", i)
			for try := 0; ; try++ {
				code, b := h.do("PUT", "/api/v1/flists/"+h.user()+"/"+name, []byte(strings.Join(set, "\n")+"\n"), h.key)
				if code == 201 {
					accepted[name] = set
					break
				}
				if code != 409 || try == 5 {
					t.Errorf("upload %s: %d %s", name, code, b)
					return
				}
				// The collection deleted blocks first: send them again.
				retries++
				var miss struct{ Missing []string }
				json.Unmarshal(b, &miss)
				for _, id := range miss.Missing {
					h.want(201, "POST", "/api/v1/block", bodies[id], h.key)
				}
			}
		}
	}()
	<-done
	if err := <-gcErr; err != nil {
		t.Fatal(err)
	}
	for name, set := range accepted {
		for _, id := range set {
			if code, _ := h.do("HEAD", "/api/v1/block/"+id, nil, key.Private{}); code != 200 {
				t.Errorf("flist %s was accepted but its block %s is gone", name, id[:12])
			}
		}
	}
	// And a final collection keeps exactly the accepted flists' blocks.
	res := h.gc(adminKey, "0s", false)
	if len(accepted) != 40 || res.LiveBlocks != 200 || res.DeletedBlocks != 0 {
		t.Errorf("final gc: %+v, want 200 live blocks of 40 flists (%d accepted)", res, len(accepted))
	}
	t.Logf("%d uploads refused for missing blocks and retried", retries)
}
