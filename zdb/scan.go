package zdb

import (
	"bytes"
	"fmt"
)

// Cursor is the position of an index entry: its index file and offset.
type Cursor struct {
	File   uint32
	Offset uint32
}

// KeyCursorSize is the length of an encoded scan cursor (0-db's
// index_bkey_t: u8 keylen | u32 file | u32 length | u32 offset | u32 crc).
const KeyCursorSize = 17

// HistoryCursorSize is the length of an encoded history cursor (0-db's
// index_ekey_t: u32 file | u32 offset).
const HistoryCursorSize = 8

// EncodeHistoryCursor returns the 8-byte form of c.
func EncodeHistoryCursor(c Cursor) []byte {
	b := make([]byte, HistoryCursorSize)
	le.PutUint32(b, c.File)
	le.PutUint32(b[4:], c.Offset)
	return b
}

// Item is one entry returned by a scan.
type Item struct {
	Key       []byte
	Length    uint32
	Timestamp uint32
	CRC       uint32
	Cursor    Cursor
}

// EncodeCursor returns the 17-byte scan cursor of it.
func (it *Item) EncodeCursor() []byte {
	b := make([]byte, KeyCursorSize)
	b[0] = uint8(len(it.Key))
	le.PutUint32(b[1:], it.Cursor.File)
	le.PutUint32(b[5:], it.Length)
	le.PutUint32(b[9:], it.Cursor.Offset)
	le.PutUint32(b[13:], it.CRC)
	return b
}

// readEntry reads the index entry at (file, off). Caller holds ns.mu.
func (ns *Namespace) readEntry(file uint32, off int64) (entry, error) {
	size, ok := ns.idxSizes[file]
	if !ok || off < indexHeaderSize || off+indexEntrySize > size {
		return entry{}, ErrInvalidCursor
	}
	var h [indexEntrySize]byte
	if err := ns.readAt(true, file, off, h[:]); err != nil {
		return entry{}, err
	}
	n := int64(indexEntrySize + int(h[0]))
	if off+n > size {
		return entry{}, ErrInvalidCursor
	}
	buf := make([]byte, n)
	copy(buf, h[:])
	if err := ns.readAt(true, file, off+indexEntrySize, buf[indexEntrySize:]); err != nil {
		return entry{}, err
	}
	e, _, err := decodeEntry(buf)
	e.fixDataID(ns.mode, file)
	return e, err
}

// DecodeCursor checks a 17-byte scan cursor against the index.
func (ns *Namespace) DecodeCursor(b []byte) (Cursor, error) {
	if len(b) != KeyCursorSize {
		return Cursor{}, ErrInvalidCursor
	}
	c := Cursor{File: le.Uint32(b[1:]), Offset: le.Uint32(b[9:])}
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	e, err := ns.readEntry(c.File, int64(c.Offset))
	if err != nil || len(e.Key) != int(b[0]) {
		return Cursor{}, ErrInvalidCursor
	}
	return c, nil
}

// KeyCursor returns the scan cursor of a key's live entry (KEYCUR).
func (ns *Namespace) KeyCursor(key []byte) ([]byte, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.readable(); err != nil {
		return nil, err
	}
	l, err := ns.lookup(key)
	if err != nil {
		return nil, err
	}
	it := Item{Key: key, Length: l.length, CRC: l.crc, Cursor: Cursor{l.file, l.idxOff}}
	return it.EncodeCursor(), nil
}

// Scan returns up to max live entries in insertion order after the cursor
// (from the first entry when from is nil), or before it when backward is set
// (from the last). It returns ErrNoMoreData when there are none.
func (ns *Namespace) Scan(from *Cursor, max int, backward bool) ([]Item, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.readable(); err != nil {
		return nil, err
	}
	var items []Item
	var pos Cursor
	var ok bool
	if from == nil {
		pos, ok = ns.edge(backward)
	} else {
		pos, ok = ns.step(*from, backward)
	}
	for ok && len(items) < max {
		e, err := ns.readEntry(pos.File, int64(pos.Offset))
		if err != nil {
			return nil, fmt.Errorf("%w: scan at file %d offset %d: %v", ErrCorrupt, pos.File, pos.Offset, err)
		}
		if !e.deleted() {
			items = append(items, Item{Key: e.Key, Length: e.Length, Timestamp: e.Timestamp, CRC: e.CRC, Cursor: pos})
		}
		pos, ok = ns.step(pos, backward)
	}
	if len(items) == 0 {
		return nil, ErrNoMoreData
	}
	return items, nil
}

// edge returns the first (or last) entry position.
func (ns *Namespace) edge(backward bool) (Cursor, bool) {
	if backward {
		for id := int64(ns.curID); id >= int64(ns.firstID); id-- {
			if off, ok := ns.lastIdx[uint32(id)]; ok {
				return Cursor{uint32(id), off}, true
			}
		}
		return Cursor{}, false
	}
	for id := ns.firstID; id <= ns.curID; id++ {
		if ns.idxSizes[id] > indexHeaderSize {
			return Cursor{id, indexHeaderSize}, true
		}
	}
	return Cursor{}, false
}

// step moves to the next (or previous) entry position.
func (ns *Namespace) step(c Cursor, backward bool) (Cursor, bool) {
	if backward {
		if c.Offset > indexHeaderSize {
			e, err := ns.readEntry(c.File, int64(c.Offset))
			if err != nil || e.Previous >= c.Offset || e.Previous < indexHeaderSize {
				return Cursor{}, false
			}
			return Cursor{c.File, e.Previous}, true
		}
		for id := int64(c.File) - 1; id >= int64(ns.firstID); id-- {
			if off, ok := ns.lastIdx[uint32(id)]; ok {
				return Cursor{uint32(id), off}, true
			}
		}
		return Cursor{}, false
	}
	var h [1]byte
	if err := ns.readAt(true, c.File, int64(c.Offset), h[:]); err != nil {
		return Cursor{}, false
	}
	next := int64(c.Offset) + indexEntrySize + int64(h[0])
	if next < ns.idxSizes[c.File] {
		return Cursor{c.File, uint32(next)}, true
	}
	for id := c.File + 1; id <= ns.curID; id++ {
		if ns.idxSizes[id] > indexHeaderSize {
			return Cursor{id, indexHeaderSize}, true
		}
	}
	return Cursor{}, false
}

// Version is one version of a key, from History.
type Version struct {
	Timestamp uint32
	Value     []byte
	Parent    *Cursor // the older version, nil at the end of the chain
}

// History returns the live version of key (at == nil) or the version at a
// history cursor, which must belong to key.
func (ns *Namespace) History(key []byte, at *Cursor) (Version, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if err := ns.readable(); err != nil {
		return Version{}, err
	}
	var pos Cursor
	if at == nil {
		l, err := ns.lookup(key)
		if err != nil {
			return Version{}, err
		}
		pos = Cursor{l.file, l.idxOff}
	} else {
		pos = *at
	}
	e, err := ns.readEntry(pos.File, int64(pos.Offset))
	if err != nil {
		return Version{}, ErrInvalidCursor
	}
	if !bytes.Equal(e.Key, key) {
		return Version{}, ErrInvalidKey
	}
	if e.Length > MaxValueSize {
		return Version{}, fmt.Errorf("%w: entry claims a %d-byte value", ErrCorrupt, e.Length)
	}
	v := Version{Timestamp: e.Timestamp, Value: make([]byte, e.Length)}
	if err := ns.readAt(false, e.DataID, valueOffset(e.Offset, len(e.Key)), v.Value); err != nil {
		return Version{}, err
	}
	if CRC(v.Value) != e.CRC {
		return Version{}, fmt.Errorf("%w: history value fails CRC", ErrCorrupt)
	}
	if e.ParentID != 0 || e.ParentOff != 0 {
		v.Parent = &Cursor{e.ParentID, e.ParentOff}
	}
	return v, nil
}

// RawRecord is a data record as stored (DATA RAW).
type RawRecord struct {
	Key       []byte
	Previous  uint32
	CRC       uint32
	Flags     uint8
	Timestamp uint32
	Payload   []byte
}

// ReadRaw returns the data record at a data file offset: ErrNotFound when
// there is no such data file, ErrInvalidCursor or ErrCorrupt when no record
// starts there.
func (ns *Namespace) ReadRaw(file uint32, off uint32) (RawRecord, error) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if file > ns.curID || file < ns.firstID {
		return RawRecord{}, ErrNotFound
	}
	if (file == ns.curID && int64(off)+dataRecordSize > ns.dataEnd) || off < dataHeaderSize {
		return RawRecord{}, ErrInvalidCursor
	}
	var h [dataRecordSize]byte
	if err := ns.readAt(false, file, int64(off), h[:]); err != nil {
		return RawRecord{}, err
	}
	r, _ := decodeRecord(h[:])
	if r.Length > MaxValueSize {
		return RawRecord{}, ErrInvalidCursor
	}
	buf := make([]byte, int(r.KeyLen)+int(r.Length))
	if err := ns.readAt(false, file, int64(off)+dataRecordSize, buf); err != nil {
		return RawRecord{}, err
	}
	return RawRecord{Key: buf[:r.KeyLen], Previous: r.Previous, CRC: r.CRC, Flags: r.Flags,
		Timestamp: r.Timestamp, Payload: buf[r.KeyLen:]}, nil
}
