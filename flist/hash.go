package flist

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"hash"
	"math"

	"golang.org/x/crypto/blake2b"
)

// Hash is the canonical metadata hash of an flist.
type Hash [32]byte

// String returns the hash in hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return h, fmt.Errorf("flist: hash must be %d hex digits", 2*len(h))
	}
	copy(h[:], b)
	return h, nil
}

const hashDomain = "zos-flist-metadata-v1\x00"

// hashedTables lists, in hashing order, each table and its query. Missing
// tables hash like empty ones, so an rfs flist keeps its hash when zos adds
// its (empty) tables.
var hashedTables = []struct{ name, query string }{
	{"inode", "select ino, parent, name, size, uid, gid, mode, rdev, ctime, mtime from inode order by ino"},
	{"extra", "select ino, data from extra order by ino"},
	{"block", "select ino, id, key from block order by ino, rowid"},
	{"tag", "select key, value from tag order by key"},
	{"route", "select start, end, url from route order by rowid"},
	{"zos_xattr", "select ino, name, value from zos_xattr order by ino, name"},
	{"zos_hardlink", "select ino, target from zos_hardlink order by ino"},
	{"zos_meta", "select key, value from zos_meta order by key"},
}

// Hash computes the canonical metadata hash. Encoding: the domain string;
// then for each table of hashedTables in order: its name (length-prefixed),
// then each row as 0x01 followed by its fields, then 0x00. A field is one
// type byte and a value: 0 NULL; 1 integer, 8 bytes big-endian; 2 text or
// blob, 8-byte big-endian length then the bytes; 3 real, 8 bytes of IEEE 754
// bits. Length prefixes are 8 bytes big-endian.
func (f *FList) Hash(ctx context.Context) (Hash, error) {
	// Verifying a signature and mounting both need it: one pass over
	// the metadata (7 ms for 2000 files) is enough while nothing here
	// can change it.
	f.hashMu.Lock()
	defer f.hashMu.Unlock()
	if f.hash != nil {
		return *f.hash, nil
	}
	h, err := f.computeHash(ctx)
	if err == nil && f.ro {
		f.hash = &h
	}
	return h, err
}

func (f *FList) computeHash(ctx context.Context) (Hash, error) {
	h, _ := blake2b.New256(nil)
	h.Write([]byte(hashDomain))
	for _, t := range hashedTables {
		writeBytes(h, []byte(t.name))
		if f.tables[t.name] {
			if err := f.hashTable(ctx, h, t.query); err != nil {
				return Hash{}, fmt.Errorf("flist: hash %s: %w", t.name, err)
			}
		}
		h.Write([]byte{0})
	}
	var out Hash
	copy(out[:], h.Sum(nil))
	return out, nil
}

func (f *FList) hashTable(ctx context.Context, h hash.Hash, q string) error {
	rows, err := f.db.QueryContext(ctx, q)
	if err != nil {
		return err
	}
	defer rows.Close()
	cols, err := rows.Columns()
	if err != nil {
		return err
	}
	vals := make([]any, len(cols))
	ptrs := make([]any, len(cols))
	for i := range vals {
		ptrs[i] = &vals[i]
	}
	var num [9]byte
	for rows.Next() {
		if err := rows.Scan(ptrs...); err != nil {
			return err
		}
		h.Write([]byte{1})
		for _, v := range vals {
			switch v := v.(type) {
			case nil:
				h.Write([]byte{0})
			case int64:
				num[0] = 1
				binary.BigEndian.PutUint64(num[1:], uint64(v))
				h.Write(num[:])
			case float64:
				num[0] = 3
				binary.BigEndian.PutUint64(num[1:], math.Float64bits(v))
				h.Write(num[:])
			case []byte:
				h.Write([]byte{2})
				writeBytes(h, v)
			case string:
				h.Write([]byte{2})
				writeBytes(h, []byte(v))
			case bool:
				num[0] = 1
				var b uint64
				if v {
					b = 1
				}
				binary.BigEndian.PutUint64(num[1:], b)
				h.Write(num[:])
			default:
				return fmt.Errorf("%w: unexpected column type %T", ErrInvalid, v)
			}
		}
	}
	return rows.Err()
}

func writeBytes(h hash.Hash, b []byte) {
	var n [8]byte
	binary.BigEndian.PutUint64(n[:], uint64(len(b)))
	h.Write(n[:])
	h.Write(b)
}
