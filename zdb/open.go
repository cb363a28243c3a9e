package zdb

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"

	"github.com/zosgrid/zos/internal/atomicfile"
)

// Repair describes a torn or corrupt tail cut off when a namespace opened.
type Repair struct {
	Namespace string
	File      string
	From, To  int64 // the file was truncated from To bytes down to From
	Reason    string
}

func (r Repair) String() string {
	return fmt.Sprintf("%s: %s truncated from %d to %d bytes: %s", r.Namespace, r.File, r.To, r.From, r.Reason)
}

// listFiles returns the sorted ids of files named prefix+N in dir.
func listFiles(dir, prefix string) ([]uint32, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			return nil, nil
		}
		return nil, err
	}
	var ids []uint32
	for _, de := range des {
		n := de.Name()
		if !strings.HasPrefix(n, prefix) || de.IsDir() {
			continue
		}
		id, err := strconv.ParseUint(n[len(prefix):], 10, 32)
		if err != nil || strconv.FormatUint(id, 10) != n[len(prefix):] {
			continue
		}
		ids = append(ids, uint32(id))
	}
	sort.Slice(ids, func(i, j int) bool { return ids[i] < ids[j] })
	return ids, nil
}

// parsedIndex is one index file read whole.
type parsedIndex struct {
	id   uint32
	mode Mode
	buf  []byte
	offs []uint32 // entry offsets
	bad  int64    // offset of an unparsable tail, or -1
}

func parseIndexFile(path string, id uint32) (*parsedIndex, error) {
	buf, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	p := &parsedIndex{id: id, buf: buf, bad: -1}
	m, err := checkIndexHeader(buf, id)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	p.mode = m
	off := indexHeaderSize
	for off < len(buf) {
		_, n, err := decodeEntry(buf[off:])
		if err != nil {
			p.bad = int64(off)
			break
		}
		p.offs = append(p.offs, uint32(off))
		off += n
	}
	return p, nil
}

// openNamespace opens (creating when create is set) a namespace and replays
// its index.
func (db *DB) openNamespace(name string, create bool) (*Namespace, error) {
	ns := &Namespace{
		db:       db,
		name:     name,
		idxDir:   filepath.Join(db.opts.IndexDir, name),
		dataDir:  filepath.Join(db.opts.DataDir, name),
		log:      db.log.With("ns", name),
		keys:     newKeyIndex(),
		idxSizes: map[uint32]int64{},
		lastIdx:  map[uint32]uint32{},
		dirty:    map[uint32]uint64{},
		files:    map[fileKey]*os.File{},
		maps:     map[uint32]*mapping{},
		cacheGen: db.cacheGen.Add(1),
	}
	descPath := filepath.Join(ns.idxDir, descFile)
	raw, err := os.ReadFile(descPath)
	switch {
	case err == nil:
		if ns.desc, err = decodeDescriptor(raw); err != nil {
			return nil, fmt.Errorf("%s: %w", descPath, err)
		}
	case errors.Is(err, fs.ErrNotExist):
		if !create {
			return nil, fmt.Errorf("%w: %s", ErrNamespaceNotFound, name)
		}
		ns.desc = descriptor{Name: name, Public: true}
		if err := os.MkdirAll(ns.idxDir, 0o700); err != nil {
			return nil, err
		}
		if err := atomicfile.Write(descPath, ns.desc.encode(), 0o600); err != nil {
			return nil, err
		}
	default:
		return nil, err
	}
	if err := os.MkdirAll(ns.dataDir, 0o700); err != nil {
		return nil, err
	}
	if ns.side, err = loadSide(ns.idxDir); err != nil {
		return nil, err
	}
	rolled, err := recoverCompaction(ns)
	if err != nil {
		return nil, err
	}
	if err := ns.replay(); err != nil {
		ns.closeFiles()
		return nil, err
	}
	// Followers must not keep bytes this open cut or rewrote.
	switch {
	case rolled:
		err = ns.bumpGeneration()
	case ns.repaired:
		err = ns.recordCut(ns.curID, uint32(ns.dataEnd))
	}
	if err != nil {
		ns.closeFiles()
		return nil, err
	}
	return ns, nil
}

// replay loads the index files, repairs a torn tail and sets the write
// position.
func (ns *Namespace) replay() error {
	ids, err := listFiles(ns.idxDir, "i")
	if err != nil {
		return err
	}
	if len(ids) == 0 {
		return ns.initFresh()
	}
	ns.mode = ModeUser
	ns.firstID = ids[0]
	var lastP *parsedIndex
	for i, id := range ids {
		if i == len(ids)-1 {
			mode := ns.mode
			if i == 0 {
				mode = ns.db.defaultMode()
			}
			if err := ns.repairTornCreate(id, mode); err != nil {
				return err
			}
		}
		p, err := parseIndexFile(indexPath(ns.idxDir, id), id)
		if err != nil {
			return err
		}
		if i == 0 {
			ns.mode = p.mode
		} else if p.mode != ns.mode {
			return fmt.Errorf("%w: index file %d has mode %s, namespace is %s", errFormat, id, p.mode, ns.mode)
		}
		last := i == len(ids)-1
		if !last && p.bad >= 0 {
			return fmt.Errorf("%w: index file %d is corrupt at offset %d (not the last file: cannot repair)", ErrCorrupt, id, p.bad)
		}
		if last {
			if err := ns.repairTail(p); err != nil {
				return err
			}
		}
		if ns.mode == ModeSeq {
			ns.seqmap = append(ns.seqmap, seqFile{first: ns.nextID, file: id})
		}
		for _, off := range p.offs {
			e, _, _ := decodeEntry(p.buf[off:])
			ns.replayEntry(id, off, &e)
		}
		size := int64(indexHeaderSize)
		if n := len(p.offs); n > 0 {
			lo := p.offs[n-1]
			size = int64(lo) + indexEntrySize + int64(p.buf[lo])
			ns.lastIdx[id] = lo
			ns.idxPrev = lo
		}
		ns.idxSizes[id] = size
		ns.curID = id
		ns.idxEnd = size
		if last {
			lastP = p
		}
	}
	if err := ns.removeOrphanDataFiles(); err != nil {
		return err
	}
	if err := ns.repairDataTail(lastP); err != nil {
		return err
	}
	if ns.mode == ModeUser {
		ns.entries = int64(ns.keys.len())
		ns.keys.each(func(k []byte, l loc) {
			ns.payload += int64(l.length)
			ns.keyBytes += int64(len(k))
		})
	}
	return nil
}

func (ns *Namespace) replayEntry(id, off uint32, e *entry) {
	if ns.mode == ModeSeq {
		ns.nextID++
		// Only entries whose key names their own position are live.
		if !e.deleted() && len(e.Key) == SeqKeySize && le.Uint64(e.Key) == ns.nextID-1 {
			ns.entries++
			ns.keyBytes += SeqKeySize
			ns.payload += int64(e.Length)
		}
		return
	}
	ns.nextID++
	if e.deleted() {
		ns.keys.del(e.Key)
		return
	}
	ns.keys.put(e.Key, loc{file: id, idxOff: off, dataID: id, dataOff: e.Offset,
		length: e.Length, crc: e.CRC, ts: e.Timestamp})
}

// initFresh writes the first index and data files of an empty namespace.
func (ns *Namespace) initFresh() error {
	ns.mode = ns.db.defaultMode()
	ns.curID, ns.firstID = 0, 0
	if err := os.WriteFile(indexPath(ns.idxDir, 0), appendIndexHeader(nil, 0, ns.mode), 0o600); err != nil {
		return err
	}
	if err := os.WriteFile(dataPath(ns.dataDir, 0), appendDataHeader(nil, 0), 0o600); err != nil {
		return err
	}
	ns.idxEnd, ns.dataEnd = indexHeaderSize, dataHeaderSize
	ns.idxSizes[0] = indexHeaderSize
	if ns.mode == ModeSeq {
		ns.seqmap = []seqFile{{first: 0, file: 0}}
	}
	return nil
}

// repairTail checks the last index file against its data file: entries whose
// record lies past the end of the data file or fails its CRC are cut from the
// end. repairDataTail then cuts the data file after replay.
func (ns *Namespace) repairTail(p *parsedIndex) error {
	dpath := dataPath(ns.dataDir, p.id)
	df, err := os.OpenFile(dpath, os.O_RDWR, 0o600)
	if errors.Is(err, fs.ErrNotExist) {
		if err := os.WriteFile(dpath, appendDataHeader(nil, p.id), 0o600); err != nil {
			return err
		}
		df, err = os.OpenFile(dpath, os.O_RDWR, 0o600)
	}
	if err != nil {
		return err
	}
	defer df.Close()
	fi, err := df.Stat()
	if err != nil {
		return err
	}
	data := &fileView{f: df, size: fi.Size()}
	hdr := make([]byte, dataHeaderSize)
	if _, err := df.ReadAt(hdr, 0); err != nil {
		return fmt.Errorf("%s: %w: %v", dpath, errFormat, err)
	}
	if err := checkDataHeader(hdr, p.id); err != nil {
		return fmt.Errorf("%s: %w", dpath, err)
	}
	ipath := indexPath(ns.idxDir, p.id)
	cut := p.bad
	reason := "unparsable index entry"
	// Walk back from the end: drop entries until one checks out.
	for len(p.offs) > 0 {
		off := p.offs[len(p.offs)-1]
		e, _, _ := decodeEntry(p.buf[off:])
		e.fixDataID(p.mode, p.id)
		if e.DataID != p.id || data.recordOK(&e) {
			break
		}
		cut, reason = int64(off), "index entry points at a missing or corrupt data record"
		p.offs = p.offs[:len(p.offs)-1]
	}
	if cut >= 0 {
		if err := os.Truncate(ipath, cut); err != nil {
			return err
		}
		ns.reportRepair(Repair{Namespace: ns.name, File: ipath, From: cut, To: int64(len(p.buf)), Reason: reason})
		p.buf = p.buf[:cut]
	}
	return nil
}

// repairTornCreate gives the last file pair back its headers when a crash
// hit between creating a file (rotation, FLUSH) and writing its header:
// such a file holds no acknowledged record.
func (ns *Namespace) repairTornCreate(id uint32, mode Mode) error {
	for _, f := range []struct {
		path   string
		header []byte
	}{
		{indexPath(ns.idxDir, id), appendIndexHeader(nil, id, mode)},
		{dataPath(ns.dataDir, id), appendDataHeader(nil, id)},
	} {
		fi, err := os.Stat(f.path)
		if errors.Is(err, fs.ErrNotExist) {
			continue // a missing data file is recreated by repairTail
		}
		if err != nil {
			return err
		}
		if fi.Size() >= int64(len(f.header)) {
			continue
		}
		if err := atomicfile.Write(f.path, f.header, 0o600); err != nil {
			return err
		}
		ns.reportRepair(Repair{Namespace: ns.name, File: f.path, From: 0, To: fi.Size(),
			Reason: "file created but its header never written (crash during rotation or flush)"})
	}
	return nil
}

// removeOrphanDataFiles deletes data files newer than the last index file:
// a crash during rotation can leave one, and its records were never
// acknowledged.
func (ns *Namespace) removeOrphanDataFiles() error {
	ids, err := listFiles(ns.dataDir, "d")
	if err != nil {
		return err
	}
	for _, id := range ids {
		if id <= ns.curID {
			continue
		}
		p := dataPath(ns.dataDir, id)
		fi, _ := os.Stat(p)
		if err := os.Remove(p); err != nil {
			return err
		}
		size := int64(0)
		if fi != nil {
			size = fi.Size()
		}
		ns.reportRepair(Repair{Namespace: ns.name, File: p, From: 0, To: size, Reason: "data file without an index file"})
	}
	return nil
}

// repairDataTail cuts the last data file after its last record that is
// accounted for: records the index references, then tombstones whose delete
// reached the index (and, in seq mode, updates whose entry reached it).
// Orphans (a crash between the data and the index write: never
// acknowledged), torn and corrupt records are cut. It sets dataEnd and
// dataPrev.
func (ns *Namespace) repairDataTail(p *parsedIndex) error {
	dpath := dataPath(ns.dataDir, p.id)
	df, err := os.OpenFile(dpath, os.O_RDWR, 0o600)
	if err != nil {
		return err
	}
	defer df.Close()
	fi, err := df.Stat()
	if err != nil {
		return err
	}
	data := &fileView{f: df, size: fi.Size()}
	end := int64(dataHeaderSize)
	prev := uint32(0)
	for i := len(p.offs) - 1; i >= 0; i-- {
		e, _, _ := decodeEntry(p.buf[p.offs[i]:])
		e.fixDataID(p.mode, p.id)
		if e.DataID == p.id && int64(e.Offset) >= end {
			end = valueOffset(e.Offset, len(e.Key)) + int64(e.Length)
			prev = e.Offset
		}
	}
	reason := "torn or corrupt data record at the tail"
	for {
		n, r, key, ok := data.validRecord(end)
		if !ok {
			break
		}
		if !ns.accounted(r, key, p.id, uint32(end)) {
			reason = "data record never indexed (crash between data and index write)"
			break
		}
		prev = uint32(end)
		end += n
	}
	if end < data.size {
		if err := df.Truncate(end); err != nil {
			return err
		}
		ns.reportRepair(Repair{Namespace: ns.name, File: dpath, From: end, To: data.size, Reason: reason})
	}
	ns.dataEnd, ns.dataPrev = end, prev
	return nil
}

// accounted reports whether a data record past the last indexed one is
// reflected in the replayed index.
func (ns *Namespace) accounted(r record, key []byte, file, off uint32) bool {
	if ns.mode == ModeSeq {
		// The entry at the id's position, deleted or not, tells: an update
		// is accounted for once the entry points at it, a delete once the
		// entry is flagged.
		e, _, _, err := ns.seqEntryRaw(key)
		if err != nil {
			return false
		}
		if r.Flags&flagDeleted != 0 {
			return e.deleted()
		}
		return e.DataID == file && e.Offset == off
	}
	if r.Flags&flagDeleted == 0 {
		return false
	}
	_, live := ns.keys.get(key)
	return !live
}

// fileView reads records of a data file by offset.
type fileView struct {
	f    *os.File
	size int64
}

func (v *fileView) read(off, n int64) ([]byte, bool) {
	if off < 0 || n < 0 || off+n > v.size {
		return nil, false
	}
	b := make([]byte, n)
	if _, err := v.f.ReadAt(b, off); err != nil {
		return nil, false
	}
	return b, true
}

// validRecord reports whether a well-formed record with a good CRC starts
// at off, and returns its size, header and key.
func (v *fileView) validRecord(off int64) (int64, record, []byte, bool) {
	h, ok := v.read(off, dataRecordSize)
	if !ok {
		return 0, record{}, nil, false
	}
	r, _ := decodeRecord(h)
	if r.Length > MaxValueSize {
		return 0, r, nil, false
	}
	n := int64(dataRecordSize) + int64(r.KeyLen) + int64(r.Length)
	body, ok := v.read(off+dataRecordSize, int64(r.KeyLen)+int64(r.Length))
	if !ok || CRC(body[r.KeyLen:]) != r.CRC {
		return 0, r, nil, false
	}
	return n, r, body[:r.KeyLen], true
}

// recordOK reports whether an entry's data record is in the file, matches
// the entry and passes its CRC.
func (v *fileView) recordOK(e *entry) bool {
	start := int64(e.Offset)
	if start < dataHeaderSize {
		return false
	}
	h, ok := v.read(start, dataRecordSize)
	if !ok {
		return false
	}
	r, _ := decodeRecord(h)
	if int(r.KeyLen) != len(e.Key) || r.Length != e.Length {
		return false
	}
	payload, ok := v.read(start+dataRecordSize+int64(r.KeyLen), int64(e.Length))
	return ok && CRC(payload) == e.CRC
}

func (ns *Namespace) reportRepair(r Repair) {
	ns.repaired = true
	ns.log.Warn("zdb truncated a torn tail", "file", r.File, "from", r.To, "to", r.From, "reason", r.Reason)
	ns.db.repairsMu.Lock()
	ns.db.repairs = append(ns.db.repairs, r)
	ns.db.repairsMu.Unlock()
}
