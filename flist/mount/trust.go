package mount

import (
	"bytes"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"syscall"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/internal/atomicfile"
)

// The trust log lets a new process trust cache files that an earlier one
// verified, without hashing them again (see "Trusting cache files" in the
// package doc). Each record binds a cache file (kind, id) to the identity
// and change stamps of the inode that held the verified content: size,
// inode number, mtime and ctime (nanoseconds). Writing a file's content
// changes its ctime, which no system call can set back, so a file changed
// since it was verified no longer matches its record and is hashed again.
// Records carry an HMAC-SHA256 under a random node-local key kept in the
// cache directory, so a record cannot be made (or carried over from
// another cache) without reading that key.
const (
	trustKeyName = "trust.key"
	trustLogName = "trust.log"
	trustKeyLen  = 32
	stampLen     = 1 + 32 + 4*8
	recordLen    = stampLen + sha256.Size
	// trustDomain separates these MACs from any other use of the key.
	trustDomain = "zos-flist-cache-trust-v1\x00"
)

// stamp identifies the inode holding a cache file's verified content.
type stamp struct {
	size, ino    uint64
	mtime, ctime int64 // nanoseconds
}

func stampOf(st *syscall.Stat_t) stamp {
	return newStamp(st.Size, st.Ino, st.Mtim.Nano(), st.Ctim.Nano())
}

// newStamp is stampOf for callers with another stat type (x/sys/unix).
func newStamp(size int64, ino uint64, mtime, ctime int64) stamp {
	return stamp{size: uint64(size), ino: ino, mtime: mtime, ctime: ctime}
}

// trustKey names a cache file: a chunk (block id) or a whole file
// (content digest).
type trustKey struct {
	id    flist.ID
	whole bool
}

// trustLog holds the verification records of a cache directory. A nil
// *trustLog trusts nothing (every process re-hashes, as without it).
type trustLog struct {
	key  []byte
	path string

	mu   sync.Mutex
	f    *os.File // opened O_APPEND; records are written whole
	recs map[trustKey]stamp
}

// openTrustLog loads the records of dir (creating its key on first use).
// Records with a wrong MAC or cut short by a crash are ignored.
func openTrustLog(dir string) (*trustLog, error) {
	key, err := loadTrustKey(dir)
	if err != nil {
		return nil, err
	}
	t := &trustLog{key: key, path: filepath.Join(dir, trustLogName), recs: map[trustKey]stamp{}}
	data, err := os.ReadFile(t.path)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for len(data) >= recordLen {
		rec := data[:recordLen]
		data = data[recordLen:]
		if k, s, ok := t.parse(rec); ok {
			t.recs[k] = s // later records win: a file fetched again
		}
	}
	t.f, err = os.OpenFile(t.path, os.O_WRONLY|os.O_CREATE|os.O_APPEND, 0o600)
	if err != nil {
		return nil, err
	}
	if len(data) != 0 { // a torn record: realign the next ones
		t.f.Write(make([]byte, recordLen-len(data)))
	}
	return t, nil
}

// loadTrustKey reads the node-local MAC key, creating it if needed. Two
// processes opening a new cache at once agree on one key (link, not
// rename, so the loser reads the winner's). The key is never logged.
func loadTrustKey(dir string) ([]byte, error) {
	p := filepath.Join(dir, trustKeyName)
	for range 2 {
		f, err := os.Open(p)
		if err == nil {
			defer f.Close()
			key := make([]byte, trustKeyLen+1)
			n, _ := f.ReadAt(key, 0)
			if !private(f, 0o077) || n != trustKeyLen {
				return nil, fmt.Errorf("%s: not a private %d-byte key", p, trustKeyLen)
			}
			return key[:n], nil
		}
		if !errors.Is(err, os.ErrNotExist) {
			return nil, err
		}
		key := make([]byte, trustKeyLen)
		rand.Read(key)
		tmp, err := os.CreateTemp(dir, ".key-*")
		if err != nil {
			return nil, err
		}
		_, err = tmp.Write(key)
		if cerr := tmp.Close(); err == nil {
			err = cerr
		}
		if err == nil {
			err = os.Chmod(tmp.Name(), 0o400)
		}
		if err == nil {
			if lerr := os.Link(tmp.Name(), p); lerr != nil && !errors.Is(lerr, os.ErrExist) {
				err = lerr
			}
		}
		os.Remove(tmp.Name())
		if err != nil {
			return nil, err
		}
	}
	return nil, fmt.Errorf("%s: cannot create", p)
}

func (t *trustLog) mac(b []byte) []byte {
	h := hmac.New(sha256.New, t.key)
	h.Write([]byte(trustDomain))
	h.Write(b)
	return h.Sum(nil)
}

func (t *trustLog) encode(k trustKey, s stamp) []byte {
	b := make([]byte, 0, recordLen)
	kind := byte(0)
	if k.whole {
		kind = 1
	}
	b = append(b, kind)
	b = append(b, k.id[:]...)
	b = binary.BigEndian.AppendUint64(b, s.size)
	b = binary.BigEndian.AppendUint64(b, s.ino)
	b = binary.BigEndian.AppendUint64(b, uint64(s.mtime))
	b = binary.BigEndian.AppendUint64(b, uint64(s.ctime))
	return append(b, t.mac(b)...)
}

func (t *trustLog) parse(rec []byte) (trustKey, stamp, bool) {
	if !hmac.Equal(t.mac(rec[:stampLen]), rec[stampLen:]) || rec[0] > 1 {
		return trustKey{}, stamp{}, false
	}
	var k trustKey
	k.whole = rec[0] == 1
	copy(k.id[:], rec[1:33])
	u := func(i int) uint64 { return binary.BigEndian.Uint64(rec[33+8*i:]) }
	return k, stamp{size: u(0), ino: u(1), mtime: int64(u(2)), ctime: int64(u(3))}, true
}

// trusted reports whether the open cache file f (already checked to be
// private) is the very inode, unchanged, that a verification recorded.
func (t *trustLog) trusted(k trustKey, st *syscall.Stat_t) bool {
	if t == nil {
		return false
	}
	t.mu.Lock()
	s, ok := t.recs[k]
	t.mu.Unlock()
	return ok && s == stampOf(st)
}

// record notes that the content of the inode described by st passed
// verification as k. st must be taken before the content was read (or
// once the written file is in place under its name): a change after that
// moves ctime.
func (t *trustLog) record(k trustKey, st *syscall.Stat_t) {
	if t == nil {
		return
	}
	s := stampOf(st)
	rec := t.encode(k, s)
	t.mu.Lock()
	defer t.mu.Unlock()
	t.recs[k] = s
	t.f.Write(rec) // best effort: a lost record costs one more hash
}

// forget drops k's record from memory (the file was dropped or evicted);
// the log keeps it until compact, but a new file never matches it.
func (t *trustLog) forget(k trustKey) {
	if t == nil {
		return
	}
	t.mu.Lock()
	delete(t.recs, k)
	t.mu.Unlock()
}

// compact keeps only the records that match a file found in the cache
// (live: as stat'ed by the scan), rewriting the log when most records are
// stale. A process appending to the old log meanwhile loses its records,
// which only costs hashing those files again.
func (t *trustLog) compact(live map[trustKey]stamp) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	keep := map[trustKey]stamp{}
	for k, s := range t.recs {
		if ls, ok := live[k]; ok && ls == s {
			keep[k] = s
		}
	}
	st, err := t.f.Stat()
	if err != nil {
		return err
	}
	t.recs = keep
	if st.Size() <= int64(2*len(keep)+1024)*recordLen {
		return nil
	}
	var buf bytes.Buffer
	for k, s := range keep {
		buf.Write(t.encode(k, s))
	}
	if err := atomicfile.Write(t.path, buf.Bytes(), 0o600); err != nil {
		return err
	}
	f, err := os.OpenFile(t.path, os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return err
	}
	t.f.Close()
	t.f = f
	return nil
}
