package zdb

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"slices"

	"github.com/zosgrid/zos/internal/atomicfile"
)

// Seq-mode compaction.
//
// A seq key is its entry's position across the index files, so the index
// keeps every slot where it is and only the data files shrink. What no live
// id needs is the payload of the versions of deleted ids (a deleted id stays
// deleted: updates need a live id). Each old data file (below the cut) is
// rewritten in place of itself, record for record in the same order, with
// those payloads dropped: the record stays, flagged truncated, with its key
// and no value. Keeping every record keeps the data log replayable: a
// replica that resyncs from it hands out the same ids (every allocation and
// every update's history slot is still there) and deletes the same ones.
// The current versions of live ids and their history (the chain of
// deleted copies an update appends) are copied whole. Under the lock, every
// index entry pointing into a rewritten file gets its new offset (entries of
// deleted ids also a zero length) through ".compact" index files swapped in
// with the data files (same marker and roll-forward as in user mode).

// seqChains returns the data records (file, offset) below cut that a live
// id's current version or history points at. files holds every index file.
func seqChains(files map[uint32]*parsedIndex, firsts map[uint32]uint64, cut uint32) (map[pos]bool, error) {
	need := map[pos]bool{}
	for id, p := range files {
		first, ok := firsts[id]
		if !ok {
			return nil, fmt.Errorf("%w: index file %d is not in the id map", ErrCorrupt, id)
		}
		for _, off := range p.offs {
			e, _, _ := decodeEntry(p.buf[off:])
			slot := first + uint64(off-indexHeaderSize)/seqEntrySize
			if e.deleted() || len(e.Key) != SeqKeySize || le.Uint64(e.Key) != slot {
				continue
			}
			for i := 0; ; i++ {
				if i > 1<<20 {
					return nil, fmt.Errorf("%w: history chain of id %d does not end", ErrCorrupt, slot)
				}
				if e.DataID < cut {
					need[pos{e.DataID, e.Offset}] = true
				}
				if e.ParentID == 0 && e.ParentOff == 0 {
					break
				}
				pp := files[e.ParentID]
				if pp == nil || !containsOff(pp.offs, e.ParentOff) {
					return nil, fmt.Errorf("%w: history link %d@%d of id %d points at no entry", ErrCorrupt, e.ParentID, e.ParentOff, slot)
				}
				e, _, _ = decodeEntry(pp.buf[e.ParentOff:])
			}
		}
	}
	return need, nil
}

// seqFirsts maps each index file to the id of its first slot. Caller holds
// ns.mu.
func (ns *Namespace) seqFirsts() map[uint32]uint64 {
	firsts := make(map[uint32]uint64, len(ns.seqmap))
	for _, sf := range ns.seqmap {
		firsts[sf.file] = sf.first
	}
	return firsts
}

// seqRewrite is what the copy produced: per rewritten data file, old record
// offset -> new, and which records lost their payload.
type seqRewrite struct {
	moved     map[pos]uint32
	truncated map[pos]bool
	files     []uint32 // data files rewritten (their .compact exists)
}

func (ns *Namespace) compactSeq(ctx context.Context, first, cut uint32) (CompactResult, error) {
	var res CompactResult
	// 1. What live ids need, from the index files as committed: commits
	// only ever shrink that set below the cut (deleted ids stay deleted,
	// an update's history copies a version that was live), so it is safe
	// to use after the lock is gone; the swap checks it again.
	ns.commitMu.Lock()
	ns.mu.RLock()
	last, firsts := ns.curID, ns.seqFirsts()
	ns.mu.RUnlock()
	files, err := loadIndexFiles(ns.idxDir, first, last)
	ns.commitMu.Unlock()
	if err != nil {
		return res, err
	}
	need, err := seqChains(files, firsts, cut)
	if err != nil {
		return res, err
	}
	files = nil
	// 2. Rewrite the old data files that hold payloads nobody needs.
	rw := &seqRewrite{moved: map[pos]uint32{}, truncated: map[pos]bool{}}
	defer func() {
		for _, id := range rw.files {
			os.Remove(dataPath(ns.dataDir, id) + compactSuffix)
		}
	}()
	for id := first; id < cut; id++ {
		if err := ctx.Err(); err != nil {
			return res, err
		}
		before, after, kept, dropped, err := ns.rewriteSeqData(id, need, rw)
		if err != nil {
			return res, err
		}
		res.BytesBefore += before
		res.BytesAfter += after
		res.EntriesKept += kept
		res.EntriesDrops += dropped
	}
	res.Files = len(rw.files)
	if res.Files == 0 {
		return res, nil
	}
	if ns.compactHook != nil {
		ns.compactHook()
	}
	// 3. Swap under the locks.
	idxFiles, err := ns.swapSeq(first, cut, rw)
	if err != nil {
		for _, id := range idxFiles {
			os.Remove(indexPath(ns.idxDir, id) + compactSuffix)
		}
		return res, err
	}
	rw.files = nil
	ns.log.Info("zdb compacted seq namespace", "files", res.Files, "before", res.BytesBefore,
		"after", res.BytesAfter, "kept", res.EntriesKept, "truncated", res.EntriesDrops)
	return res, nil
}

// rewriteSeqData writes dN.compact for data file id when some payload in it
// can go; it reports the file's size before and after and how many payloads
// it kept and dropped. It streams the file twice (is anything to drop, then
// the copy), so memory stays bounded whatever the number of records.
func (ns *Namespace) rewriteSeqData(id uint32, need map[pos]bool, rw *seqRewrite) (before, after int64, kept, dropped int, err error) {
	f, err := os.Open(dataPath(ns.dataDir, id))
	if err != nil {
		return 0, 0, 0, 0, err
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return 0, 0, 0, 0, err
	}
	size := fi.Size()
	drop := false
	err = walkRecords(f, id, size, false, func(off int64, r *record, _ []byte) error {
		if r.Length > 0 && !need[pos{id, uint32(off)}] {
			drop = true
			return errStopWalk
		}
		return nil
	})
	if err != nil || !drop {
		return 0, 0, 0, 0, err
	}
	out, err := os.OpenFile(dataPath(ns.dataDir, id)+compactSuffix, os.O_RDWR|os.O_CREATE|os.O_TRUNC, 0o600)
	if err != nil {
		return 0, 0, 0, 0, err
	}
	rw.files = append(rw.files, id)
	defer out.Close()
	bw := bufio.NewWriterSize(out, 1<<20)
	bw.Write(appendDataHeader(nil, id))
	end, prev := int64(dataHeaderSize), uint32(0)
	err = walkRecords(f, id, size, true, func(off int64, r *record, rec []byte) error {
		at := pos{id, uint32(off)}
		if r.Length > 0 && !need[at] {
			rec = rec[:dataRecordSize+int(r.KeyLen)] // the key stays, the value goes
			le.PutUint32(rec[1:], 0)                 // length
			le.PutUint32(rec[9:], 0)                 // CRC32C of nothing
			rec[13] |= flagTruncated
			rw.truncated[at] = true
			dropped++
		} else {
			if CRC(rec[dataRecordSize+int(r.KeyLen):]) != r.CRC {
				return fmt.Errorf("%w: data record %d@%d fails CRC, compaction stopped", ErrCorrupt, id, off)
			}
			if r.Length > 0 {
				kept++
			}
		}
		le.PutUint32(rec[5:], prev)
		if _, err := bw.Write(rec); err != nil {
			return err
		}
		rw.moved[at] = uint32(end)
		prev = uint32(end)
		end += int64(len(rec))
		return nil
	})
	if err != nil {
		return 0, 0, 0, 0, err
	}
	if err := bw.Flush(); err != nil {
		return 0, 0, 0, 0, err
	}
	if err := out.Sync(); err != nil {
		return 0, 0, 0, 0, err
	}
	return size, end, kept, dropped, nil
}

var errStopWalk = errors.New("stop")

// walkRecords streams the records of data file id (size bytes) in order,
// checking its header and that every record fits. fn gets each record's
// offset and header, and with full set its bytes (header, key, value; valid
// until fn returns). errStopWalk from fn ends the walk without error.
func walkRecords(f *os.File, id uint32, size int64, full bool, fn func(off int64, r *record, rec []byte) error) error {
	br := bufio.NewReaderSize(io.NewSectionReader(f, 0, size), 1<<20)
	hdr := make([]byte, dataHeaderSize)
	if _, err := io.ReadFull(br, hdr); err != nil {
		return fmt.Errorf("%w: data file %d: %v", ErrCorrupt, id, err)
	}
	if err := checkDataHeader(hdr, id); err != nil {
		return err
	}
	buf := make([]byte, dataRecordSize, 64<<10)
	for off := int64(dataHeaderSize); off < size; {
		if _, err := io.ReadFull(br, buf[:dataRecordSize]); err != nil {
			return fmt.Errorf("%w: data file %d: torn record at %d", ErrCorrupt, id, off)
		}
		r, _ := decodeRecord(buf[:dataRecordSize])
		n := int64(dataRecordSize) + int64(r.KeyLen) + int64(r.Length)
		if r.Length > MaxValueSize || off+n > size {
			return fmt.Errorf("%w: data file %d: record at %d runs past the end", ErrCorrupt, id, off)
		}
		rec := buf[:dataRecordSize]
		if full {
			if int(n) > cap(buf) {
				buf = append(buf[:dataRecordSize], make([]byte, int(n)-dataRecordSize)...)
			}
			rec = buf[:n]
			if _, err := io.ReadFull(br, rec[dataRecordSize:]); err != nil {
				return fmt.Errorf("%w: data file %d: record at %d: %v", ErrCorrupt, id, off, err)
			}
		} else if _, err := br.Discard(int(n - dataRecordSize)); err != nil {
			return fmt.Errorf("%w: data file %d: record at %d: %v", ErrCorrupt, id, off, err)
		}
		err := fn(off, &r, rec)
		if errors.Is(err, errStopWalk) {
			return nil
		}
		if err != nil {
			return err
		}
		off += n
	}
	return nil
}

// swapSeq points every index entry at the rewritten records, through
// ".compact" index files, and swaps them in with the data files. It returns
// the index files it wrote, for the caller to remove on failure.
func (ns *Namespace) swapSeq(first, cut uint32, rw *seqRewrite) ([]uint32, error) {
	if err := ns.CommitAll(); err != nil {
		return nil, err
	}
	var jumps []uint32
	defer func() { ns.announceJumps(jumps) }() // after the locks are let go
	ns.commitMu.Lock()
	defer ns.commitMu.Unlock()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	jumps, err := ns.commitLocked()
	if err != nil {
		return nil, err
	}
	// Both locks stay held to the end: a write queued meanwhile could copy
	// an entry's old offset into a history slot.
	files, err := loadIndexFiles(ns.idxDir, first, ns.curID)
	if err != nil {
		return nil, err
	}
	need, err := seqChains(files, ns.seqFirsts(), cut)
	if err != nil {
		return nil, err
	}
	for p := range need {
		if rw.truncated[p] {
			return nil, fmt.Errorf("zdb: seq compaction: record %d@%d is needed again, compaction abandoned", p.file, p.off)
		}
	}
	rewritten := map[uint32]bool{}
	for _, id := range rw.files {
		rewritten[id] = true
	}
	var written []uint32
	for id := first; id <= ns.curID; id++ {
		p := files[id]
		if p == nil {
			continue
		}
		changed := false
		for _, off := range p.offs {
			b := p.buf[off:]
			e, _, _ := decodeEntry(b)
			if !rewritten[e.DataID] {
				continue
			}
			at := pos{e.DataID, e.Offset}
			no, ok := rw.moved[at]
			if !ok {
				return written, fmt.Errorf("%w: index %d@%d points at no record of data file %d", ErrCorrupt, id, off, e.DataID)
			}
			le.PutUint32(b[1:], no)
			if rw.truncated[at] {
				le.PutUint32(b[5:], 0)  // length
				le.PutUint32(b[22:], 0) // CRC32C of nothing
			}
			changed = true
		}
		if !changed {
			continue
		}
		written = append(written, id)
		if err := atomicfile.Write(indexPath(ns.idxDir, id)+compactSuffix, p.buf, 0o600); err != nil {
			return written, err
		}
	}
	// A rewritten data file may also have a rewritten index file: renaming
	// twice is harmless (finishSwap skips what is gone).
	marker, err := ns.swapIn(slices.Concat(rw.files, written))
	if marker == "" {
		return written, err // nothing renamed yet
	}
	if err != nil {
		return nil, err
	}
	for _, id := range written {
		ns.markDirty(id)
	}
	return nil, os.Remove(marker)
}
