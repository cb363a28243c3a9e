package mount

import (
	"bytes"
	"container/list"
	"context"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/sync/singleflight"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/internal/regfile"
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
	sf      singleflight.Group
	dirs    sync.Map     // subdirectories known to exist
	tmpSeq  atomic.Int64 // names of files being written
	trust   *trustLog    // verification records of earlier processes
	uid     int          // owner of every file the cache trusts
	pid     int          // in temporary file names
	usage   *usage       // the directory's total, shared with other processes

	// Retry tunes fetching from a store that fails (not for missing or
	// corrupt blocks): attempts and the first backoff (doubling).
	Attempts int
	Backoff  time.Duration

	stats CacheStats

	warm warmFiles // opened ahead of their read

	pins pinSet // entries kernel mounts use: never evicted (see pinsDir)
}

// CacheStats counts cache activity.
type CacheStats struct {
	Hits      int64 `json:"hits"`
	Misses    int64 `json:"misses"`
	Evictions int64 `json:"evictions"`
	Corrupt   int64 `json:"corrupt"`
	Size      int64 `json:"size"`
	// Rehashed counts cache files this process had to hash on first use
	// (no matching verification record); Trusted the ones it took on
	// their record instead.
	Rehashed int64 `json:"rehashed"`
	Trusted  int64 `json:"trusted"`
}

type entry struct {
	id       flist.ID
	size     int64
	verified bool
	whole    bool // a whole multi-block file (id = its content digest)
}

// NewCache opens (or creates) a cache directory bounded to maxBytes (0 = no
// bound). Chunks already in it are kept, oldest-modified evicted first. The
// bound is the directory's: every process using it counts its files in one
// shared total (see usageFile) and evicts while that total is over.
func NewCache(dir string, maxBytes int64, logger *slog.Logger) (_ *Cache, err error) {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, fmt.Errorf("mount: cache: %w", err)
	}
	if err := checkCacheDir(dir); err != nil {
		return nil, err
	}
	u, alone, err := openUsage(dir, usageBatch(maxBytes))
	if err != nil {
		return nil, err
	}
	defer func() {
		if err != nil {
			u.close()
		}
	}()
	c := &Cache{
		dir: dir, max: maxBytes, log: logger.With("component", "flist-cache"),
		lru: list.New(), entries: map[flist.ID]*list.Element{}, uid: os.Geteuid(), pid: os.Getpid(),
		Attempts: 4, Backoff: 100 * time.Millisecond, usage: u,
	}
	trust, err := openTrustLog(dir)
	if err != nil {
		// Safe without: every cached file is hashed on first use.
		c.log.Warn("cache verification records unavailable, cached files will be re-hashed", "err", err)
	}
	c.trust = trust
	all, err := scanCache(dir)
	if err != nil {
		return nil, fmt.Errorf("mount: cache scan: %w", err)
	}
	live := make(map[trustKey]stamp, len(all))
	for _, f := range all {
		live[trustKey{f.e.id, f.e.whole}] = f.stamp
	}
	if trust != nil {
		if err := trust.compact(live); err != nil {
			c.log.Warn("cannot compact cache verification records", "err", err)
		}
	}
	c.cleanPins()
	sort.Slice(all, func(i, j int) bool { return all[i].stamp.mtime > all[j].stamp.mtime })
	var size int64
	for _, f := range all {
		c.entries[f.e.id] = c.lru.PushBack(f.e)
		size += f.e.size
	}
	// Alone, the scan is the truth; otherwise the other users' total is.
	if alone {
		err = c.usage.set(size)
	} else {
		size, err = c.usage.total()
	}
	if err != nil {
		return nil, err
	}
	c.mu.Lock()
	c.evictLocked(size)
	c.mu.Unlock()
	if alone {
		// Only now: a scan by the next opener must not race our evictions.
		if err = c.usage.shareUse(); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// checkCacheDir refuses a cache directory that another user owns and
// makes ours private (0700): whoever can write in it could replace a
// verified file between the check and a passthrough open.
func checkCacheDir(dir string) error {
	st, err := os.Stat(dir)
	if err != nil {
		return fmt.Errorf("mount: cache: %w", err)
	}
	sys, ok := st.Sys().(*syscall.Stat_t)
	if !st.IsDir() || !ok || int(sys.Uid) != os.Geteuid() {
		return fmt.Errorf("mount: cache: %s is not a directory owned by uid %d", dir, os.Geteuid())
	}
	if st.Mode().Perm() != 0o700 {
		if err := os.Chmod(dir, 0o700); err != nil {
			return fmt.Errorf("mount: cache: %w", err)
		}
	}
	return nil
}

// cached reports whether block id is in the cache (not checked).
func (c *Cache) cached(id flist.ID) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.entries[id]
	return ok
}

// roomFor reports whether n more bytes fit in well under the bound, so that
// speculative fetches never evict what readers are using.
func (c *Cache) roomFor(n int64) bool {
	if c.max == 0 {
		return true
	}
	return c.usage.estimate()+n <= c.max/2
}

// Close counts this process's last changes in the directory's shared total
// (see usageFile). Call it when no mount uses the cache any more.
func (c *Cache) Close() error {
	c.warm.closeAll()
	return c.usage.close()
}

// Dir returns the cache directory.
func (c *Cache) Dir() string { return c.dir }

// Stats returns counters; Size is the whole directory's, all processes
// together.
func (c *Cache) Stats() CacheStats {
	total, err := c.usage.total()
	if err != nil {
		total = c.usage.estimate()
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	s := c.stats
	s.Size = total
	return s
}

func (c *Cache) path(id flist.ID) string {
	h := id.String()
	return filepath.Join(c.dir, h[:2], h)
}

// wholeDir holds whole-file entries (see OpenWhole).
const wholeDir = "whole"

func (c *Cache) entryPath(e *entry) string {
	if e.whole {
		return filepath.Join(c.dir, wholeDir, e.id.String())
	}
	return c.path(e.id)
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
			return c.fetch(ctx, b, g)
		})
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("mount: cache: block %s evicted while opening (cache too small?)", b.ID)
}

// chunk is the plaintext of one block, to read from.
type chunk interface {
	io.ReaderAt
	io.Closer
}

// memChunk is a block just fetched, still in memory.
type memChunk struct{ *bytes.Reader }

func (memChunk) Close() error { return nil }

// openChunk is Open for the daemon's own reads: a block this call (or a
// concurrent one) had to fetch or verify is read from the verified
// plaintext in memory rather than from the file again, which saves opening
// and reading that file twice on the cold path and after a restart.
func (c *Cache) openChunk(ctx context.Context, b flist.Block, g BlockGetter) (chunk, error) {
	if fd, ok := c.openVerifiedFD(b); ok {
		return fdChunk(fd), nil
	}
	if f, plain, ok := c.openCachedFile(b); ok {
		if plain != nil { // just verified: serve what was read
			f.Close()
			return memChunk{bytes.NewReader(plain)}, nil
		}
		return f, nil
	}
	v, err, _ := c.sf.Do(string(b.ID[:]), func() (any, error) {
		return c.fetch(ctx, b, g)
	})
	if err != nil {
		return nil, err
	}
	if plain, ok := v.([]byte); ok {
		return memChunk{bytes.NewReader(plain)}, nil
	}
	return c.Open(ctx, b, g)
}

// fdChunk is a cache file open as a bare descriptor.
type fdChunk int

func (fd fdChunk) ReadAt(p []byte, off int64) (int, error) {
	n := 0
	for n < len(p) {
		m, err := unix.Pread(int(fd), p[n:], off+int64(n))
		if err == unix.EINTR {
			continue
		}
		if err != nil {
			return n, err
		}
		if m == 0 {
			return n, io.EOF
		}
		n += m
	}
	return n, nil
}

func (fd fdChunk) Close() error { return unix.Close(int(fd)) }

// openVerifiedFD opens b's cache file as a bare descriptor if this process
// has verified it already: the READs of a warm mount, where making an
// *os.File was one system call of six. Anything else (unknown, not yet
// verified, gone) goes the way of openCachedFile.
func (c *Cache) openVerifiedFD(b flist.Block) (int, bool) {
	e, verified := c.touch(b.ID)
	if !verified {
		return -1, false
	}
	fd, _, err := c.openCacheFD(b.ID, e)
	if err != nil {
		return -1, false
	}
	c.mu.Lock()
	c.stats.Hits++
	c.mu.Unlock()
	return fd, true
}

// willNeed opens id's cache file and starts reading it into the page
// cache, for a read soon, which takes the open file (openCacheFD) and
// checks it as usual: the daemon opens it once, not twice.
func (c *Cache) willNeed(id flist.ID) {
	e, verified := c.touch(id)
	fd, err := regfile.OpenFD(c.path(id))
	if err != nil {
		return
	}
	unix.Fadvise(fd, 0, 0, unix.FADV_WILLNEED)
	if !verified {
		e = nil
	}
	c.warm.put(id, warmFile{fd: fd, verified: e})
}

// openCacheFD opens id's cache file, or takes it from willNeed. With
// verified (the entry this process verified), the file is only taken if it
// was opened after that entry's verification: a file opened before (a
// corrupt one since dropped and fetched again) is not that entry's.
// taken says whether the file came from willNeed.
func (c *Cache) openCacheFD(id flist.ID, verified *entry) (fd int, taken bool, err error) {
	if w, ok := c.warm.take(id); ok {
		if verified == nil || w.verified == verified {
			return w.fd, true, nil
		}
		unix.Close(w.fd)
	}
	fd, err = regfile.OpenFD(c.path(id))
	return fd, false, err
}

// warmFiles holds the last maxWarmFiles cache files willNeed opened, until
// their read takes them.
type warmFiles struct {
	mu    sync.Mutex
	files map[flist.ID]warmFile
	order []flist.ID // oldest first; may name files taken since
}

// warmFile is a cache file willNeed opened, and the entry this process had
// verified when it was opened, if any.
type warmFile struct {
	fd       int
	verified *entry
}

// maxWarmFiles bounds the files held open ahead of their read: an evicted
// file's space is only freed once it is closed.
const maxWarmFiles = 256

func (w *warmFiles) put(id flist.ID, f warmFile) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.files == nil {
		w.files = map[flist.ID]warmFile{}
	}
	if old, ok := w.files[id]; ok {
		unix.Close(old.fd)
	}
	for len(w.files) >= maxWarmFiles {
		oldest := w.order[0]
		w.order = w.order[1:]
		if old, ok := w.files[oldest]; ok {
			unix.Close(old.fd)
			delete(w.files, oldest)
		}
	}
	w.files[id] = f
	w.order = append(w.order, id)
	if len(w.order) > 4*maxWarmFiles { // mostly taken: keep the live ones
		w.order = slices.DeleteFunc(w.order, func(id flist.ID) bool { _, ok := w.files[id]; return !ok })
	}
}

func (w *warmFiles) take(id flist.ID) (warmFile, bool) {
	w.mu.Lock()
	defer w.mu.Unlock()
	f, ok := w.files[id]
	if ok {
		delete(w.files, id)
	}
	return f, ok
}

// closeAll closes the files no read took.
func (w *warmFiles) closeAll() {
	w.mu.Lock()
	defer w.mu.Unlock()
	for id, f := range w.files {
		unix.Close(f.fd)
		delete(w.files, id)
	}
	w.order = nil
}

// touch moves id's entry, if this process knows it, to the front of the
// LRU, and reports whether this process verified its file.
func (c *Cache) touch(id flist.ID) (e *entry, verified bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	el, ok := c.entries[id]
	if !ok {
		return nil, false
	}
	c.lru.MoveToFront(el)
	e = el.Value.(*entry)
	return e, e.verified
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
		return c.fetch(ctx, b, g)
	})
	return err
}

func (c *Cache) openCached(b flist.Block) (*os.File, bool) {
	f, _, ok := c.openCachedFile(b)
	return f, ok
}

// openCachedFile opens block b's cache file. If the file had to be checked
// (first use since the cache was opened), plain holds its verified
// content, so that the caller need not read it again. No lock is held
// across file system calls: on the cold path every read misses here.
func (c *Cache) openCachedFile(b flist.Block) (f *os.File, plain []byte, ok bool) {
	e, verified := c.touch(b.ID)
	known := e != nil
	var trusted *entry // checked below if nil: any file taken will do
	if verified {
		trusted = e
	}
	fd, taken, err := c.openCacheFD(b.ID, trusted)
	if err != nil {
		if known {
			c.drop(b.ID)
		}
		return nil, nil, false
	}
	f = os.NewFile(uintptr(fd), c.path(b.ID))
	if !known {
		// Another process sharing the cache directory may have fetched
		// it: adopt the file, checked below like any other.
		st, err := f.Stat()
		if err != nil || !st.Mode().IsRegular() {
			f.Close()
			return nil, nil, false
		}
		c.mu.Lock()
		e = c.adoptLocked(trustKey{id: b.ID}, st.Size())
		// A file willNeed opened before another reader verified the
		// entry may be one dropped since: check it.
		verified = e.verified && !taken
		c.mu.Unlock()
	}
	if !verified {
		var ok bool
		plain, ok = c.verifyFile(f, trustKey{id: b.ID}, -1, func(f *os.File, st *syscall.Stat_t) ([]byte, bool) {
			plain, err := readAll(f, st.Size)
			return plain, err == nil && flist.CheckKey(b.Key, plain)
		})
		if !ok {
			f.Close()
			c.log.Warn("cached block corrupt, fetching it again", "block", b.ID.String())
			c.drop(b.ID)
			return nil, nil, false
		}
		c.mu.Lock()
		e.verified = true
		c.mu.Unlock()
	}
	c.mu.Lock()
	c.stats.Hits++
	c.mu.Unlock()
	return f, plain, true
}

// adoptLocked returns k's entry, made most recent, adding it (of size
// bytes) if this process did not know it: another process sharing the
// directory put the file there since the scan. The caller holds c.mu.
func (c *Cache) adoptLocked(k trustKey, size int64) *entry {
	if el, ok := c.entries[k.id]; ok {
		c.lru.MoveToFront(el)
		return el.Value.(*entry)
	}
	e := &entry{id: k.id, size: size, whole: k.whole}
	c.entries[k.id] = c.lru.PushFront(e)
	return e
}

// allCachedLocked reports whether every block is in the cache (as this
// process knows it). The caller holds c.mu.
func (c *Cache) allCachedLocked(blocks []flist.Block) bool {
	for _, b := range blocks {
		if _, ok := c.entries[b.ID]; !ok {
			return false
		}
	}
	return true
}

// verifyFile decides whether the open cache file f, not yet verified by
// this process, may be served as k: it must be private (see privateStat) and
// either match a verification record of an earlier process or pass check
// (hashing its content), after which a record is written. size, if not
// negative, is the size it must have. plain is what check read, if it ran.
func (c *Cache) verifyFile(f *os.File, k trustKey, size int64, check func(*os.File, *syscall.Stat_t) ([]byte, bool)) (plain []byte, ok bool) {
	// The stamp is taken before the content is read: a change after this
	// point moves ctime, so the record written below will not match it.
	st, ok := fstat(f)
	if !ok || !privateStat(st, 0o222, c.uid) || (size >= 0 && st.Size != size) {
		c.countCorrupt()
		return nil, false
	}
	if c.trust.trusted(k, st) {
		c.mu.Lock()
		c.stats.Trusted++
		c.mu.Unlock()
		return nil, true
	}
	c.mu.Lock()
	c.stats.Rehashed++
	c.mu.Unlock()
	plain, ok = check(f, st)
	if !ok {
		c.countCorrupt()
		return nil, false
	}
	c.trust.record(k, st)
	return plain, true
}

func (c *Cache) countCorrupt() {
	c.mu.Lock()
	c.stats.Corrupt++
	c.mu.Unlock()
}

// private is privateStat of the open file f for this process's user (the
// verification records' key file).
func private(f *os.File, deny uint32) bool {
	st, ok := fstat(f)
	return ok && privateStat(st, deny, os.Geteuid())
}

// fstat stats the open file f (not through f.Fd, which would switch the
// descriptor to blocking mode: one more system call per cache file).
func fstat(f *os.File) (*syscall.Stat_t, bool) {
	info, err := f.Stat()
	if err != nil {
		return nil, false
	}
	st, ok := info.Sys().(*syscall.Stat_t)
	return st, ok
}

// privateStat reports whether st is a file this process may trust once
// its content checked out: a regular file owned by uid with none of the
// permission bits in deny (cache files are created 0400 in a 0700
// directory, so deny is 0o222 for them). A file someone made writable may
// change after the check, and a passed-through file is read by the kernel
// without the daemon seeing the bytes, so such a file is dropped and
// fetched again.
func privateStat(st *syscall.Stat_t, deny uint32, uid int) bool {
	return st.Mode&syscall.S_IFMT == syscall.S_IFREG && st.Mode&deny == 0 && int(st.Uid) == uid
}

// readAll reads the cache file f, of size bytes (as verifyFile's stat
// found it).
func readAll(f *os.File, size int64) ([]byte, error) {
	if size > flist.BlockSize {
		return nil, errors.New("cached chunk too large")
	}
	b := make([]byte, size)
	_, err := f.ReadAt(b, 0)
	if err != nil && size > 0 {
		return nil, err
	}
	return b, nil
}

func (c *Cache) drop(id flist.ID) {
	c.forget(trustKey{id: id})
}

// forget removes an entry, its file and its verification record.
func (c *Cache) forget(k trustKey) {
	size := int64(-1)
	c.mu.Lock()
	if el, ok := c.entries[k.id]; ok {
		size = el.Value.(*entry).size
		c.lru.Remove(el)
		delete(c.entries, k.id)
	}
	c.mu.Unlock()
	c.trust.forget(k)
	c.remove(c.entryPath(&entry{id: k.id, whole: k.whole}), size)
}

// remove deletes a cache file and takes size, what it was counted as (or,
// if negative, its size now), off the shared total, if this process is
// the one whose unlink succeeded (another may have evicted it).
func (c *Cache) remove(p string, size int64) (total int64, removed bool) {
	if size < 0 {
		st, err := os.Lstat(p)
		if err != nil {
			return 0, false
		}
		size = st.Size()
	}
	if os.Remove(p) != nil {
		return 0, false
	}
	total, err := c.usage.add(-size)
	return total, err == nil
}

// fetch gets b from the store (with retries for store failures), verifies
// and decrypts it, adds the plaintext to the cache and returns it.
func (c *Cache) fetch(ctx context.Context, b flist.Block, g BlockGetter) ([]byte, error) {
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
				return nil, ctx.Err()
			case <-t.C:
			}
			backoff *= 2
		}
	}
	if err != nil {
		return nil, fmt.Errorf("mount: fetch block %s: %w", b.ID, err)
	}
	plain, err := flist.DecodeBlock(b, data)
	if err != nil {
		return nil, err
	}
	p := c.path(b.ID)
	total, err := c.writeFile(p, trustKey{id: b.ID}, plain)
	if err != nil {
		return nil, fmt.Errorf("mount: cache: %w", err)
	}
	c.mu.Lock()
	if el, ok := c.entries[b.ID]; ok {
		c.lru.Remove(el)
	}
	c.entries[b.ID] = c.lru.PushFront(&entry{id: b.ID, size: int64(len(plain)), verified: true})
	c.evictLocked(total)
	c.mu.Unlock()
	return plain, nil
}

// writeFile writes a verified cache file: created read-only for its
// owner (nobody may write it once it is in place, see the package doc)
// under a temporary name, then put in place, so that a crash never leaves
// a partial file under a block's name, and records it as verified as k.
// It returns the shared total after.
func (c *Cache) writeFile(p string, k trustKey, data []byte) (total int64, err error) {
	_, total, err = c.create(p, "fetch", k, func(f *os.File) (int64, error) {
		n, err := f.Write(data)
		return int64(n), err
	})
	return total, err
}

// create writes a cache file at p as writeFile says, its content written
// by fill into a temporary file (named after kind), and returns its size
// and the shared total after.
func (c *Cache) create(p, kind string, k trustKey, fill func(*os.File) (int64, error)) (n, total int64, err error) {
	dir := filepath.Dir(p)
	if _, ok := c.dirs.Load(dir); !ok {
		if err := os.MkdirAll(dir, 0o700); err != nil {
			return 0, 0, err
		}
		c.dirs.Store(dir, true)
	}
	tmp := filepath.Join(dir, c.tempName(kind))
	f, err := regfile.CreateExclusive(tmp, 0o400)
	if err != nil {
		return 0, 0, err
	}
	n, err = fill(f)
	if err == nil {
		total, err = c.place(f, tmp, p, k, n)
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(tmp)
		return 0, 0, err
	}
	return n, total, nil
}

// place puts the verified, still open file f from tmp at p, counts it and
// records it as verified as k. A link, not a rename: when another process
// put the same content there first, the link fails and only one of the two
// is counted (and recorded, by that process). The stamp is taken on f once
// tmp is unlinked (link and unlink both move ctime), so it is the stamp of
// the file as it stays.
func (c *Cache) place(f *os.File, tmp, p string, k trustKey, size int64) (total int64, err error) {
	err = os.Link(tmp, p)
	os.Remove(tmp)
	if errors.Is(err, fs.ErrExist) {
		return c.usage.total()
	}
	if err != nil {
		return 0, err
	}
	if st, ok := fstat(f); ok {
		c.trust.record(k, st)
	}
	return c.usage.add(size)
}

// evictLocked removes least recently used files, as this process knows
// them, while the directory's total is over the bound, always keeping the
// most recent one and the files kernel mounts use (pinned).
func (c *Cache) evictLocked(total int64) {
	if c.max <= 0 || total <= c.max {
		return
	}
	err := c.withPinsLock(unix.LOCK_SH, func(lock *os.File) error {
		pinned := c.pinnedLocked(lock)
		for el := c.lru.Back(); el != nil && el != c.lru.Front() && total > c.max; {
			e := el.Value.(*entry)
			prev := el.Prev()
			if pinned[e.id] {
				el = prev
				continue
			}
			c.lru.Remove(el)
			el = prev
			delete(c.entries, e.id)
			c.stats.Evictions++
			c.trust.forget(trustKey{e.id, e.whole})
			if w, ok := c.warm.take(e.id); ok {
				unix.Close(w.fd)
			}
			if t, ok := c.remove(c.entryPath(e), e.size); ok {
				total = t
			} else if t, err := c.usage.total(); err == nil {
				total = t // evicted by another process meanwhile
			}
		}
		return nil
	})
	if err != nil {
		// Evicting without knowing the pins could break a kernel mount.
		c.log.Warn("cache over its bound, not evicting", "err", err)
	}
}

// OpenWhole returns an open file holding the whole plaintext of a
// multi-block file, so that the kernel can read it by FUSE passthrough at
// local disk speed. It succeeds only without fetching: if the cache holds
// the assembled file already, or holds every block (the file was read
// before), in which case it assembles the file from them and moves those
// blocks to the eviction end of the LRU. ok is false otherwise; the caller
// then reads block by block. Assembled files are checked against the
// content digest on first use, like blocks.
func (c *Cache) OpenWhole(blocks []flist.Block, size uint64) (f *os.File, ok bool) {
	if len(blocks) < 2 {
		return nil, false
	}
	digest := flist.ID(flist.DigestOfKeys(blocks))
	p := filepath.Join(c.dir, wholeDir, digest.String())
	c.mu.Lock()
	el, cached := c.entries[digest]
	if cached {
		c.lru.MoveToFront(el)
	} else if !c.allCachedLocked(blocks) {
		c.mu.Unlock()
		return nil, false
	}
	c.mu.Unlock()
	if cached {
		f, err := regfile.Open(p)
		if err != nil {
			c.dropWhole(digest)
			return nil, false
		}
		c.mu.Lock()
		e := el.Value.(*entry)
		verified := e.verified
		c.mu.Unlock()
		if !verified {
			_, ok := c.verifyFile(f, trustKey{digest, true}, int64(size), func(f *os.File, st *syscall.Stat_t) ([]byte, bool) {
				d, err := flist.ContentDigest(io.NewSectionReader(f, 0, st.Size))
				return nil, err == nil && flist.ID(d) == digest
			})
			if !ok {
				f.Close()
				c.log.Warn("cached file corrupt, dropping it", "digest", digest.String())
				c.dropWhole(digest)
				return nil, false
			}
			c.mu.Lock()
			e.verified = true
			c.mu.Unlock()
		}
		return f, true
	}
	_, err, _ := c.sf.Do("whole:"+string(digest[:]), func() (any, error) {
		c.mu.Lock()
		_, done := c.entries[digest]
		c.mu.Unlock()
		if done { // a concurrent call assembled it
			return nil, nil
		}
		return nil, c.assemble(blocks, digest, p, size)
	})
	if err != nil {
		c.log.Warn("cannot assemble cached file", "digest", digest.String(), "err", err)
		return nil, false
	}
	f, err = regfile.Open(p)
	if err != nil {
		return nil, false
	}
	return f, true
}

func (c *Cache) assemble(blocks []flist.Block, digest flist.ID, p string, size uint64) error {
	n, total, err := c.create(p, "assemble", trustKey{digest, true}, func(f *os.File) (int64, error) {
		var n int64
		for _, b := range blocks {
			src, ok := c.openCached(b)
			if !ok {
				return n, fmt.Errorf("block %s left the cache", b.ID)
			}
			m, err := io.Copy(f, src)
			src.Close()
			n += m
			if err != nil {
				return n, err
			}
		}
		if uint64(n) != size {
			return n, fmt.Errorf("assembled %d bytes, file has %d", n, size)
		}
		return n, nil
	})
	if err != nil {
		return err
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, dup := c.entries[digest]; !dup {
		c.entries[digest] = c.lru.PushFront(&entry{id: digest, size: n, verified: true, whole: true})
	}
	// The blocks are now a second copy: let them go first.
	for _, b := range blocks {
		if el, ok := c.entries[b.ID]; ok {
			c.lru.MoveToBack(el)
		}
	}
	c.evictLocked(total)
	return nil
}

func (c *Cache) dropWhole(digest flist.ID) {
	c.forget(trustKey{digest, true})
}

// scanned is a cache file found by scanCache.
type scanned struct {
	e     *entry
	stamp stamp
}

// scanWorkers read the cache's subdirectories in parallel: the scan stats
// every file, and with the kernel's caches cold each stat may wait for the
// disk, so more of them in flight than CPUs shortens it (43k files: 0.6 s
// one by one).
const scanWorkers = 8

// scanCache lists the cache files of dir (<dir>/<xx>/<id> and
// <dir>/whole/<digest>) with their stat, skipping pinsDir, and removes the
// temporary files interrupted writers left.
func scanCache(dir string) ([]scanned, error) {
	top, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	subdirs := make(chan string, len(top))
	for _, d := range top {
		if d.IsDir() && d.Name() != pinsDir {
			subdirs <- d.Name()
		}
	}
	close(subdirs)
	var (
		mu  sync.Mutex
		all []scanned
		wg  sync.WaitGroup
	)
	for range scanWorkers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			var mine []scanned
			for name := range subdirs {
				mine = scanDir(filepath.Join(dir, name), name == wholeDir, mine)
			}
			mu.Lock()
			all = append(all, mine...)
			mu.Unlock()
		}()
	}
	wg.Wait()
	return all, nil
}

// scanDir appends the cache files of one subdirectory to out.
func scanDir(path string, whole bool, out []scanned) []scanned {
	f, err := os.Open(path)
	if err != nil {
		return out
	}
	defer f.Close()
	names, _ := f.Readdirnames(-1)
	fd := int(f.Fd())
	for _, name := range names {
		id, perr := flist.ParseID(name)
		if perr != nil {
			if staleTemp(name) { // left by an interrupted fetch
				unix.Unlinkat(fd, name, 0)
			}
			continue
		}
		var st unix.Stat_t
		if unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW) != nil || st.Mode&unix.S_IFMT != unix.S_IFREG {
			continue
		}
		out = append(out, scanned{
			e:     &entry{id: id, size: st.Size, whole: whole},
			stamp: newStamp(st.Size, st.Ino, st.Mtim.Nano(), st.Ctim.Nano()),
		})
	}
	return out
}
