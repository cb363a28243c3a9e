package zdb

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strconv"
	"sync"
	"sync/atomic"
	"time"
)

// loc is where the live version of a user key is: 24 bytes per key in RAM.
type loc struct {
	file    uint32 // index file id of the entry
	idxOff  uint32
	dataID  uint32
	dataOff uint32
	length  uint32
	crc     uint32
	ts      uint32
}

// seqFile maps the first sequential id stored in an index file to that file.
type seqFile struct {
	first uint64
	file  uint32
}

type segment struct {
	id       uint32
	dataBase int64
	data     []byte
	idxBase  int64
	idx      []byte
}

type patch struct {
	id  uint32
	off int64
	b   []byte
}

// batch is the writes queued since the last commit.
type batch struct {
	segs    []*segment
	patches []patch
	seq     uint64
	jumps   []uint32 // files closed by a rotation in this batch
}

func (b *batch) empty() bool { return len(b.segs) == 0 && len(b.patches) == 0 }

// Namespace is one open namespace. All methods are safe for concurrent use.
type Namespace struct {
	db      *DB
	name    string
	idxDir  string
	dataDir string
	log     *slog.Logger

	mu         sync.RWMutex
	mode       Mode
	desc       descriptor
	side       sideFile
	keys       *keyIndex // user mode only
	seqmap     []seqFile // seq mode only
	nextID     uint64    // entries ever appended (seq ids)
	firstID    uint32    // lowest index file id present
	curID      uint32
	dataEnd    int64 // logical end of the current data file, pending included
	idxEnd     int64
	dataPrev   uint32
	idxPrev    uint32
	idxSizes   map[uint32]int64  // logical size of each index file
	lastIdx    map[uint32]uint32 // offset of the last entry of each index file
	entries    int64
	keyBytes   int64 // sum of live key lengths
	payload    int64
	pend       batch
	inflight   *batch
	spare      []*segment // recycled segment buffers
	cacheGen   uint64     // this namespace's key space in db.cache
	seq        uint64
	dirty      map[uint32]uint64 // index files changed since the last reset -> mark of the last change
	dirtyMark  uint64
	broken     error
	closed     bool
	closedFlag atomic.Bool
	repaired   bool // open cut or removed something (replication cut point)
	successor  atomic.Pointer[Namespace]
	lastTS     uint32 // last write timestamp, for replication lag
	writes     atomic.Uint64

	fileMu sync.Mutex
	files  map[fileKey]*os.File
	maps   map[uint32]*mapping // data files, see mapping

	compactMu sync.Mutex // one compaction at a time
	// compactHook, when set by tests, runs between the copy and the swap.
	compactHook func()

	commitMu  sync.Mutex
	committed atomic.Uint64
	lastSync  time.Time
}

type fileKey struct {
	index bool
	id    uint32
}

func indexPath(dir string, id uint32) string {
	return filepath.Join(dir, "i"+strconv.FormatUint(uint64(id), 10))
}
func dataPath(dir string, id uint32) string {
	return filepath.Join(dir, "d"+strconv.FormatUint(uint64(id), 10))
}

// Name returns the namespace's name.
func (ns *Namespace) Name() string { return ns.name }

// Mode returns the namespace's key mode.
func (ns *Namespace) Mode() Mode {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.mode
}

// file returns the cached read-write handle of a data or index file that
// exists. A data file that is gone (0-db lets operators offload full data
// files) is asked back from Options.MissingData, once.
func (ns *Namespace) file(index bool, id uint32) (*os.File, error) {
	f, err := ns.openFile(index, id, index)
	if index || !errors.Is(err, fs.ErrNotExist) || ns.db.opts.MissingData == nil {
		return f, err
	}
	p := dataPath(ns.dataDir, id)
	ns.log.Warn("zdb data file missing, running the missing-data hook", "file", p)
	if herr := ns.db.opts.MissingData(ns.name, p); herr != nil {
		return nil, fmt.Errorf("zdb: data file %s is missing and was not restored: %w", p, herr)
	}
	return ns.openFile(index, id, false)
}

// openFile returns the cached read-write handle of a data or index file,
// creating the file when create is set.
func (ns *Namespace) openFile(index bool, id uint32, create bool) (*os.File, error) {
	ns.fileMu.Lock()
	defer ns.fileMu.Unlock()
	return ns.fileLocked(index, id, create)
}

// fileLocked is file for a caller holding ns.fileMu.
func (ns *Namespace) fileLocked(index bool, id uint32, create bool) (*os.File, error) {
	k := fileKey{index, id}
	if f := ns.files[k]; f != nil {
		return f, nil
	}
	p := dataPath(ns.dataDir, id)
	if index {
		p = indexPath(ns.idxDir, id)
	}
	flags := os.O_RDWR
	if create {
		flags |= os.O_CREATE
	}
	f, err := os.OpenFile(p, flags, 0o600)
	if err != nil {
		return nil, fmt.Errorf("zdb: open %s: %w", p, err)
	}
	ns.files[k] = f
	return f, nil
}

// closeFiles unmaps and closes every file. Caller holds ns.mu for writing,
// or closed the namespace under it: readers may be copying from the maps.
func (ns *Namespace) closeFiles() error {
	ns.fileMu.Lock()
	defer ns.fileMu.Unlock()
	first := ns.unmapLocked()
	for k, f := range ns.files {
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
		delete(ns.files, k)
	}
	return first
}

// readAt fills dst from a data or index file at off, looking first at the
// writes not yet committed. Index reads see in-place patches not yet applied.
// Caller holds ns.mu (read or write).
func (ns *Namespace) readAt(index bool, id uint32, off int64, dst []byte) error {
	_, err := ns.readAtFrom(index, id, off, dst)
	return err
}

// readAtFrom is readAt; mapped reports that the bytes came from a data
// file's map (see mapping), which keeps them in RAM as long as the page
// cache does.
func (ns *Namespace) readAtFrom(index bool, id uint32, off int64, dst []byte) (mapped bool, err error) {
	found := false
	for _, b := range []*batch{ns.inflight, &ns.pend} {
		if b == nil {
			continue
		}
		for _, s := range b.segs {
			if s.id != id {
				continue
			}
			base, buf := s.dataBase, s.data
			if index {
				base, buf = s.idxBase, s.idx
			}
			if off >= base && off+int64(len(dst)) <= base+int64(len(buf)) {
				copy(dst, buf[off-base:])
				found = true
			}
		}
	}
	if !found && !index && ns.readMapped(id, off, dst) {
		ns.db.io.dataRead.Add(uint64(len(dst)))
		return true, nil
	}
	if !found {
		f, err := ns.file(index, id)
		if err != nil {
			return false, err
		}
		n, err := f.ReadAt(dst, off)
		if index {
			ns.db.io.indexRead.Add(uint64(n))
		} else {
			ns.db.io.dataRead.Add(uint64(n))
		}
		if n < len(dst) {
			ns.db.io.readFailed.Add(1)
			if err == nil {
				err = errors.New("short read")
			}
			return false, fmt.Errorf("%w: read %d bytes at %d of file %d: %v", ErrCorrupt, len(dst), off, id, err)
		}
	}
	if index {
		for _, b := range []*batch{ns.inflight, &ns.pend} {
			if b == nil {
				continue
			}
			for _, p := range b.patches {
				if p.id != id || p.off >= off+int64(len(dst)) || p.off+int64(len(p.b)) <= off {
					continue
				}
				// Overlap: copy the overlapping part.
				for i := range p.b {
					at := p.off + int64(i)
					if at >= off && at < off+int64(len(dst)) {
						dst[at-off] = p.b[i]
					}
				}
			}
		}
	}
	return false, nil
}

// segment returns the pending segment of the current file, creating it.
func (ns *Namespace) curSegment() *segment {
	if n := len(ns.pend.segs); n > 0 && ns.pend.segs[n-1].id == ns.curID {
		return ns.pend.segs[n-1]
	}
	var s *segment
	if n := len(ns.spare); n > 0 {
		s = ns.spare[n-1]
		ns.spare = ns.spare[:n-1]
		*s = segment{id: ns.curID, dataBase: ns.dataEnd, idxBase: ns.idxEnd, data: s.data[:0], idx: s.idx[:0]}
	} else {
		s = &segment{id: ns.curID, dataBase: ns.dataEnd, idxBase: ns.idxEnd}
	}
	ns.pend.segs = append(ns.pend.segs, s)
	return s
}

// jump starts the next data and index file pair. Caller holds ns.mu.
func (ns *Namespace) jump() {
	ns.pend.jumps = append(ns.pend.jumps, ns.curID)
	ns.idxSizes[ns.curID] = ns.idxEnd
	ns.curID++
	ns.dataEnd, ns.idxEnd = 0, 0
	s := ns.curSegment()
	s.data = appendDataHeader(s.data, ns.curID)
	s.idx = appendIndexHeader(s.idx, ns.curID, ns.mode)
	ns.dataEnd, ns.idxEnd = dataHeaderSize, indexHeaderSize
	ns.idxSizes[ns.curID] = ns.idxEnd
	if ns.mode == ModeSeq {
		ns.seqmap = append(ns.seqmap, seqFile{first: ns.nextID, file: ns.curID})
	}
	ns.log.Info("zdb jumped to next file", "file", ns.curID)
}

// Jump forces rotation to a new data and index file pair (NSJUMP).
func (ns *Namespace) Jump() (uint64, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if err := ns.writable(); err != nil {
		return 0, err
	}
	ns.jump()
	ns.seq++
	ns.pend.seq = ns.seq
	return ns.seq, nil
}

// writable reports why the namespace refuses writes, if it does.
func (ns *Namespace) writable() error { return ns.writableFor(true) }

// writableFor is writable; with enforce false (replication) only a closed
// or broken namespace refuses.
func (ns *Namespace) writableFor(enforce bool) error {
	switch {
	case ns.closed:
		return ErrClosed
	case ns.broken != nil:
		return fmt.Errorf("%w: %v", ErrIO, ns.broken)
	case !enforce:
		return nil
	case ns.side.Freeze:
		return ErrFrozen
	case ns.side.Lock:
		return ErrReadOnly
	}
	return nil
}

func (ns *Namespace) readable() error {
	switch {
	case ns.closed:
		return ErrClosed
	case ns.side.Freeze:
		return ErrFrozen
	}
	return nil
}

// appendRecord queues a data record and its index entry (when e != nil),
// rotating first if the record would push the data file past DataSize.
// It returns the entry's index offset.
func (ns *Namespace) appendRecord(key, value []byte, flags uint8, crc, ts uint32, e *entry) (dataOff, idxOff uint32) {
	need := int64(dataRecordSize + len(key) + len(value))
	// Rotate before the data file passes DataSize, or before index offsets
	// (u32) would overflow with tiny values.
	if (ns.dataEnd+need > ns.db.opts.DataSize && ns.dataEnd > dataHeaderSize) ||
		ns.idxEnd+int64(2*(indexEntrySize+MaxKeySize)) > int64(^uint32(0)) {
		ns.jump()
	}
	s := ns.curSegment()
	dataOff = uint32(ns.dataEnd)
	r := record{Previous: ns.dataPrev, CRC: crc, Flags: flags, Timestamp: ts}
	s.data = appendRecord(s.data, &r, key, value)
	ns.dataEnd += need
	ns.dataPrev = dataOff
	if e != nil {
		idxOff = uint32(ns.idxEnd)
		e.Offset = dataOff
		e.DataID = ns.curID
		e.Previous = ns.idxPrev
		s.idx = appendEntry(s.idx, e)
		ns.idxEnd += int64(indexEntrySize + len(e.Key))
		ns.idxPrev = idxOff
		ns.lastIdx[ns.curID] = idxOff
		ns.idxSizes[ns.curID] = ns.idxEnd
		ns.nextID++
	}
	return dataOff, idxOff
}

// addPatch queues an in-place rewrite of index bytes. If the target is still
// in the pending batch it is changed there directly.
func (ns *Namespace) addPatch(id uint32, off int64, b []byte) {
	ns.markDirty(id)
	for _, s := range ns.pend.segs {
		if s.id == id && off >= s.idxBase && off+int64(len(b)) <= s.idxBase+int64(len(s.idx)) {
			copy(s.idx[off-s.idxBase:], b)
			return
		}
	}
	ns.pend.patches = append(ns.pend.patches, patch{id: id, off: off, b: append([]byte(nil), b...)})
}

var deletedFlag = []byte{flagDeleted}

func (ns *Namespace) now() uint32 { return uint32(ns.db.opts.Now().Unix()) }

// SetResult is what Set did.
type SetResult struct {
	Key       []byte // the key written (the new id in seq mode)
	Unchanged bool   // the value was identical: nothing written
	Seq       uint64 // pass to Commit before acknowledging
}

// Set writes value under key. In seq mode an empty key allocates the next id
// and a non-empty key must be an existing id. ts == 0 means now.
func (ns *Namespace) Set(key, value []byte, ts uint32) (SetResult, error) {
	return ns.set(key, value, ts, true, false)
}

// ReplicaSet is Set for a replica copying its primary's log: the primary
// already applied lock, freeze, worm and maxsize, which the replica's
// namespace copies to refuse its own clients, not the primary's records.
func (ns *Namespace) ReplicaSet(key, value []byte, ts uint32) (SetResult, error) {
	return ns.set(key, value, ts, false, false)
}

// ReplicaSetTruncated replays a record of a seq primary whose value a
// compaction dropped (LogRecord.Truncated): an empty value under key, even
// if the id's value already is empty, so that the id's slot, or an
// update's history slot, is taken as on the primary. A later record of the
// log deletes the id.
func (ns *Namespace) ReplicaSetTruncated(key []byte, ts uint32) (SetResult, error) {
	return ns.set(key, nil, ts, false, true)
}

// set writes; force writes even a value identical to the current one.
func (ns *Namespace) set(key, value []byte, ts uint32, enforce, force bool) (SetResult, error) {
	if len(value) > MaxValueSize {
		return SetResult{}, ErrValueTooLarge
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if err := ns.writableFor(enforce); err != nil {
		return SetResult{}, err
	}
	if ts == 0 {
		ts = ns.now()
	}
	crc := CRC(value)
	if ns.mode == ModeSeq {
		return ns.setSeq(key, value, crc, ts, enforce, force)
	}
	if len(key) == 0 {
		return SetResult{}, ErrInvalidKey
	}
	if len(key) > MaxKeySize {
		return SetResult{}, ErrKeyTooLarge
	}
	old, exists := ns.keys.get(key)
	if err := ns.checkWrite(enforce, exists, old.length, len(value)); err != nil {
		return SetResult{}, err
	}
	if exists && old.crc == crc && int(old.length) == len(value) {
		same, err := ns.sameValue(old.dataID, old.dataOff, len(key), value)
		if err != nil {
			return SetResult{}, err
		}
		if same {
			return SetResult{Unchanged: true}, nil
		}
	}
	e := entry{Length: uint32(len(value)), Timestamp: ts, CRC: crc, Key: key}
	if exists {
		e.ParentID, e.ParentOff = old.file, old.idxOff
	}
	dataOff, idxOff := ns.appendRecord(key, value, 0, crc, ts, &e)
	if exists {
		ns.addPatch(old.file, int64(old.idxOff)+13, deletedFlag)
		ns.payload -= int64(old.length)
	} else {
		ns.entries++
		ns.keyBytes += int64(len(key))
	}
	ns.payload += int64(len(value))
	ns.keys.put(key, loc{file: ns.curID, idxOff: idxOff, dataID: ns.curID, dataOff: dataOff,
		length: uint32(len(value)), crc: crc, ts: ts})
	if !ns.readsMapped() {
		// Mapped, the value is read from the page cache the write
		// leaves it in: a copy here cost a third of a SET's time.
		ns.db.cache.put(ns.cacheGen, ns.curID, dataOff, value)
	}
	return ns.queued(key, ts), nil
}

func (ns *Namespace) queued(key []byte, ts uint32) SetResult {
	ns.seq++
	ns.pend.seq = ns.seq
	ns.lastTS = ts
	ns.writes.Add(1)
	return SetResult{Key: key, Seq: ns.seq}
}

// checkWrite applies worm and maxsize to a write of newLen bytes (unless
// the write being made is a replica's copy, see ReplicaSet).
func (ns *Namespace) checkWrite(enforce, exists bool, oldLen uint32, newLen int) error {
	if !enforce {
		return nil
	}
	if exists && ns.desc.Worm {
		return ErrWorm
	}
	if ns.desc.MaxSize > 0 {
		used := ns.payload + int64(newLen)
		if exists {
			used -= int64(oldLen)
		}
		if used > int64(ns.desc.MaxSize) {
			return ErrNamespaceFull
		}
	}
	return nil
}

func (ns *Namespace) sameValue(dataID, dataOff uint32, keyLen int, value []byte) (bool, error) {
	// The caller compared lengths: value is at most MaxValueSize.
	cur := make([]byte, len(value))
	if err := ns.readAt(false, dataID, int64(dataOff)+dataRecordSize+int64(keyLen), cur); err != nil {
		return false, err
	}
	return bytes.Equal(cur, value), nil
}

// seqLocate returns the index file and offset of a sequential id.
func (ns *Namespace) seqLocate(id uint64) (uint32, int64, bool) {
	if id >= ns.nextID || len(ns.seqmap) == 0 {
		return 0, 0, false
	}
	i := sort.Search(len(ns.seqmap), func(i int) bool { return ns.seqmap[i].first > id }) - 1
	if i < 0 {
		return 0, 0, false
	}
	sf := ns.seqmap[i]
	return sf.file, indexHeaderSize + int64(id-sf.first)*seqEntrySize, true
}

// seqEntry reads the live entry at a sequential id's position.
func (ns *Namespace) seqEntry(key []byte) (entry, uint32, int64, error) {
	e, file, off, err := ns.seqEntryRaw(key)
	if err == nil && e.deleted() {
		err = ErrNotFound
	}
	return e, file, off, err
}

// seqEntryRaw reads the entry at a sequential id's position, deleted or not.
func (ns *Namespace) seqEntryRaw(key []byte) (entry, uint32, int64, error) {
	if len(key) != SeqKeySize {
		return entry{}, 0, 0, ErrInvalidKey
	}
	id := le.Uint64(key)
	file, off, ok := ns.seqLocate(id)
	if !ok {
		return entry{}, 0, 0, ErrNotFound
	}
	buf := make([]byte, seqEntrySize)
	if err := ns.readAt(true, file, off, buf); err != nil {
		return entry{}, 0, 0, err
	}
	e, _, err := decodeEntry(buf)
	if err != nil {
		return entry{}, 0, 0, fmt.Errorf("%w: %v", ErrCorrupt, err)
	}
	if !bytes.Equal(e.Key, key) {
		return entry{}, 0, 0, ErrNotFound
	}
	return e, file, off, nil
}

func (ns *Namespace) setSeq(key, value []byte, crc, ts uint32, enforce, force bool) (SetResult, error) {
	if len(key) == 0 {
		if err := ns.checkWrite(enforce, false, 0, len(value)); err != nil {
			return SetResult{}, err
		}
		id := make([]byte, SeqKeySize)
		le.PutUint64(id, ns.nextID)
		e := entry{Length: uint32(len(value)), Timestamp: ts, CRC: crc, Key: id}
		ns.appendRecord(id, value, 0, crc, ts, &e)
		ns.entries++
		ns.keyBytes += SeqKeySize
		ns.payload += int64(len(value))
		return ns.queued(id, ts), nil
	}
	old, file, off, err := ns.seqEntry(key)
	if errors.Is(err, ErrNotFound) || errors.Is(err, ErrInvalidKey) {
		return SetResult{}, ErrUpdateOnly
	}
	if err != nil {
		return SetResult{}, err
	}
	if err := ns.checkWrite(enforce, true, old.Length, len(value)); err != nil {
		return SetResult{}, err
	}
	if !force && old.CRC == crc && int(old.Length) == len(value) {
		same, err := ns.sameValue(old.DataID, old.Offset, SeqKeySize, value)
		if err != nil {
			return SetResult{}, err
		}
		if same {
			return SetResult{Unchanged: true}, nil
		}
	}
	key = append([]byte(nil), key...)
	// A deleted copy of the old entry keeps the history; it takes an id slot.
	cp := old
	cp.Key = key
	cp.Flags |= flagDeleted
	cpFile := ns.curID
	dataOff, cpOff := ns.appendCopy(&cp)
	_ = dataOff
	ne := entry{Offset: 0, Length: uint32(len(value)), Timestamp: ts, CRC: crc, Key: key,
		ParentID: cpFile, ParentOff: cpOff}
	// Data first (may rotate); the fixed-position entry is rewritten in place.
	dOff, _ := ns.appendRecord(key, value, 0, crc, ts, nil)
	ne.Offset, ne.DataID, ne.Previous = dOff, ns.curID, old.Previous
	ns.addPatch(file, off, appendEntry(nil, &ne))
	ns.payload += int64(len(value)) - int64(old.Length)
	return ns.queued(key, ts), nil
}

// appendCopy appends an index entry only (no data record), for seq history.
func (ns *Namespace) appendCopy(e *entry) (uint32, uint32) {
	if ns.idxEnd+int64(seqEntrySize) > int64(^uint32(0)) {
		ns.jump()
	}
	s := ns.curSegment()
	idxOff := uint32(ns.idxEnd)
	e.Previous = ns.idxPrev
	s.idx = appendEntry(s.idx, e)
	ns.idxEnd += int64(indexEntrySize + len(e.Key))
	ns.idxPrev = idxOff
	ns.lastIdx[ns.curID] = idxOff
	ns.idxSizes[ns.curID] = ns.idxEnd
	ns.nextID++
	return e.Offset, idxOff
}

// Meta describes a key's live version.
type Meta struct {
	Length    uint32
	Timestamp uint32
	CRC       uint32
}

// lookup finds a key's live version. Caller holds ns.mu.
func (ns *Namespace) lookup(key []byte) (loc, error) {
	if ns.mode == ModeSeq {
		e, file, off, err := ns.seqEntry(key)
		if err != nil {
			return loc{}, err
		}
		return loc{file: file, idxOff: uint32(off), dataID: e.DataID, dataOff: e.Offset,
			length: e.Length, crc: e.CRC, ts: e.Timestamp}, nil
	}
	if len(key) > MaxKeySize {
		return loc{}, ErrKeyTooLarge
	}
	l, ok := ns.keys.get(key)
	if !ok {
		return loc{}, ErrNotFound
	}
	return l, nil
}

// Stat returns a key's length, timestamp and CRC.
func (ns *Namespace) Stat(key []byte) (Meta, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.readable(); err != nil {
		return Meta{}, err
	}
	l, err := ns.lookup(key)
	if err != nil {
		return Meta{}, err
	}
	return Meta{Length: l.length, Timestamp: l.ts, CRC: l.crc}, nil
}

// Get appends the value of key to dst. The value is checked against its
// CRC32C; a mismatch returns ErrCorrupt, never the bytes.
func (ns *Namespace) Get(dst, key []byte) ([]byte, Meta, error) {
	return ns.get(dst, key, true)
}

// GetInto copies the value of key into the slice grow returns for its
// length, straight from the value cache or the data file: a server passes
// its reply buffer and the value is copied once. The value is checked
// against its CRC32C; a mismatch returns ErrCorrupt, and whatever grow
// returned then holds no valid value.
func (ns *Namespace) GetInto(key []byte, grow func(n int) []byte) (Meta, error) {
	return ns.getInto(key, true, grow)
}

func (ns *Namespace) get(dst, key []byte, useCache bool) ([]byte, Meta, error) {
	n := len(dst)
	meta, err := ns.getInto(key, useCache, func(size int) []byte {
		dst = slices.Grow(dst, size)[:n+size]
		return dst[n:]
	})
	if err != nil {
		return dst[:n], Meta{}, err
	}
	return dst, meta, nil
}

func (ns *Namespace) getInto(key []byte, useCache bool, grow func(n int) []byte) (Meta, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.readable(); err != nil {
		return Meta{}, err
	}
	l, err := ns.lookup(key)
	if err != nil {
		return Meta{}, err
	}
	if l.length > MaxValueSize {
		return Meta{}, fmt.Errorf("%w: entry claims a %d-byte value", ErrCorrupt, l.length)
	}
	meta := Meta{Length: l.length, Timestamp: l.ts, CRC: l.crc}
	buf := grow(int(l.length))
	if useCache && ns.db.cache.read(buf, ns.cacheGen, l.dataID, l.dataOff) {
		return meta, nil
	}
	mapped, err := ns.readAtFrom(false, l.dataID, valueOffset(l.dataOff, len(key)), buf)
	if err != nil {
		return Meta{}, err
	}
	if CRC(buf) != l.crc {
		ns.log.Error("zdb value failed its CRC check", "file", l.dataID, "offset", l.dataOff)
		return Meta{}, fmt.Errorf("%w: value at data file %d offset %d fails CRC", ErrCorrupt, l.dataID, l.dataOff)
	}
	if useCache && !mapped {
		// A mapped value stays in the page cache: a copy here would only
		// cost a memmove per GET and evict the values just written.
		ns.db.cache.put(ns.cacheGen, l.dataID, l.dataOff, buf)
	}
	return meta, nil
}

// Check re-reads a key's value and verifies its CRC32C.
func (ns *Namespace) Check(key []byte) (bool, error) {
	_, _, err := ns.get(nil, key, false)
	if errors.Is(err, ErrCorrupt) {
		return false, nil
	}
	return err == nil, err
}

// Delete removes key: a tombstone record is appended and the live index
// entry is flagged deleted. ts == 0 means now.
func (ns *Namespace) Delete(key []byte, ts uint32) (uint64, error) {
	return ns.delete(key, ts, true)
}

// ReplicaDelete is Delete for a replica copying its primary's log (see
// ReplicaSet).
func (ns *Namespace) ReplicaDelete(key []byte, ts uint32) (uint64, error) {
	return ns.delete(key, ts, false)
}

func (ns *Namespace) delete(key []byte, ts uint32, enforce bool) (uint64, error) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if err := ns.writableFor(enforce); err != nil {
		return 0, err
	}
	l, err := ns.lookup(key)
	if err != nil {
		return 0, err
	}
	if enforce && ns.desc.Worm {
		return 0, ErrWorm
	}
	if ts == 0 {
		ts = ns.now()
	}
	key = append([]byte(nil), key...)
	ns.appendRecord(key, nil, flagDeleted, 0, ts, nil)
	ns.addPatch(l.file, int64(l.idxOff)+13, deletedFlag)
	if ns.mode == ModeUser {
		ns.keys.del(key)
	}
	ns.entries--
	ns.keyBytes -= int64(len(key))
	ns.payload -= int64(l.length)
	return ns.queued(key, ts).Seq, nil
}

// Commit makes every write queued up to seq durable as configured: written
// to the files (page cache) and, under Sync (or when SyncTime has passed),
// fsynced. Writes from many clients that queued together share one write.
func (ns *Namespace) Commit(seq uint64) error {
	if ns.committed.Load() >= seq {
		return nil
	}
	ns.commitMu.Lock()
	defer ns.commitMu.Unlock()
	if ns.committed.Load() >= seq {
		return nil
	}
	ns.mu.Lock()
	if ns.broken != nil {
		err := ns.broken
		ns.mu.Unlock()
		return fmt.Errorf("%w: %v", ErrIO, err)
	}
	b := ns.pend
	ns.pend = batch{}
	ns.inflight = &b
	ns.mu.Unlock()

	err := ns.writeBatch(&b)

	ns.mu.Lock()
	ns.inflight = nil
	ns.settleBatch(&b, err)
	ns.mu.Unlock()
	if err != nil {
		return fmt.Errorf("%w: %v", ErrIO, err)
	}
	ns.announceJumps(b.jumps)
	return nil
}

// settleBatch records the outcome of writing b: its buffers go back to
// the spares, and a failure makes the namespace read-only. Caller holds
// ns.mu.
func (ns *Namespace) settleBatch(b *batch, err error) {
	for _, s := range b.segs {
		// Keep buffers of a usual size for the next batches.
		if cap(s.data) <= 4<<20 && cap(s.idx) <= 1<<20 && len(ns.spare) < 4 {
			ns.spare = append(ns.spare, s)
		}
	}
	if err != nil {
		ns.broken = err
		ns.log.Error("zdb write failed, namespace is now read-only", "err", err)
		return
	}
	ns.committed.Store(b.seq)
}

// announceJumps calls OnJump for the files a batch rotated away from.
// ns.mu must be free: the dirty list is read under it.
func (ns *Namespace) announceJumps(jumps []uint32) {
	fn := ns.db.opts.OnJump
	if fn == nil {
		return
	}
	for _, old := range jumps {
		dirty, reset := ns.dirtySnapshot()
		fn(Jump{Namespace: ns.name,
			OldIndex: indexPath(ns.idxDir, old), NewIndex: indexPath(ns.idxDir, old+1),
			OldData: dataPath(ns.dataDir, old), NewData: dataPath(ns.dataDir, old+1),
			Dirty: dirty, ResetDirty: reset})
	}
}

func (ns *Namespace) writeBatch(b *batch) error {
	touched := map[fileKey]*os.File{}
	for _, s := range b.segs {
		for _, part := range []struct {
			index bool
			base  int64
			buf   []byte
		}{{false, s.dataBase, s.data}, {true, s.idxBase, s.idx}} {
			if len(part.buf) == 0 {
				continue
			}
			f, err := ns.openFile(part.index, s.id, true)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(part.buf, part.base); err != nil {
				ns.db.io.writeFailed.Add(1)
				return fmt.Errorf("zdb: append to %s: %w", f.Name(), err)
			}
			if part.index {
				ns.db.io.indexWritten.Add(uint64(len(part.buf)))
			} else {
				ns.db.io.dataWritten.Add(uint64(len(part.buf)))
				ns.grewData(s.id, part.base+int64(len(part.buf)))
			}
			touched[fileKey{part.index, s.id}] = f
		}
	}
	sync := ns.db.opts.Sync
	if !sync && ns.db.opts.SyncTime > 0 && time.Since(ns.lastSync) >= ns.db.opts.SyncTime {
		sync = true
	}
	if len(b.patches) > 0 {
		if sync {
			// Appends must be on disk before an old entry is flagged.
			if err := syncAll(touched); err != nil {
				return err
			}
			clear(touched)
		}
		for _, p := range b.patches {
			f, err := ns.file(true, p.id)
			if err != nil {
				return err
			}
			if _, err := f.WriteAt(p.b, p.off); err != nil {
				return fmt.Errorf("zdb: update entry in %s: %w", f.Name(), err)
			}
			touched[fileKey{true, p.id}] = f
		}
	}
	if sync {
		if err := syncAll(touched); err != nil {
			return err
		}
		ns.lastSync = time.Now()
	}
	return nil
}

func syncAll(files map[fileKey]*os.File) error {
	for _, f := range files {
		if err := f.Sync(); err != nil {
			return fmt.Errorf("zdb: fsync %s: %w", f.Name(), err)
		}
	}
	return nil
}

// CommitAll commits everything queued so far.
func (ns *Namespace) CommitAll() error {
	ns.mu.RLock()
	s := ns.seq
	ns.mu.RUnlock()
	return ns.Commit(s)
}

// Stats is a namespace's counters.
type Stats struct {
	Entries     int64  // live keys
	Payload     int64  // live payload bytes
	LiveBytes   int64  // data bytes the live versions need (records with keys)
	Files       int    // data files
	DataSize    int64  // bytes in data files
	IndexSize   int64  // bytes in index files
	CurrentFile uint32 // active data/index file id
	DataOffset  int64  // end of the active data file
	NextID      uint64 // next sequential id
	IndexRAM    int64  // estimated bytes of the in-memory key index
	LastWrite   uint32 // timestamp of the last write
	Writes      uint64 // writes since open
}

// Stats returns the namespace's counters.
func (ns *Namespace) Stats() Stats {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	st := Stats{Entries: ns.entries, Payload: ns.payload, Files: int(ns.curID-ns.firstID) + 1,
		LiveBytes: ns.payload + ns.keyBytes + ns.entries*dataRecordSize, CurrentFile: ns.curID, DataOffset: ns.dataEnd,
		NextID: ns.nextID, LastWrite: ns.lastTS, Writes: ns.writes.Load()}
	for _, s := range ns.idxSizes {
		st.IndexSize += s
	}
	for id := ns.firstID; id < ns.curID; id++ {
		if fi, err := os.Stat(dataPath(ns.dataDir, id)); err == nil {
			st.DataSize += fi.Size()
		}
	}
	st.DataSize += ns.dataEnd
	if ns.mode == ModeUser {
		st.IndexRAM = ns.keys.memory()
	}
	return st
}

// markDirty records that index file id changed. Caller holds ns.mu.
func (ns *Namespace) markDirty(id uint32) {
	ns.dirtyMark++
	ns.dirty[id] = ns.dirtyMark
}

// dirtySnapshot lists the dirty index files and returns a func that resets
// those of them that did not change again meanwhile (0-db resets the list
// once its jump-index hook succeeded).
func (ns *Namespace) dirtySnapshot() ([]uint32, func()) {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	marks := make(map[uint32]uint64, len(ns.dirty))
	ids := make([]uint32, 0, len(ns.dirty))
	for id, m := range ns.dirty {
		marks[id] = m
		ids = append(ids, id)
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, func() {
		ns.mu.Lock()
		defer ns.mu.Unlock()
		for id, m := range marks {
			if ns.dirty[id] == m {
				delete(ns.dirty, id)
			}
		}
	}
}

// DirtyFiles lists index files changed since the last reset (INDEX DIRTY).
func (ns *Namespace) DirtyFiles(reset bool) []uint32 {
	ids, resetListed := ns.dirtySnapshot()
	if reset {
		resetListed()
	}
	return ids
}

// Closed reports whether the namespace was closed or deleted.
func (ns *Namespace) Closed() bool { return ns.closedFlag.Load() }

// Successor returns the namespace that replaced this one on RELOAD, or nil.
func (ns *Namespace) Successor() *Namespace { return ns.successor.Load() }

// Entries returns the number of live keys.
func (ns *Namespace) Entries() int64 {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.entries
}
