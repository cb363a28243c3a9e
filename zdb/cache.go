package zdb

import "sync"

// valueCache, shared by the namespaces of a DB, keeps values read with
// pread (and, when reads do not go through maps, values just written) in
// RAM so that hot GETs skip the pread. Entries are keyed by
// data position, whose content never changes (append-only); compaction and
// FLUSH, which rewrite files, give the namespace a new cache generation.
// Values are stored after their CRC was checked (or as received); CHECK
// bypasses the cache.
//
// Each shard is a ring buffer of entries written one after the other and
// evicted oldest first, with a map from position to ring offset. Neither
// holds pointers and a put allocates nothing: a cache of many small values
// costs the garbage collector nothing and a SET no allocation.
type valueCache struct {
	shards [16]cacheShard
}

type cacheShard struct {
	mu   sync.Mutex
	m    map[uint64]uint64 // cacheKey.slot → absolute ring position of its entry
	ring []byte            // entries: cacheEntryHeader bytes, then the value
	head uint64            // absolute position where the next entry goes
	tail uint64            // absolute position of the oldest entry kept
}

// An entry's header: gen u64 | file u32 | off u32 | value length u32. A
// header with file and off all ones and gen 0 pads the ring's end.
const cacheEntryHeader = 20

// cacheKey names a value: the namespace's cache generation (renewed when
// its files are rewritten, which orphans its old entries) and the record's
// data position.
type cacheKey struct {
	gen  uint64
	file uint32
	off  uint32
}

// slot folds a key into the shard map's uint64 key. Different keys can share
// a slot: the header stored with the value tells them apart.
func (k cacheKey) slot() uint64 {
	return (uint64(k.file)<<32 | uint64(k.off)) ^ k.gen*0x9e3779b97f4a7c15
}

func newValueCache(total int64) *valueCache {
	if total <= 0 {
		return nil
	}
	c := &valueCache{}
	per := max(total/int64(len(c.shards)), 4096)
	for i := range c.shards {
		c.shards[i].m = map[uint64]uint64{}
		// Pages of the ring are only backed by RAM once written.
		c.shards[i].ring = make([]byte, per)
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
	return c.shard(k).get(dst, k)
}

// read fills buf with the cached value if there is one of exactly that
// length (values at a position never change, so a hit always has it).
func (c *valueCache) read(buf []byte, gen uint64, file, off uint32) bool {
	if c == nil {
		return false
	}
	k := cacheKey{gen, file, off}
	return c.shard(k).read(buf, k)
}

// put stores a copy of v, evicting the oldest entries to make room.
func (c *valueCache) put(gen uint64, file, off uint32, v []byte) {
	if c == nil {
		return
	}
	k := cacheKey{gen, file, off}
	c.shard(k).put(k, v)
}

func (s *cacheShard) get(dst []byte, k cacheKey) ([]byte, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, ok := s.m[k.slot()]
	if !ok {
		return dst, false
	}
	at := pos % uint64(len(s.ring))
	h, n := readCacheHeader(s.ring[at:])
	if h != k {
		return dst, false // another key sharing the slot
	}
	return append(dst, s.ring[at+cacheEntryHeader:at+cacheEntryHeader+uint64(n)]...), true
}

func (s *cacheShard) read(buf []byte, k cacheKey) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	pos, ok := s.m[k.slot()]
	if !ok {
		return false
	}
	at := pos % uint64(len(s.ring))
	h, n := readCacheHeader(s.ring[at:])
	if h != k || int(n) != len(buf) {
		return false
	}
	copy(buf, s.ring[at+cacheEntryHeader:])
	return true
}

func (s *cacheShard) put(k cacheKey, v []byte) {
	size := uint64(len(s.ring))
	need := uint64(cacheEntryHeader + len(v))
	if need > size/8 {
		return // a few large values would flush everything else
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	at := s.head % size
	if at+need > size {
		// The entry must be contiguous: pad to the ring's start.
		s.evict(s.head + (size - at) + need)
		if size-at >= cacheEntryHeader {
			writeCacheHeader(s.ring[at:], cacheKey{file: ^uint32(0), off: ^uint32(0)}, 0)
		}
		s.head += size - at
		at = 0
	} else {
		s.evict(s.head + need)
	}
	writeCacheHeader(s.ring[at:], k, uint32(len(v)))
	copy(s.ring[at+cacheEntryHeader:], v)
	s.m[k.slot()] = s.head
	s.head += need
}

// evict drops the oldest entries until the ring can hold everything up to
// the absolute position end.
func (s *cacheShard) evict(end uint64) {
	size := uint64(len(s.ring))
	for s.tail < s.head && end > s.tail+size {
		at := s.tail % size
		if size-at < cacheEntryHeader {
			s.tail += size - at // a pad too short for a header
			continue
		}
		h, n := readCacheHeader(s.ring[at:])
		if h.gen == 0 && h.file == ^uint32(0) && h.off == ^uint32(0) {
			s.tail += size - at
			continue
		}
		if slot := h.slot(); s.m[slot] == s.tail {
			delete(s.m, slot)
		}
		s.tail += cacheEntryHeader + uint64(n)
	}
	if s.tail > s.head {
		s.tail = s.head
	}
}

func writeCacheHeader(b []byte, k cacheKey, n uint32) {
	le.PutUint64(b[0:], k.gen)
	le.PutUint32(b[8:], k.file)
	le.PutUint32(b[12:], k.off)
	le.PutUint32(b[16:], n)
}

func readCacheHeader(b []byte) (cacheKey, uint32) {
	return cacheKey{gen: le.Uint64(b[0:]), file: le.Uint32(b[8:]), off: le.Uint32(b[12:])}, le.Uint32(b[16:])
}

// used is the ring bytes holding entries (for tests).
func (s *cacheShard) used() uint64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.head - s.tail
}
