package hub

import (
	"container/list"
	"sync"
)

// blockCache keeps recently served blocks in memory, bounded by bytes.
// Blocks are immutable and named by their hash, so a cached copy is never
// stale.
type blockCache struct {
	mu    sync.Mutex
	max   int64
	size  int64
	order *list.List // front = most recent; values are *cacheEntry
	items map[[32]byte]*list.Element
}

type cacheEntry struct {
	id   [32]byte
	data []byte
}

func newBlockCache(max int64) *blockCache {
	return &blockCache{max: max, order: list.New(), items: map[[32]byte]*list.Element{}}
}

// enabled says whether the cache keeps anything.
func (c *blockCache) enabled() bool { return c.max > 0 }

func (c *blockCache) get(id [32]byte) ([]byte, bool) {
	if c.max <= 0 {
		return nil, false
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.items[id]
	if !ok {
		return nil, false
	}
	c.order.MoveToFront(e)
	return e.Value.(*cacheEntry).data, true
}

// remove forgets id (garbage collection deleted it).
func (c *blockCache) remove(id [32]byte) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.order.Remove(e)
		delete(c.items, id)
		c.size -= int64(len(e.Value.(*cacheEntry).data))
	}
}

func (c *blockCache) add(id [32]byte, data []byte) {
	if int64(len(data)) > c.max/8 {
		return // never let one block take a large share
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e, ok := c.items[id]; ok {
		c.order.MoveToFront(e)
		return
	}
	c.items[id] = c.order.PushFront(&cacheEntry{id: id, data: data})
	c.size += int64(len(data))
	for c.size > c.max {
		last := c.order.Back()
		ent := last.Value.(*cacheEntry)
		c.order.Remove(last)
		delete(c.items, ent.id)
		c.size -= int64(len(ent.data))
	}
}
