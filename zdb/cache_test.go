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
