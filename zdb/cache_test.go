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
		total += int64(c.shards[i].used())
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
	c.shard(b).put(a, []byte("A"))
	if got, ok := c.get(nil, b.gen, b.file, b.off); ok {
		t.Fatalf("colliding key served %q", got)
	}
	c.put(b.gen, b.file, b.off, []byte("B"))
	if got, ok := c.get(nil, b.gen, b.file, b.off); !ok || string(got) != "B" {
		t.Fatalf("b after put: %q %v", got, ok)
	}
}

// The ring keeps the newest values, evicts the oldest, and its map never
// points at an overwritten entry, whatever the mix of sizes.
func TestValueCacheRingEviction(t *testing.T) {
	c := newValueCache(16 * 8192) // 8 KiB per shard
	type put struct {
		file, off uint32
		v         []byte
	}
	var puts []put
	for i := uint32(0); i < 5000; i++ {
		v := bytes.Repeat([]byte{byte(i)}, int(i*37%900)+1)
		c.put(9, i/64, i%64*1000, v)
		puts = append(puts, put{i / 64, i % 64 * 1000, v})
	}
	hits := 0
	for i, p := range puts {
		got, ok := c.get(nil, 9, p.file, p.off)
		if !ok {
			continue
		}
		hits++
		if !bytes.Equal(got, p.v) {
			t.Fatalf("put %d: cached value differs (len %d, want %d)", i, len(got), len(p.v))
		}
	}
	if hits == 0 {
		t.Fatal("nothing cached")
	}
	last := puts[len(puts)-1]
	if _, ok := c.get(nil, 9, last.file, last.off); !ok {
		t.Fatal("newest value evicted")
	}
	if _, ok := c.get(nil, 9, puts[0].file, puts[0].off); ok {
		t.Fatal("oldest value survived 5000 puts into 128 KiB")
	}
	for i := range c.shards {
		s := &c.shards[i]
		if s.used() > uint64(len(s.ring)) {
			t.Fatalf("shard %d holds %d bytes in a %d-byte ring", i, s.used(), len(s.ring))
		}
		for slot, pos := range s.m {
			if pos < s.tail || pos >= s.head {
				t.Fatalf("shard %d: slot %x points at %d outside [%d,%d)", i, slot, pos, s.tail, s.head)
			}
		}
	}
	if v := bytes.Repeat([]byte("L"), 2000); true {
		c.put(9, 99, 99, v) // over 1/8 of a shard: not cached
		if _, ok := c.get(nil, 9, 99, 99); ok {
			t.Fatal("oversized value cached")
		}
	}
}

// read copies a hit into the caller's buffer of the value's length, and
// misses on any other length.
func TestValueCacheReadInto(t *testing.T) {
	c := newValueCache(1 << 20)
	c.put(1, 2, 3, []byte("hello"))
	buf := make([]byte, 5)
	if !c.read(buf, 1, 2, 3) || string(buf) != "hello" {
		t.Fatalf("read = %q", buf)
	}
	if c.read(make([]byte, 4), 1, 2, 3) || c.read(buf, 1, 2, 4) {
		t.Fatal("a wrong length or position hit")
	}
	c.put(1, 2, 5, nil)
	if !c.read(nil, 1, 2, 5) {
		t.Fatal("empty value missed")
	}
}
