package zdb

import (
	"errors"
	"io/fs"
	"os"
	"runtime/debug"
	"strconv"
	"syscall"
)

// mapping is a read-only shared map of one data file. GETs copy values out
// of it instead of calling pread: the page cache serves them without a
// system call, so the value cache need not keep a second copy.
//
// Data files are append-only: bytes below size never change, and the file
// only grows while it is the current one. The map is made once, for the
// current file as long as it may grow (DataSize), so it never has to
// move; bytes past size, beyond the file's end, are never touched (they
// would raise SIGBUS). A file shortened or failing under us (outside writes, I/O
// errors) still faults: copyMapped turns that fault into a fallback to
// pread, which reports the error.
//
// Lifetime: a map is only read by readAt, whose callers hold ns.mu, and
// only unmapped by closeFiles, whose callers hold ns.mu for writing (or
// closed the namespace under it). Every path that removes, renames or
// truncates a data file of an open namespace goes through closeFiles
// first.
type mapping struct {
	b    []byte // nil: the file could not be mapped, use pread
	size int64  // bytes known to be in the file; guarded by ns.fileMu
}

// mapFiles is false where address space is too scarce to map files of up
// to 4 GiB each.
const mapFiles = strconv.IntSize == 64

// readsMapped says whether GETs read through maps (a file that cannot be
// mapped still falls back to pread).
func (ns *Namespace) readsMapped() bool { return mapFiles && !ns.db.opts.NoMap }

// readMapped copies dst from data file id at off through its map, making
// the map on first use. It reports false when the bytes must be read with
// pread instead. Caller holds ns.mu.
func (ns *Namespace) readMapped(id uint32, off int64, dst []byte) bool {
	if !ns.readsMapped() || ns.closed {
		return false
	}
	ns.fileMu.Lock()
	m := ns.maps[id]
	if m == nil {
		m = ns.mapLocked(id)
	}
	size := m.size
	ns.fileMu.Unlock()
	end := off + int64(len(dst))
	if m.b == nil || off < 0 || end > size || end > int64(len(m.b)) {
		return false
	}
	return copyMapped(dst, m.b[off:end])
}

// mapLocked maps data file id. A failure is remembered as a mapping
// without bytes so that reads fall back to pread without retrying, except
// a missing file: the pread path calls the missing-data hook, which may
// bring it back, and the next read maps it. Caller holds ns.fileMu.
func (ns *Namespace) mapLocked(id uint32) *mapping {
	m := &mapping{}
	f, err := ns.fileLocked(false, id, false)
	if err != nil {
		if !errors.Is(err, fs.ErrNotExist) {
			ns.maps[id] = m
		}
		return m
	}
	ns.maps[id] = m
	fi, err := f.Stat()
	if err != nil {
		return m
	}
	// Only the current file grows (ns.mu, held, guards curID).
	length := fi.Size()
	if id >= ns.curID {
		length = max(length, ns.db.opts.DataSize)
	}
	page := int64(os.Getpagesize())
	length = (length + page - 1) / page * page
	if length <= 0 || length > 1<<40 {
		return m
	}
	b, err := syscall.Mmap(int(f.Fd()), 0, int(length), syscall.PROT_READ, syscall.MAP_SHARED)
	if err != nil {
		ns.log.Warn("zdb cannot map data file, reading it with pread", "file", id, "err", err)
		return m
	}
	m.b, m.size = b, fi.Size()
	return m
}

// grewData records that data file id now holds at least end bytes (its
// appends were written), so that its map may serve them.
func (ns *Namespace) grewData(id uint32, end int64) {
	ns.fileMu.Lock()
	if m := ns.maps[id]; m != nil && end > m.size {
		m.size = end
	}
	ns.fileMu.Unlock()
}

// unmapLocked drops every map. Caller holds ns.fileMu, and ns.mu for
// writing (or the namespace is closed), so no reader is using them.
func (ns *Namespace) unmapLocked() error {
	var first error
	for id, m := range ns.maps {
		if m.b != nil {
			if err := syscall.Munmap(m.b); err != nil && first == nil {
				first = err
			}
		}
		delete(ns.maps, id)
	}
	return first
}

// copyMapped copies src, part of a map, to dst. A fault while reading the
// map (the file was shortened behind our back, or the disk failed) is
// reported as false instead of crashing the process.
func copyMapped(dst, src []byte) (ok bool) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() {
		if recover() != nil {
			ok = false
		}
	}()
	copy(dst, src)
	return true
}

// Prefetch brings into the CPU cache what GETs of keys (the first
// prefetchMax of them) will read: their index slots, index records and
// mapped values, all keys at once so that their cache misses overlap
// instead of each GET waiting for its own three in turn. A server calls it
// with the keys of a pipelined batch before running the batch. It changes
// nothing and reports nothing: a key it cannot help with is read as usual.
func (ns *Namespace) Prefetch(keys [][]byte) {
	if len(keys) < 2 || ns.mode == ModeSeq || !ns.readsMapped() {
		return
	}
	keys = keys[:min(len(keys), prefetchMax)]
	var locs [prefetchMax]loc
	var found [prefetchMax]bool
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	if ns.closed || ns.readable() != nil {
		return
	}
	ns.keys.prefetch(keys, locs[:len(keys)], found[:len(keys)])
	var values [prefetchMax][]byte
	n := 0
	ns.fileMu.Lock()
	for i, k := range keys {
		m := ns.maps[locs[i].dataID]
		if !found[i] || m == nil || m.b == nil {
			continue
		}
		off := valueOffset(locs[i].dataOff, len(k))
		end := off + int64(locs[i].length)
		if locs[i].length == 0 || end > m.size || end > int64(len(m.b)) {
			continue
		}
		values[n] = m.b[off:end]
		n++
	}
	ns.fileMu.Unlock()
	touchMapped(values[:n])
}

// touchMapped reads the first and last byte of each value, which loads
// their pages' translations and first and last cache lines (the hardware
// prefetcher follows a sequential copy from there). Like copyMapped it
// survives a fault. Its result only keeps the loads from being optimized
// away; it is not inlined (it recovers), so callers may drop it.
func touchMapped(values [][]byte) (sum byte) {
	defer debug.SetPanicOnFault(debug.SetPanicOnFault(true))
	defer func() { recover() }()
	for _, v := range values {
		sum += v[0] + v[len(v)-1]
	}
	return sum
}
