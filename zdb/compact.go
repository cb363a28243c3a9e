package zdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zosgrid/zos/internal/atomicfile"
)

// Online compaction. Seq namespaces take another path (compactSeq): their
// ids are index positions, so only their data files shrink.
//
// User mode:
// Compact rolls the namespace to a fresh file pair, so every older file
// ("the old files", ids below the cut) is immutable except for deleted
// flags. Without holding the namespace lock it copies, in index order, every
// entry of the history chain of every live key (current versions and their
// older versions) into new files with the same ids, written beside the old
// ones as "iN.compact"/"dN.compact" and padded with header-only files so ids
// stay contiguous (0-db needs that). Then, under the lock, it applies what
// changed meanwhile: versions that stopped being current are flagged deleted
// in the copies, entries appended since the cut get their history links
// moved to the new offsets, the in-memory index is moved, and the files are
// swapped by rename. A "compact-swap" marker written before the first rename
// makes the swap roll forward if the process dies in the middle; leftover
// ".compact" files without the marker are deleted on open.

const compactSuffix = ".compact"
const compactMarker = "compact-swap"

// CompactResult says what a compaction did.
type CompactResult struct {
	Files        int   // old file pairs rewritten
	BytesBefore  int64 // data+index bytes of those files before
	BytesAfter   int64 // and after
	EntriesKept  int   // index entries copied (live versions and their history)
	EntriesDrops int   // index entries dropped
}

// DeadRatio estimates the share of data bytes no live key's history needs:
// 1 - bytes of the live records / bytes of all records. It is cheap and drives the automatic
// threshold.
func (ns *Namespace) DeadRatio() float64 {
	dead, records := ns.deadBytes()
	if records <= 0 {
		return 0
	}
	return float64(dead) / float64(records)
}

// DeadBytes estimates the data bytes no live key's history needs, the bytes a
// compaction can give back.
func (ns *Namespace) DeadBytes() int64 {
	dead, _ := ns.deadBytes()
	return dead
}

func (ns *Namespace) deadBytes() (dead, records int64) {
	st := ns.Stats()
	records = st.DataSize - int64(st.Files)*dataHeaderSize
	if records <= 0 {
		return 0, 0
	}
	return max(records-st.LiveBytes, 0), records
}

type pos struct{ file, off uint32 }

// Compact rewrites the namespace's older files keeping only live keys and
// their history, while the namespace keeps serving.
func (ns *Namespace) Compact(ctx context.Context) (CompactResult, error) {
	var res CompactResult
	ns.compactMu.Lock()
	defer ns.compactMu.Unlock()
	// 1. Cut: flush and roll to a new file pair.
	ns.mu.Lock()
	if err := ns.writable(); err != nil {
		ns.mu.Unlock()
		return res, err
	}
	mode := ns.mode
	ns.jump()
	ns.seq++
	ns.pend.seq = ns.seq
	cut, first := ns.curID, ns.firstID
	seq := ns.seq
	// Snapshot: the current location of every live key.
	current := make(map[pos]string, ns.keys.len())
	ns.keys.each(func(k []byte, l loc) {
		if l.file < ns.curID {
			current[pos{l.file, l.idxOff}] = string(k)
		}
	})
	ns.mu.Unlock()
	if err := ns.Commit(seq); err != nil {
		return res, err
	}
	if cut == first {
		return res, nil
	}
	if mode == ModeSeq {
		return ns.compactSeq(ctx, first, cut)
	}
	// 2. Load the old index files (immutable but for flags) and mark what
	// to keep: every position on the chain of a live key.
	old, err := loadIndexFiles(ns.idxDir, first, cut-1)
	if err != nil {
		return res, err
	}
	keep := map[pos]bool{}
	for p := range current {
		ns.markChain(p, cut, old, keep)
	}
	// Chains of live keys whose current entry is in the new files.
	ns.mu.RLock()
	var heads []pos
	ns.keys.each(func(_ []byte, l loc) {
		if l.file >= cut {
			heads = append(heads, pos{l.file, l.idxOff})
		}
	})
	for _, h := range heads {
		e, err := ns.readEntry(h.file, int64(h.off))
		if err == nil && (e.ParentID != 0 || e.ParentOff != 0) && e.ParentID < cut {
			ns.markChain(pos{e.ParentID, e.ParentOff}, cut, old, keep)
		}
	}
	ns.mu.RUnlock()
	// 3. Copy, in index order, into .compact files.
	w := &compactWriter{ns: ns, first: first, cut: cut, moved: map[pos]pos{}}
	defer w.abort()
	for id := first; id < cut; id++ {
		p := old[id]
		if p == nil {
			continue
		}
		if err := ctx.Err(); err != nil {
			return res, err
		}
		df, err := os.Open(dataPath(ns.dataDir, id))
		if err != nil {
			return res, err
		}
		for _, off := range p.offs {
			e, _, _ := decodeEntry(p.buf[off:])
			e.fixDataID(ModeUser, id)
			if !keep[pos{id, off}] {
				res.EntriesDrops++
				continue
			}
			if err := w.copyEntry(ctx, df, id, off, &e, current); err != nil {
				df.Close()
				return res, err
			}
			res.EntriesKept++
		}
		df.Close()
		if fi, err := os.Stat(dataPath(ns.dataDir, id)); err == nil {
			res.BytesBefore += fi.Size()
		}
		res.BytesBefore += int64(len(p.buf))
	}
	if err := w.finish(); err != nil {
		return res, err
	}
	res.Files = int(cut - first)
	res.BytesAfter = w.bytes
	if ns.compactHook != nil {
		ns.compactHook()
	}
	// 4. Swap under the locks.
	if err := ns.swapCompacted(w, current); err != nil {
		return res, err
	}
	w.done = true
	ns.log.Info("zdb compacted namespace", "files", res.Files, "before", res.BytesBefore,
		"after", res.BytesAfter, "kept", res.EntriesKept, "dropped", res.EntriesDrops)
	return res, nil
}

// markChain marks p and its ancestors that lie in the old files.
func (ns *Namespace) markChain(p pos, cut uint32, old map[uint32]*parsedIndex, keep map[pos]bool) {
	for i := 0; i < 1<<20; i++ { // bound against a corrupt cycle
		if p.file >= cut || keep[p] {
			return
		}
		pi := old[p.file]
		if pi == nil || !containsOff(pi.offs, p.off) {
			return
		}
		keep[p] = true
		e, _, _ := decodeEntry(pi.buf[p.off:])
		if e.ParentID == 0 && e.ParentOff == 0 {
			return
		}
		p = pos{e.ParentID, e.ParentOff}
	}
}

// compactWriter writes the .compact files.
type compactWriter struct {
	ns         *Namespace
	first, cut uint32
	id         uint32
	data, idx  *os.File
	dataEnd    int64
	idxEnd     int64
	dataPrev   uint32
	idxPrev    uint32
	moved      map[pos]pos // old entry position -> new
	written    []uint32
	bytes      int64
	done       bool
	buf        []byte
	// entries copied as current: new position -> key
	currentNew map[pos]string
}

func (w *compactWriter) open(id uint32) error {
	if w.data != nil {
		if err := w.closeFiles(); err != nil {
			return err
		}
	}
	w.id = id
	var err error
	if w.data, err = os.OpenFile(dataPath(w.ns.dataDir, id)+compactSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
		return err
	}
	if w.idx, err = os.OpenFile(indexPath(w.ns.idxDir, id)+compactSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600); err != nil {
		return err
	}
	w.written = append(w.written, id)
	if _, err := w.data.Write(appendDataHeader(nil, id)); err != nil {
		return err
	}
	if _, err := w.idx.Write(appendIndexHeader(nil, id, ModeUser)); err != nil {
		return err
	}
	w.dataEnd, w.idxEnd = dataHeaderSize, indexHeaderSize
	return nil
}

func (w *compactWriter) closeFiles() error {
	var first error
	for _, f := range []*os.File{w.data, w.idx} {
		if err := f.Sync(); err != nil && first == nil {
			first = err
		}
		fi, _ := f.Stat()
		if fi != nil {
			w.bytes += fi.Size()
		}
		if err := f.Close(); err != nil && first == nil {
			first = err
		}
	}
	w.data, w.idx = nil, nil
	return first
}

func (w *compactWriter) copyEntry(ctx context.Context, df *os.File, id, off uint32, e *entry, current map[pos]string) error {
	if w.data == nil {
		if err := w.open(w.first); err != nil {
			return err
		}
	}
	size := int64(dataRecordSize + len(e.Key) + int(e.Length))
	if e.Length > MaxValueSize {
		return fmt.Errorf("%w: entry %d@%d claims %d bytes", ErrCorrupt, id, off, e.Length)
	}
	if w.dataEnd+size > w.ns.db.opts.DataSize && w.dataEnd > dataHeaderSize {
		if w.id+1 >= w.cut {
			return errors.New("zdb: compaction output does not fit the old file ids")
		}
		if err := w.open(w.id + 1); err != nil {
			return err
		}
	}
	if e.DataID != id {
		// Data in another file (possible only in files written elsewhere).
		f, err := os.Open(dataPath(w.ns.dataDir, e.DataID))
		if err != nil {
			return err
		}
		defer f.Close()
		df = f
	}
	rec := make([]byte, size)
	if _, err := df.ReadAt(rec, int64(e.Offset)); err != nil {
		return fmt.Errorf("zdb: compaction read of %d@%d: %w", e.DataID, e.Offset, err)
	}
	if CRC(rec[dataRecordSize+len(e.Key):]) != e.CRC {
		return fmt.Errorf("%w: value of index entry %d@%d fails CRC, compaction stopped", ErrCorrupt, id, off)
	}
	le.PutUint32(rec[5:], w.dataPrev)
	newData := uint32(w.dataEnd)
	if _, err := w.data.Write(rec); err != nil {
		return err
	}
	w.dataPrev = newData
	w.dataEnd += size
	ne := *e
	ne.Offset, ne.DataID, ne.Previous = newData, w.id, w.idxPrev
	ne.Flags = flagDeleted
	if _, ok := current[pos{id, off}]; ok {
		ne.Flags = 0
	}
	if e.ParentID != 0 || e.ParentOff != 0 {
		if np, ok := w.moved[pos{e.ParentID, e.ParentOff}]; ok {
			ne.ParentID, ne.ParentOff = np.file, np.off
		} else {
			ne.ParentID, ne.ParentOff = 0, 0
		}
	}
	newIdx := uint32(w.idxEnd)
	w.buf = appendEntry(w.buf[:0], &ne)
	if _, err := w.idx.Write(w.buf); err != nil {
		return err
	}
	w.idxPrev = newIdx
	w.idxEnd += int64(len(w.buf))
	w.moved[pos{id, off}] = pos{w.id, newIdx}
	return nil
}

// finish closes the last files and pads ids up to the cut with empty files.
func (w *compactWriter) finish() error {
	next := w.first
	if w.data != nil {
		next = w.id + 1
		if err := w.closeFiles(); err != nil {
			return err
		}
	}
	for id := next; id < w.cut; id++ {
		if err := w.open(id); err != nil {
			return err
		}
		if err := w.closeFiles(); err != nil {
			return err
		}
	}
	return nil
}

func (w *compactWriter) abort() {
	if w.done {
		return
	}
	if w.data != nil {
		w.data.Close()
		w.idx.Close()
	}
	for _, id := range w.written {
		os.Remove(dataPath(w.ns.dataDir, id) + compactSuffix)
		os.Remove(indexPath(w.ns.idxDir, id) + compactSuffix)
	}
}

// swapCompacted applies changes made during the copy and renames the
// compacted files into place.
func (ns *Namespace) swapCompacted(w *compactWriter, snap map[pos]string) error {
	if err := ns.CommitAll(); err != nil {
		return err
	}
	var jumps []uint32
	defer func() { ns.announceJumps(jumps) }() // after the locks are let go
	ns.commitMu.Lock()
	defer ns.commitMu.Unlock()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	jumps, err := ns.commitLocked()
	if err != nil {
		return err
	}
	// Versions current at the snapshot but not any more: flag the copies.
	for p, k := range snap {
		np, ok := w.moved[p]
		if !ok {
			continue
		}
		if l, live := ns.keys.get([]byte(k)); live && l.file == p.file && l.idxOff == p.off {
			continue
		}
		f, err := os.OpenFile(indexPath(ns.idxDir, np.file)+compactSuffix, os.O_RDWR, 0)
		if err != nil {
			return err
		}
		_, err = f.WriteAt(deletedFlag, int64(np.off)+13)
		if err == nil {
			err = f.Sync()
		}
		f.Close()
		if err != nil {
			return err
		}
	}
	marker, err := ns.swapIn(w.written)
	if err != nil {
		return err
	}
	// History links of entries written since the cut.
	for id := w.cut; id <= ns.curID; id++ {
		if err := ns.relinkFile(id, w); err != nil {
			return err
		}
	}
	// In-memory index and file sizes.
	type move struct {
		key []byte
		l   loc
	}
	var moves []move
	ns.keys.each(func(k []byte, l loc) {
		if l.file < w.cut {
			moves = append(moves, move{append([]byte(nil), k...), l})
		}
	})
	for _, m := range moves {
		k, l := m.key, m.l
		np := w.moved[pos{l.file, l.idxOff}]
		buf := make([]byte, indexEntrySize+len(k))
		f, err := ns.file(true, np.file)
		if err != nil {
			return err
		}
		if _, err := f.ReadAt(buf, int64(np.off)); err != nil {
			return err
		}
		e, _, _ := decodeEntry(buf)
		l.file, l.idxOff, l.dataID, l.dataOff = np.file, np.off, np.file, e.Offset
		ns.keys.put(k, l)
	}
	for _, id := range w.written {
		delete(ns.lastIdx, id)
		fi, err := os.Stat(indexPath(ns.idxDir, id))
		if err != nil {
			return err
		}
		ns.idxSizes[id] = fi.Size()
		ns.markDirty(id)
	}
	for p, np := range w.moved {
		_ = p
		if cur, ok := ns.lastIdx[np.file]; !ok || np.off > cur {
			ns.lastIdx[np.file] = np.off
		}
	}
	return os.Remove(marker)
}

// commitLocked commits what was queued since the last commit; the caller
// holds commitMu and ns.mu, so the files stay still until it lets go, and
// passes the rotations it returns to announceJumps once ns.mu is free.
func (ns *Namespace) commitLocked() (jumps []uint32, err error) {
	b := ns.pend
	ns.pend = batch{}
	err = ns.writeBatch(&b)
	ns.settleBatch(&b, err)
	return b.jumps, err
}

// loadIndexFiles parses index files first..last as they are on disk (the
// missing ones skipped); a bad entry fails it. The caller keeps commits out
// or reads only files no commit changes.
func loadIndexFiles(idxDir string, first, last uint32) (map[uint32]*parsedIndex, error) {
	files := map[uint32]*parsedIndex{}
	for id := first; id <= last; id++ {
		p, err := parseIndexFile(indexPath(idxDir, id), id)
		if errors.Is(err, os.ErrNotExist) {
			continue
		}
		if err != nil {
			return nil, err
		}
		if p.bad >= 0 {
			return nil, fmt.Errorf("%w: index file %d has a bad entry at %d", ErrCorrupt, id, p.bad)
		}
		files[id] = p
	}
	return files, nil
}

// relinkFile rewrites history links that point into compacted files.
func (ns *Namespace) relinkFile(id uint32, w *compactWriter) error {
	p, err := parseIndexFile(indexPath(ns.idxDir, id), id)
	if err != nil {
		return err
	}
	f, err := ns.file(true, id)
	if err != nil {
		return err
	}
	for _, off := range p.offs {
		e, _, _ := decodeEntry(p.buf[off:])
		if e.ParentID >= w.cut || (e.ParentID == 0 && e.ParentOff == 0) {
			continue
		}
		np, ok := w.moved[pos{e.ParentID, e.ParentOff}]
		var b [8]byte
		if ok {
			le.PutUint32(b[:], np.file)
			le.PutUint32(b[4:], np.off)
		}
		if _, err := f.WriteAt(b[:], int64(off)+26); err != nil {
			return err
		}
	}
	return f.Sync()
}

// swapIn puts the ".compact" files of ids in place: a roll-forward marker
// naming them first (an id names both its data and index file; finishSwap
// renames whichever has a ".compact"), a new generation, the open files and
// maps let go, a new value-cache generation, then the renames. It returns
// the marker, for the caller to remove once the rest of its swap is done.
// Caller holds ns.mu for writing.
func (ns *Namespace) swapIn(ids []uint32) (marker string, err error) {
	marker = filepath.Join(ns.idxDir, compactMarker)
	names := make([]string, len(ids))
	for i, id := range ids {
		names[i] = strconv.FormatUint(uint64(id), 10)
	}
	if err := atomicfile.Write(marker, []byte(strings.Join(names, "\n")), 0o600); err != nil {
		return "", err
	}
	if err := ns.bumpGeneration(); err != nil {
		return "", err
	}
	ns.closeFiles()
	ns.cacheGen = ns.db.cacheGen.Add(1)
	return marker, finishSwap(ns.dataDir, ns.idxDir, ids)
}

// finishSwap renames .compact files over the old ones (idempotent).
func finishSwap(dataDir, idxDir string, ids []uint32) error {
	for _, id := range ids {
		for _, p := range []string{dataPath(dataDir, id), indexPath(idxDir, id)} {
			if err := os.Rename(p+compactSuffix, p); err != nil && !errors.Is(err, os.ErrNotExist) {
				return err
			}
		}
	}
	return nil
}

// recoverCompaction finishes an interrupted swap (marker present; it then
// reports true: the files were rewritten) or drops an interrupted copy (no
// marker). It runs before replay.
func recoverCompaction(ns *Namespace) (bool, error) {
	marker := filepath.Join(ns.idxDir, compactMarker)
	raw, err := os.ReadFile(marker)
	if err == nil {
		var ids []uint32
		for _, s := range strings.Fields(string(raw)) {
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return false, fmt.Errorf("%w: compaction marker: %v", errFormat, err)
			}
			ids = append(ids, uint32(v))
		}
		if err := finishSwap(ns.dataDir, ns.idxDir, ids); err != nil {
			return false, err
		}
		ns.log.Warn("zdb finished an interrupted compaction swap")
		return true, os.Remove(marker)
	}
	if !errors.Is(err, os.ErrNotExist) {
		return false, err
	}
	for _, dir := range []string{ns.idxDir, ns.dataDir} {
		des, _ := os.ReadDir(dir)
		for _, de := range des {
			// Also ".iN.compact.*.tmp" from atomicfile.Write.
			if strings.Contains(de.Name(), compactSuffix) {
				os.Remove(filepath.Join(dir, de.Name()))
			}
		}
	}
	return false, nil
}
