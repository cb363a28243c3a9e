package zdb

import "sync"

// valueCache, shared by the namespaces of a DB, keeps recently written and
// read values in RAM so that hot GETs skip the pread. Entries are keyed by
// data position, whose content never changes (append-only); compaction and
// FLUSH, which rewrite files, give the namespace a new cache generation.
// Values are stored after their CRC was checked (or as received); CHECK
// bypasses the cache.
type valueCache struct {
	shards [16]cacheShard
	limit  int64 // bytes per shard
}

type cacheShard struct {
	mu    sync.Mutex
	m     map[uint64]cacheEntry // by cacheKey.slot: the fast uint64 map path
	bytes int64
}

// cacheEntry is a cached value with its full name: slots of different
// generations can collide, and a collision is a miss, never a wrong value.
type cacheEntry struct {
	key cacheKey
	v   []byte
}

// cacheKey names a value: the namespace's cache generation (renewed when
// its files are rewritten, which orphans its old entries) and the record's
// data position.
type cacheKey struct {
	gen  uint64
	file uint32
	off  uint32
}

// slot folds a key into the shard map's uint64 key.
func (k cacheKey) slot() uint64 {
	return (uint64(k.file)<<32 | uint64(k.off)) ^ k.gen*0x9e3779b97f4a7c15
}

func newValueCache(total int64) *valueCache {
	if total <= 0 {
		return nil
	}
	c := &valueCache{limit: total / 16}
	for i := range c.shards {
		c.shards[i].m = map[uint64]cacheEntry{}
	}
	return c
}

func (c *valueCache) shard(k cacheKey) *cacheShard {
	h := k.gen*0x9e3779b97f4a7c15 ^ uint64(k.file)<<32 ^ uint64(k.off)
	return &c.shards[(h^h>>7^h>>17^h>>32)&15]
}

// get appends the cached value to dst.
func (c *valueCache) get(dst []byte, gen uint64, file, off uint32) ([]byte, bool) {
	if c == nil {
		return dst, false
	}
	k := cacheKey{gen, file, off}
	s := c.shard(k)
	s.mu.Lock()
	e, ok := s.m[k.slot()]
	ok = ok && e.key == k
	if ok {
		dst = append(dst, e.v...)
	}
	s.mu.Unlock()
	return dst, ok
}

// put stores a copy of v, evicting arbitrary entries over the budget.
func (c *valueCache) put(gen uint64, file, off uint32, v []byte) {
	if c == nil || int64(len(v)) > c.limit/8 {
		return
	}
	k := cacheKey{gen, file, off}
	s := c.shard(k)
	cp := append([]byte(nil), v...)
	slot := k.slot()
	s.mu.Lock()
	if old, ok := s.m[slot]; ok {
		s.bytes -= cacheCost(old.v)
	}
	s.m[slot] = cacheEntry{k, cp}
	s.bytes += cacheCost(cp)
	if s.bytes > c.limit {
		for es, ev := range s.m { // map order is random: random eviction
			if es != slot {
				delete(s.m, es)
				s.bytes -= cacheCost(ev.v)
			}
			if s.bytes <= c.limit*7/8 {
				break
			}
		}
	}
	s.mu.Unlock()
}

// cacheCost counts a value with its map slot and slice header.
func cacheCost(v []byte) int64 { return int64(cap(v)) + 64 }
