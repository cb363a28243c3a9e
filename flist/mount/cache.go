package mount

import (
	"container/list"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"sort"
	"sync"
	"time"

	"golang.org/x/sync/singleflight"

	"github.com/zosgrid/zos/flist"
)

// BlockGetter fetches the stored (encrypted) bytes of a block; a
// flist/store.Router satisfies it.
type BlockGetter interface {
	Get(ctx context.Context, id flist.ID) ([]byte, error)
}

// Cache is the node-wide block cache shared by every mounted flist:
// decrypted, decompressed chunks as files <dir>/<hex[0:2]>/<hex(id)>,
// bounded in total size with least-recently-used eviction. Concurrent
// requests for a missing block fetch it once. A cached chunk is checked
// against its key the first time it is used after the cache is opened, so
// a corrupted cache file is dropped and fetched again, never served.
type Cache struct {
	dir string
	max int64
	log *slog.Logger

	mu      sync.Mutex
	lru     *list.List // front = most recent; values *entry
	entries map[flist.ID]*list.Element
	size    int64
	sf      singleflight.Group

	// Retry tunes fetching from a store that fails (not for missing or
	// corrupt blocks): attempts and the first backoff (doubling).
	Attempts int
	Backoff  time.Duration

	stats CacheStats
}

// CacheStats counts cache activity.
type CacheStats struct {
	Hits, Misses, Evictions, Corrupt int64
	Size                             int64
}

type entry struct {
	id       flist.ID
	size     int64
	verified bool
}

// NewCache opens (or creates) a cache directory bounded to maxBytes (0 = no
// bound). Chunks already in it are kept, oldest-modified evicted first.
func NewCache(dir string, maxBytes int64, logger *slog.Logger) (*Cache, error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mount: cache: %w", err)
	}
	c := &Cache{
		dir: dir, max: maxBytes, log: logger.With("component", "flist-cache"),
		lru: list.New(), entries: map[flist.ID]*list.Element{},
		Attempts: 4, Backoff: 100 * time.Millisecond,
	}
	type found struct {
		e     *entry
		mtime time.Time
	}
	var all []found
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		id, perr := flist.ParseID(d.Name())
		if perr != nil {
			os.Remove(p) // temporary files of an interrupted fetch
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		all = append(all, found{&entry{id: id, size: info.Size()}, info.ModTime()})
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("mount: cache scan: %w", err)
	}
	sort.Slice(all, func(i, j int) bool { return all[i].mtime.After(all[j].mtime) })
	for _, f := range all {
		c.entries[f.e.id] = c.lru.PushBack(f.e)
		c.size += f.e.size
	}
	c.mu.Lock()
	c.evictLocked()
	c.mu.Unlock()
	return c, nil
}

// Dir returns the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Stats returns counters.
func (c *Cache) Stats() CacheStats {
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Size = c.size
	return s
}

func (c *Cache) path(id flist.ID) string {
	h := id.String()
	return filepath.Join(c.dir, h[:2], h)
}

// Open returns an open file holding the plaintext of block b, fetching it
// through g if it is not cached. The caller closes the file. Eviction may
// remove the path meanwhile; the open file stays readable.
func (c *Cache) Open(ctx context.Context, b flist.Block, g BlockGetter) (*os.File, error) {
	for attempt := 0; attempt < 3; attempt++ {
		if f, ok := c.openCached(b); ok {
			return f, nil
		}
		_, err, _ := c.sf.Do(string(b.ID[:]), func() (any, error) {
			return nil, c.fetch(ctx, b, g)
		})
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("mount: cache: block %s evicted while opening (cache too small?)", b.ID)
}

// Prefetch makes sure b is cached (read-ahead).
func (c *Cache) Prefetch(ctx context.Context, b flist.Block, g BlockGetter) error {
	c.mu.Lock()
	_, ok := c.entries[b.ID]
	c.mu.Unlock()
	if ok {
		return nil
	}
	_, err, _ := c.sf.Do(string(b.ID[:]), func() (any, error) {
		c.mu.Lock()
		_, ok := c.entries[b.ID]
		c.mu.Unlock()
		if ok {
			return nil, nil
		}
		return nil, c.fetch(ctx, b, g)
	})
	return err
}

func (c *Cache) openCached(b flist.Block) (*os.File, bool) {
	c.mu.Lock()
	el, ok := c.entries[b.ID]
	if !ok {
		// Another process sharing the cache directory may have fetched it.
		st, err := os.Stat(c.path(b.ID))
		if err != nil || !st.Mode().IsRegular() {
			c.mu.Unlock()
			return nil, false
		}
		el = c.lru.PushFront(&entry{id: b.ID, size: st.Size()})
		c.entries[b.ID] = el
		c.size += st.Size()
	}
	c.lru.MoveToFront(el)
	e := el.Value.(*entry)
	verified := e.verified
	c.mu.Unlock()
	f, err := os.Open(c.path(b.ID))
	if err != nil {
		c.drop(b.ID)
		return nil, false
	}
	if !verified {
		plain, err := readAll(f)
		if err != nil || !flist.CheckKey(b.Key, plain) {
			f.Close()
			c.mu.Lock()
			c.stats.Corrupt++
			c.mu.Unlock()
			c.log.Warn("cached block corrupt, fetching it again", "block", b.ID.String())
			c.drop(b.ID)
			return nil, false
		}
		c.mu.Lock()
		e.verified = true
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.stats.Hits++
	c.mu.Unlock()
	return f, true
}

func readAll(f *os.File) ([]byte, error) {
	st, err := f.Stat()
	if err != nil {
		return nil, err
	}
	if st.Size() > flist.BlockSize {
		return nil, errors.New("cached chunk too large")
	}
	b := make([]byte, st.Size())
	_, err = f.ReadAt(b, 0)
	if err != nil && st.Size() > 0 {
		return nil, err
	}
	return b, nil
}

func (c *Cache) drop(id flist.ID) {
	c.mu.Lock()
	if el, ok := c.entries[id]; ok {
		c.size -= el.Value.(*entry).size
		c.lru.Remove(el)
		delete(c.entries, id)
	}
	c.mu.Unlock()
	os.Remove(c.path(id))
}

// fetch gets b from the store (with retries for store failures), verifies
// and decrypts it, and adds the plaintext to the cache.
func (c *Cache) fetch(ctx context.Context, b flist.Block, g BlockGetter) error {
	c.mu.Lock()
	c.stats.Misses++
	c.mu.Unlock()
	var data []byte
	var err error
	backoff := c.Backoff
	for i := 0; i < max(1, c.Attempts); i++ {
		data, err = g.Get(ctx, b.ID)
		if err == nil || errors.Is(err, flist.ErrCorruptBlock) || errors.Is(err, flist.ErrNotFound) || ctx.Err() != nil {
			break
		}
		c.log.Warn("block fetch failed, retrying", "block", b.ID.String(), "attempt", i+1, "err", err)
		if i+1 < c.Attempts {
			t := time.NewTimer(backoff)
			select {
			case <-ctx.Done():
				t.Stop()
				return ctx.Err()
			case <-t.C:
			}
			backoff *= 2
		}
	}
	if err != nil {
		return fmt.Errorf("mount: fetch block %s: %w", b.ID, err)
	}
	plain, err := flist.DecodeBlock(b, data)
	if err != nil {
		return err
	}
	p := c.path(b.ID)
	if err := os.MkdirAll(filepath.Dir(p), 0o700); err != nil {
		return fmt.Errorf("mount: cache: %w", err)
	}
	tmp, err := os.CreateTemp(filepath.Dir(p), ".fetch-*")
	if err != nil {
		return fmt.Errorf("mount: cache: %w", err)
	}
	_, err = tmp.Write(plain)
	if cerr := tmp.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Chmod(tmp.Name(), 0o400)
	}
	if err == nil {
		err = os.Rename(tmp.Name(), p)
	}
	if err != nil {
		os.Remove(tmp.Name())
		return fmt.Errorf("mount: cache: %w", err)
	}
	c.mu.Lock()
	if el, ok := c.entries[b.ID]; ok {
		c.size -= el.Value.(*entry).size
		c.lru.Remove(el)
	}
	c.entries[b.ID] = c.lru.PushFront(&entry{id: b.ID, size: int64(len(plain)), verified: true})
	c.size += int64(len(plain))
	c.evictLocked()
	c.mu.Unlock()
	return nil
}

// evictLocked removes least recently used chunks until the cache fits,
// always keeping the most recent one.
func (c *Cache) evictLocked() {
	for c.max > 0 && c.size > c.max && c.lru.Len() > 1 {
		el := c.lru.Back()
		e := el.Value.(*entry)
		c.lru.Remove(el)
		delete(c.entries, e.id)
		c.size -= e.size
		c.stats.Evictions++
		os.Remove(c.path(e.id))
	}
}
