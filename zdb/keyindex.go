package zdb

import (
	"bytes"
	"hash/maphash"
)

// keyIndex is the in-RAM user-key index: an open-addressing table of 8-byte
// slots (32-bit hash tag | 32-bit arena offset) over a byte arena holding,
// per key, a record: u8 flags | u8 keylen | 28-byte loc | key. A 16-byte
// key costs 46 arena bytes plus about 11 bytes of table: no per-key
// allocation and no pointers for the garbage collector to chase. Deleted
// records are reclaimed when they make up half the arena.
//
// The arena is a list of chunks of at most 1 MiB (an offset is chunk<<20 |
// offset in chunk), so that growing it never copies what it holds: one
// contiguous arena made every few-thousandth SET copy, and fault in, the
// whole index.
type keyIndex struct {
	seed    maphash.Seed
	slots   []uint64 // 0 empty, 1 tombstone, else tag<<32 | offset+1
	chunks  [][]byte // records never span two chunks
	size    int      // arena bytes in use, over all chunks
	count   int      // live keys
	used    int      // live + tombstone slots
	garbage int      // arena bytes of deleted records
}

const (
	kiHeader    = 2 + 28
	kiTombstone = 1
	kiDeleted   = 1
	kiChunkBits = 20
	kiChunkSize = 1 << kiChunkBits
	kiMaxChunks = 1<<(32-kiChunkBits) - 1 // offsets+1 fit the slot's 32 bits
)

func newKeyIndex() *keyIndex {
	return &keyIndex{seed: maphash.MakeSeed(), slots: make([]uint64, 64)}
}

// rec returns the arena from the record at offset o to its chunk's end.
func (ki *keyIndex) rec(o int) []byte {
	return ki.chunks[o>>kiChunkBits][o&(kiChunkSize-1):]
}

// alloc appends n zero bytes for a record and returns its offset and bytes.
func (ki *keyIndex) alloc(n int) (int, []byte) {
	last := len(ki.chunks) - 1
	if last < 0 || len(ki.chunks[last])+n > kiChunkSize {
		if len(ki.chunks) >= kiMaxChunks {
			panic("zdb: key index arena exceeds 4 GiB") // ~90 M keys; invariant, not input
		}
		// The first chunk grows with the index; later ones are full size.
		c := 0
		if last >= 0 {
			c = kiChunkSize
		}
		ki.chunks = append(ki.chunks, make([]byte, 0, c))
		last++
	}
	c := ki.chunks[last]
	off := len(c)
	c = append(c, make([]byte, n)...)
	ki.chunks[last] = c
	ki.size += n
	return last<<kiChunkBits | off, c[off : off+n]
}

func (ki *keyIndex) hash(key []byte) (uint64, uint32) {
	h := maphash.Bytes(ki.seed, key)
	return h, uint32(h>>32) | 0x80000000
}

func (ki *keyIndex) find(key []byte, h uint64, tag uint32) (slot int, off int, ok bool) {
	mask := uint64(len(ki.slots) - 1)
	firstTomb := -1
	for i := h & mask; ; i = (i + 1) & mask {
		s := ki.slots[i]
		switch {
		case s == 0:
			if firstTomb >= 0 {
				return firstTomb, -1, false
			}
			return int(i), -1, false
		case s == kiTombstone:
			if firstTomb < 0 {
				firstTomb = int(i)
			}
		case uint32(s>>32) == tag:
			if o := int(uint32(s)) - 1; ki.holds(o, key) {
				return int(i), o, true
			}
		}
	}
}

// holds says whether the record at offset o is key's.
func (ki *keyIndex) holds(o int, key []byte) bool {
	r := ki.rec(o)
	kl := int(r[1])
	return kl == len(key) && bytes.Equal(r[kiHeader:kiHeader+kl], key)
}

func putLoc(b []byte, l loc) {
	le.PutUint32(b[0:], l.file)
	le.PutUint32(b[4:], l.idxOff)
	le.PutUint32(b[8:], l.dataID)
	le.PutUint32(b[12:], l.dataOff)
	le.PutUint32(b[16:], l.length)
	le.PutUint32(b[20:], l.crc)
	le.PutUint32(b[24:], l.ts)
}

func getLoc(b []byte) loc {
	return loc{file: le.Uint32(b[0:]), idxOff: le.Uint32(b[4:]), dataID: le.Uint32(b[8:]),
		dataOff: le.Uint32(b[12:]), length: le.Uint32(b[16:]), crc: le.Uint32(b[20:]), ts: le.Uint32(b[24:])}
}

func (ki *keyIndex) get(key []byte) (loc, bool) {
	h, tag := ki.hash(key)
	_, o, ok := ki.find(key, h, tag)
	if !ok {
		return loc{}, false
	}
	return getLoc(ki.rec(o)[2:]), true
}

// put inserts or updates key.
func (ki *keyIndex) put(key []byte, l loc) {
	h, tag := ki.hash(key)
	slot, o, ok := ki.find(key, h, tag)
	if ok {
		putLoc(ki.rec(o)[2:], l)
		return
	}
	off, r := ki.alloc(kiHeader + len(key))
	r[1] = byte(len(key))
	putLoc(r[2:], l)
	copy(r[kiHeader:], key)
	if ki.slots[slot] == 0 {
		ki.used++
	}
	ki.slots[slot] = uint64(tag)<<32 | uint64(off+1)
	ki.count++
	if ki.used*4 >= len(ki.slots)*3 {
		ki.rebuild()
	}
}

// del removes key and reports whether it was there.
func (ki *keyIndex) del(key []byte) bool {
	h, tag := ki.hash(key)
	slot, o, ok := ki.find(key, h, tag)
	if !ok {
		return false
	}
	ki.rec(o)[0] |= kiDeleted
	ki.garbage += kiHeader + len(key)
	ki.slots[slot] = kiTombstone
	ki.count--
	if ki.garbage > 4096 && ki.garbage*2 > ki.size {
		ki.rebuild()
	}
	return true
}

// rebuild resizes the table for the live keys and drops deleted records.
func (ki *keyIndex) rebuild() {
	size := 64
	for size*3 <= ki.count*4*2 { // keep load at most 3/8 right after
		size *= 2
	}
	old := ki.chunks
	compact := ki.garbage > 0
	if compact {
		ki.chunks, ki.size = nil, 0
	}
	ki.slots = make([]uint64, size)
	ki.used, ki.garbage = 0, 0
	mask := uint64(size - 1)
	for ci, c := range old {
		for o := 0; o < len(c); {
			kl := int(c[o+1])
			n := kiHeader + kl
			if c[o]&kiDeleted == 0 {
				key := c[o+kiHeader : o+n]
				off := ci<<kiChunkBits | o
				if compact {
					var r []byte
					off, r = ki.alloc(n)
					copy(r, c[o:o+n])
				}
				h, tag := ki.hash(key)
				i := h & mask
				for ki.slots[i] != 0 {
					i = (i + 1) & mask
				}
				ki.slots[i] = uint64(tag)<<32 | uint64(off+1)
				ki.used++
			}
			o += n
		}
	}
}

// each calls fn for every live key; key aliases the arena and fn must not
// change the index.
func (ki *keyIndex) each(fn func(key []byte, l loc)) {
	for _, c := range ki.chunks {
		for o := 0; o < len(c); {
			kl := int(c[o+1])
			n := kiHeader + kl
			if c[o]&kiDeleted == 0 {
				fn(c[o+kiHeader:o+n], getLoc(c[o+2:]))
			}
			o += n
		}
	}
}

func (ki *keyIndex) len() int { return ki.count }

// memory is the index's size in bytes.
func (ki *keyIndex) memory() int64 {
	n := int64(len(ki.slots)) * 8
	for _, c := range ki.chunks {
		n += int64(cap(c))
	}
	return n
}

// prefetchMax is the most keys prefetch takes at once.
const prefetchMax = 32

// prefetch looks up keys (at most prefetchMax) together: locs[i] is where
// keys[i] is, ok[i] false if it is absent. One get pays two dependent cache
// misses, the slot and then the record; here the slots of all keys are
// loaded first, then the records the slots point to, so that the misses of
// all keys overlap instead of following each other.
func (ki *keyIndex) prefetch(keys [][]byte, locs []loc, ok []bool) {
	mask := uint64(len(ki.slots) - 1)
	var hs, slot [prefetchMax]uint64
	var tags [prefetchMax]uint32
	for i, k := range keys {
		hs[i], tags[i] = ki.hash(k)
		slot[i] = ki.slots[hs[i]&mask]
	}
	var flags [prefetchMax]byte
	var loaded [prefetchMax]bool
	for i := range keys {
		if s := slot[i]; s > kiTombstone && uint32(s>>32) == tags[i] {
			flags[i], loaded[i] = ki.rec(int(uint32(s)) - 1)[0], true
		}
	}
	for i, k := range keys {
		o := int(uint32(slot[i])) - 1
		found := loaded[i] && flags[i]&kiDeleted == 0 && ki.holds(o, k)
		if !found {
			_, o, found = ki.find(k, hs[i], tags[i])
		}
		if ok[i] = found; found {
			locs[i] = getLoc(ki.rec(o)[2:])
		}
	}
}
