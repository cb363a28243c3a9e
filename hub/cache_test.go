package hub

import (
	"context"
	"testing"

	"github.com/zosgrid/zos/key"
)

func TestBlockCacheEvictsLeastRecent(t *testing.T) {
	c := newBlockCache(80)
	blk := func(b byte) []byte { return []byte{b, b, b, b, b, b, b, b, b, b} } // 10 bytes
	for i := byte(0); i < 8; i++ {
		c.add([32]byte{i}, blk(i))
	}
	if _, ok := c.get([32]byte{0}); !ok { // 0 becomes most recent
		t.Fatal("block 0 missing before the cache is full")
	}
	c.add([32]byte{8}, blk(8)) // evicts 1, the least recent
	if _, ok := c.get([32]byte{1}); ok {
		t.Error("least recently used block 1 still cached")
	}
	for _, i := range []byte{0, 2, 8} {
		if d, ok := c.get([32]byte{i}); !ok || d[0] != i {
			t.Errorf("block %d: %v %v", i, d, ok)
		}
	}
	if c.size != 80 {
		t.Errorf("size %d, want 80", c.size)
	}
	c.add([32]byte{9}, make([]byte, 11)) // more than an eighth: not cached
	if _, ok := c.get([32]byte{9}); ok {
		t.Error("oversized block cached")
	}
	off := newBlockCache(0)
	off.add([32]byte{1}, []byte("x"))
	if _, ok := off.get([32]byte{1}); ok {
		t.Error("disabled cache returned a block")
	}
}

func TestHubServesFromCache(t *testing.T) {
	for _, size := range []int64{0, -1} {
		h := newTestHub(t, func(c *Config) { c.CacheBytes = size })
		blk := []byte("cached block")
		id := blockID(blk)
		h.want(201, "POST", "/api/v1/block", blk, h.key)
		h.want(200, "GET", "/blocks/"+id[:2]+"/"+id, nil, key.Private{})
		raw, _ := parseID(id)
		if err := h.srv.blocks.del(context.Background(), blockKey(raw)); err != nil {
			t.Fatal(err)
		}
		want := 200
		if size < 0 {
			want = 404
		}
		h.want(want, "GET", "/blocks/"+id[:2]+"/"+id, nil, key.Private{})
	}
}
