package zdb

import (
	"bytes"
	"testing"
)

func TestValueCacheBudget(t *testing.T) {
	c := newValueCache(16 * 4096)
	v := bytes.Repeat([]byte("v"), 100)
	for i := uint32(0); i < 10000; i++ {
		c.put(1, i/100, i%100*200, v)
	}
	var total int64
	n := 0
	for i := range c.shards {
		total += c.shards[i].bytes
		n += len(c.shards[i].m)
	}
	if total > 16*4096 || n == 0 {
		t.Fatalf("cache holds %d bytes in %d entries over a %d budget", total, n, 16*4096)
	}
	c.put(2, 7, 7, []byte("x"))
	if got, ok := c.get(nil, 2, 7, 7); !ok || string(got) != "x" {
		t.Fatal("fresh entry missing")
	}
	if _, ok := c.get(nil, 3, 7, 7); ok {
		t.Fatal("another generation must miss")
	}
	var nilCache *valueCache
	nilCache.put(1, 1, 1, v)
	if _, ok := nilCache.get(nil, 1, 1, 1); ok {
		t.Fatal("disabled cache hit")
	}
}

// Keys that fold into the same map slot must never serve each other's value.
func TestValueCacheSlotCollision(t *testing.T) {
	var mix uint64 = 0x9e3779b97f4a7c15
	a := cacheKey{gen: 0, file: 0, off: 0}
	b := cacheKey{gen: 1, file: uint32(mix >> 32), off: uint32(mix)}
	if a.slot() != b.slot() {
		t.Fatalf("test keys do not collide: %x %x", a.slot(), b.slot())
	}
	c := newValueCache(1 << 20)
	// What a collision leaves: a's entry in the slot b looks up.
	c.shard(b).m[b.slot()] = cacheEntry{a, []byte("A")}
	if got, ok := c.get(nil, b.gen, b.file, b.off); ok {
		t.Fatalf("colliding key served %q", got)
	}
	c.put(b.gen, b.file, b.off, []byte("B"))
	if got, ok := c.get(nil, b.gen, b.file, b.off); !ok || string(got) != "B" {
		t.Fatalf("b after put: %q %v", got, ok)
	}
}
