package zdb

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
)

// On-disk sizes and magic values (0-db data format v3, index format v4).
const (
	dataHeaderSize  = 28
	indexHeaderSize = 29
	dataRecordSize  = 18
	indexEntrySize  = 34
	descHeaderSize  = 15

	dataVersion  = 3
	indexVersion = 4
	descVersion  = 1

	flagDeleted = 1
	// flagTruncated marks a data record whose payload a compaction dropped
	// (0-db's DATA_ENTRY_TRUNCATED): the record stays so that the log still
	// replays every id a seq namespace handed out.
	flagTruncated = 2

	descPublic   = 1
	descWorm     = 2
	descExtended = 4

	// MaxKeySize is the longest user key (0-db's limit).
	MaxKeySize = 255
	// MaxValueSize is the largest value (8 MiB, 0-db's limit).
	MaxValueSize = 8 << 20
	// DefaultDataSize is the size at which data files rotate (256 MiB).
	DefaultDataSize = 256 << 20
	// SeqKeySize is the length of a sequential-mode key.
	SeqKeySize = 8
	// seqEntrySize is the fixed index entry size in sequential mode.
	seqEntrySize = indexEntrySize + SeqKeySize
)

var (
	dataMagic  = [4]byte{'D', 'A', 'T', '0'}
	indexMagic = [4]byte{'I', 'D', 'X', '0'}
	castagnoli = crc32.MakeTable(crc32.Castagnoli)
	le         = binary.LittleEndian
)

// errFormat marks bytes that do not parse as the expected structure.
var errFormat = errors.New("zdb: bad on-disk format")

// CRC returns the checksum stored in records and entries: 0-db's CRC32C
// (Castagnoli polynomial) with an initial value of 0 and no final
// inversion, which is what its SSE4.2/ARMv8/table code computes. It is the
// bitwise complement of crc32.Update(^0, ...), so it stays hardware-fast.
func CRC(b []byte) uint32 { return ^crc32.Update(0xFFFFFFFF, castagnoli, b) }

// Mode is a namespace's key mode.
type Mode uint8

// Modes as stored in the index header. ModeMix is a server setting only:
// namespaces choose user or seq individually.
const (
	ModeUser Mode = 0
	ModeSeq  Mode = 1
	ModeMix  Mode = 4
)

func (m Mode) String() string {
	switch m {
	case ModeUser:
		return "userkey"
	case ModeSeq:
		return "sequential"
	case ModeMix:
		return "mixed"
	}
	return fmt.Sprintf("mode(%d)", uint8(m))
}

// ParseMode parses "user" or "seq" (and 0-db's longer spellings).
func ParseMode(s string) (Mode, error) {
	switch s {
	case "user", "userkey":
		return ModeUser, nil
	case "seq", "sequential":
		return ModeSeq, nil
	case "", "mix", "mixed":
		return ModeMix, nil
	}
	return 0, fmt.Errorf("zdb: unknown mode %q (want user or seq)", s)
}

// entry is an index entry (index_item_t) decoded.
type entry struct {
	Offset    uint32 // record offset in data file DataID
	Length    uint32
	Previous  uint32
	Flags     uint8
	DataID    uint32
	Timestamp uint32
	CRC       uint32
	ParentID  uint32
	ParentOff uint32
	Key       []byte
}

func (e *entry) deleted() bool { return e.Flags&flagDeleted != 0 }

// fixDataID applies 0-db's rule for user mode: index file N describes data
// file N, and the stored data id is not reliable (0-db writes 0 for new
// keys and ignores the field when loading). Seq-mode entries rewritten in
// place point at newer data files, so there the stored id is kept.
func (e *entry) fixDataID(m Mode, indexFile uint32) {
	if m == ModeUser {
		e.DataID = indexFile
	}
}

func appendEntry(b []byte, e *entry) []byte {
	var h [indexEntrySize]byte
	h[0] = uint8(len(e.Key))
	le.PutUint32(h[1:], e.Offset)
	le.PutUint32(h[5:], e.Length)
	le.PutUint32(h[9:], e.Previous)
	h[13] = e.Flags
	le.PutUint32(h[14:], e.DataID)
	le.PutUint32(h[18:], e.Timestamp)
	le.PutUint32(h[22:], e.CRC)
	le.PutUint32(h[26:], e.ParentID)
	le.PutUint32(h[30:], e.ParentOff)
	b = append(b, h[:]...)
	return append(b, e.Key...)
}

// decodeEntry decodes the entry at the start of b; the key aliases b.
func decodeEntry(b []byte) (entry, int, error) {
	if len(b) < indexEntrySize {
		return entry{}, 0, fmt.Errorf("%w: short index entry (%d bytes)", errFormat, len(b))
	}
	n := indexEntrySize + int(b[0])
	if len(b) < n {
		return entry{}, 0, fmt.Errorf("%w: index entry key truncated", errFormat)
	}
	e := entry{
		Offset:    le.Uint32(b[1:]),
		Length:    le.Uint32(b[5:]),
		Previous:  le.Uint32(b[9:]),
		Flags:     b[13],
		DataID:    le.Uint32(b[14:]),
		Timestamp: le.Uint32(b[18:]),
		CRC:       le.Uint32(b[22:]),
		ParentID:  le.Uint32(b[26:]),
		ParentOff: le.Uint32(b[30:]),
		Key:       b[indexEntrySize:n:n],
	}
	return e, n, nil
}

// record is a data record header (data_entry_header_t) decoded.
type record struct {
	KeyLen    uint8
	Length    uint32
	Previous  uint32
	CRC       uint32
	Flags     uint8
	Timestamp uint32
}

func appendRecord(b []byte, r *record, key, value []byte) []byte {
	var h [dataRecordSize]byte
	h[0] = uint8(len(key))
	le.PutUint32(h[1:], uint32(len(value)))
	le.PutUint32(h[5:], r.Previous)
	le.PutUint32(h[9:], r.CRC)
	h[13] = r.Flags
	le.PutUint32(h[14:], r.Timestamp)
	b = append(b, h[:]...)
	b = append(b, key...)
	return append(b, value...)
}

func decodeRecord(b []byte) (record, error) {
	if len(b) < dataRecordSize {
		return record{}, fmt.Errorf("%w: short data record header", errFormat)
	}
	return record{
		KeyLen:    b[0],
		Length:    le.Uint32(b[1:]),
		Previous:  le.Uint32(b[5:]),
		CRC:       le.Uint32(b[9:]),
		Flags:     b[13],
		Timestamp: le.Uint32(b[14:]),
	}, nil
}

func appendDataHeader(b []byte, id uint32) []byte {
	var h [dataHeaderSize]byte
	copy(h[:], dataMagic[:])
	le.PutUint32(h[4:], dataVersion)
	le.PutUint32(h[24:], id)
	return append(b, h[:]...)
}

func appendIndexHeader(b []byte, id uint32, m Mode) []byte {
	var h [indexHeaderSize]byte
	copy(h[:], indexMagic[:])
	le.PutUint32(h[4:], indexVersion)
	le.PutUint32(h[24:], id)
	h[28] = uint8(m)
	return append(b, h[:]...)
}

func checkDataHeader(b []byte, id uint32) error {
	if len(b) < dataHeaderSize {
		return fmt.Errorf("%w: data file shorter than its header", errFormat)
	}
	if [4]byte(b[:4]) != dataMagic {
		return fmt.Errorf("%w: data file magic %q", errFormat, b[:4])
	}
	if v := le.Uint32(b[4:]); v != dataVersion {
		return fmt.Errorf("%w: data file version %d (want %d)", errFormat, v, dataVersion)
	}
	if got := le.Uint32(b[24:]); got != id {
		return fmt.Errorf("%w: data file id %d in header of file %d", errFormat, got, id)
	}
	return nil
}

// checkIndexHeader validates an index header and returns its mode.
func checkIndexHeader(b []byte, id uint32) (Mode, error) {
	if len(b) < indexHeaderSize {
		return 0, fmt.Errorf("%w: index file shorter than its header", errFormat)
	}
	if [4]byte(b[:4]) != indexMagic {
		return 0, fmt.Errorf("%w: index file magic %q", errFormat, b[:4])
	}
	if v := le.Uint32(b[4:]); v != indexVersion {
		return 0, fmt.Errorf("%w: index file version %d (want %d)", errFormat, v, indexVersion)
	}
	if got := le.Uint32(b[24:]); got != id {
		return 0, fmt.Errorf("%w: index file id %d in header of file %d", errFormat, got, id)
	}
	m := Mode(b[28])
	if m != ModeUser && m != ModeSeq {
		return 0, fmt.Errorf("%w: index file mode %d", errFormat, m)
	}
	return m, nil
}

// descriptor is the zdb-namespace file.
type descriptor struct {
	Name     string
	Password string // clear text, as 0-db stores it
	MaxSize  uint64
	Public   bool
	Worm     bool
}

func (d *descriptor) encode() []byte {
	b := make([]byte, descHeaderSize, descHeaderSize+len(d.Name)+len(d.Password))
	le.PutUint32(b, descVersion)
	b[4] = uint8(len(d.Name))
	b[5] = uint8(len(d.Password))
	le.PutUint64(b[6:], d.MaxSize)
	flags := uint8(descExtended)
	if d.Public {
		flags |= descPublic
	}
	if d.Worm {
		flags |= descWorm
	}
	b[14] = flags
	b = append(b, d.Name...)
	return append(b, d.Password...)
}

func decodeDescriptor(b []byte) (descriptor, error) {
	if len(b) < descHeaderSize {
		return descriptor{}, fmt.Errorf("%w: namespace descriptor too short", errFormat)
	}
	if v := le.Uint32(b); v != descVersion {
		return descriptor{}, fmt.Errorf("%w: namespace descriptor version %d", errFormat, v)
	}
	nl, pl := int(b[4]), int(b[5])
	if len(b) < descHeaderSize+nl+pl {
		return descriptor{}, fmt.Errorf("%w: namespace descriptor truncated", errFormat)
	}
	return descriptor{
		Name:     string(b[descHeaderSize : descHeaderSize+nl]),
		Password: string(b[descHeaderSize+nl : descHeaderSize+nl+pl]),
		MaxSize:  le.Uint64(b[6:]),
		Public:   b[14]&descPublic != 0,
		Worm:     b[14]&descWorm != 0,
	}, nil
}

// valueOffset is where the value of the data record at off, whose key is
// keyLen bytes, starts in its data file: after the record header and key.
func valueOffset(off uint32, keyLen int) int64 {
	return int64(off) + dataRecordSize + int64(keyLen)
}
