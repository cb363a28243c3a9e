package zdb

import (
	"fmt"
	"os"
)

// LogRecord is one data record, in the order records were appended: a
// value written (Deleted false) or a tombstone (Deleted true). Data files
// are append-only, so (file, offset) positions in them form a replication
// log.
type LogRecord struct {
	Key       []byte
	Value     []byte
	Timestamp uint32
	Deleted   bool
	// Truncated: a seq compaction dropped the value of this version of an
	// id deleted later. Replaying it still takes the id's slot (and an
	// update's history slot), see Namespace.ReplicaSetTruncated.
	Truncated bool
}

// LogPosition is a place in the data log.
type LogPosition struct {
	Generation uint64 // changes when FLUSH or compaction rewrites files, or a crash repair cuts the log
	File       uint32
	Offset     uint32
}

// ErrLogPosition means a log position no longer exists (the files were
// flushed or compacted): the follower must start over.
var ErrLogPosition = fmt.Errorf("zdb: replication position lost, full resync needed")

// Generation returns the namespace's file generation.
func (ns *Namespace) Generation() uint64 {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.side.Generation
}

// committedEnd returns how far file id holds committed records, and
// whether records queued for it past that point are still uncommitted.
func (ns *Namespace) committedEnd(id uint32) (int64, bool, error) {
	limit := int64(-1)
	for _, b := range []*batch{ns.inflight, &ns.pend} {
		if b == nil {
			continue
		}
		for _, s := range b.segs {
			if s.id == id && len(s.data) > 0 && (limit < 0 || s.dataBase < limit) {
				limit = s.dataBase
			}
		}
	}
	if limit >= 0 {
		return limit, true, nil
	}
	if id == ns.curID {
		return ns.dataEnd, false, nil
	}
	fi, err := os.Stat(dataPath(ns.dataDir, id))
	if err != nil {
		return 0, false, err
	}
	return fi.Size(), false, nil
}

// ReadLog returns committed records after pos, up to about maxBytes, the
// position after them, and the position of the end of the log.
func (ns *Namespace) ReadLog(pos LogPosition, maxBytes int) ([]LogRecord, LogPosition, LogPosition, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if ns.closed {
		return nil, pos, pos, ErrClosed
	}
	gen := ns.side.Generation
	endLimit, _, err := ns.committedEnd(ns.curID)
	if err != nil {
		return nil, pos, pos, err
	}
	end := LogPosition{Generation: gen, File: ns.curID, Offset: uint32(endLimit)}
	if pos.File == 0 && pos.Offset == 0 && pos.Generation == 0 {
		pos = LogPosition{Generation: gen, File: ns.firstID, Offset: dataHeaderSize}
	}
	if !ns.positionValid(pos) || pos.File > ns.curID || pos.File < ns.firstID || pos.Offset < dataHeaderSize {
		return nil, pos, end, ErrLogPosition
	}
	pos.Generation = gen
	var recs []LogRecord
	size := 0
	for size < maxBytes {
		limit, pending, err := ns.committedEnd(pos.File)
		if err != nil {
			return nil, pos, end, fmt.Errorf("%w: %v", ErrLogPosition, err)
		}
		if limit < dataHeaderSize {
			limit = dataHeaderSize // the file's header is still pending
		}
		if int64(pos.Offset) > limit {
			return nil, pos, end, ErrLogPosition
		}
		if int64(pos.Offset) == limit {
			// Records still queued for this file (a rotation in the same
			// batch) come before the next file's: wait for them.
			if pos.File >= ns.curID || pending {
				break
			}
			pos = LogPosition{Generation: gen, File: pos.File + 1, Offset: dataHeaderSize}
			continue
		}
		var h [dataRecordSize]byte
		if err := ns.readAt(false, pos.File, int64(pos.Offset), h[:]); err != nil {
			return nil, pos, end, err
		}
		r, _ := decodeRecord(h[:])
		n := int64(dataRecordSize) + int64(r.KeyLen) + int64(r.Length)
		if r.Length > MaxValueSize || int64(pos.Offset)+n > limit {
			return nil, pos, end, ErrLogPosition
		}
		buf := make([]byte, int(r.KeyLen)+int(r.Length))
		if err := ns.readAt(false, pos.File, int64(pos.Offset)+dataRecordSize, buf); err != nil {
			return nil, pos, end, err
		}
		if CRC(buf[r.KeyLen:]) != r.CRC {
			if len(recs) == 0 {
				return nil, pos, end, ErrLogPosition
			}
			return nil, pos, end, fmt.Errorf("%w: data record %d@%d fails CRC", ErrCorrupt, pos.File, pos.Offset)
		}
		recs = append(recs, LogRecord{Key: buf[:r.KeyLen], Value: buf[r.KeyLen:], Timestamp: r.Timestamp,
			Deleted: r.Flags&flagDeleted != 0, Truncated: r.Flags&flagTruncated != 0})
		size += int(n)
		pos.Offset += uint32(n)
	}
	return recs, pos, end, nil
}

// bumpGeneration marks that files were rewritten: every older position is
// void. Caller holds ns.mu.
func (ns *Namespace) bumpGeneration() error {
	ns.side.Generation++
	ns.side.CutsFrom = ns.side.Generation
	ns.side.Cuts = nil
	return ns.saveSide()
}

// recordCut marks that a crash repair cut the log back to (file, off):
// positions from before it past that point are void (a follower may have
// copied bytes that are gone and since overwritten), others stay valid.
func (ns *Namespace) recordCut(file, off uint32) error {
	ns.side.Cuts = append(ns.side.Cuts, logCut{Gen: ns.side.Generation, File: file, Offset: off})
	ns.side.Generation++
	if n := len(ns.side.Cuts); n > maxCuts {
		drop := ns.side.Cuts[:n-maxCuts]
		ns.side.CutsFrom = drop[len(drop)-1].Gen + 1
		ns.side.Cuts = append([]logCut(nil), ns.side.Cuts[n-maxCuts:]...)
	}
	return ns.saveSide()
}

// positionValid reports whether pos, taken at an older or the current
// generation, still names bytes the log holds unchanged.
func (ns *Namespace) positionValid(pos LogPosition) bool {
	if pos.Generation == ns.side.Generation {
		return true
	}
	if pos.Generation > ns.side.Generation || pos.Generation < ns.side.CutsFrom {
		return false
	}
	for _, c := range ns.side.Cuts {
		if c.Gen < pos.Generation {
			continue
		}
		if pos.File > c.File || (pos.File == c.File && pos.Offset > c.Offset) {
			return false
		}
	}
	return true
}
