package zdb

import (
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"sort"
)

// Report is the result of Verify.
type Report struct {
	Namespaces []string
	Entries    int // index entries checked
	Records    int // data records checked
	Problems   []string
}

// OK reports whether no problem was found.
func (r *Report) OK() bool { return len(r.Problems) == 0 }

func (r *Report) addf(format string, args ...any) {
	if len(r.Problems) < 1000 {
		r.Problems = append(r.Problems, fmt.Sprintf(format, args...))
	}
}

// Verify checks the namespaces under dataDir and indexDir without changing
// anything: descriptors, file headers, every index entry against its data
// record (bounds, key, length, CRC32C), every data record's CRC, history
// links, and that no file has a torn tail. An empty namespace list checks
// them all. The error is non-nil only when the directories cannot be read.
func Verify(dataDir, indexDir string, namespaces ...string) (*Report, error) {
	rep := &Report{}
	if len(namespaces) == 0 {
		des, err := os.ReadDir(indexDir)
		if err != nil {
			return nil, fmt.Errorf("zdb: verify: %w", err)
		}
		for _, de := range des {
			if de.IsDir() {
				namespaces = append(namespaces, de.Name())
			}
		}
	}
	sort.Strings(namespaces)
	for _, name := range namespaces {
		rep.Namespaces = append(rep.Namespaces, name)
		verifyNamespace(rep, name, filepath.Join(dataDir, name), filepath.Join(indexDir, name))
	}
	return rep, nil
}

func verifyNamespace(rep *Report, name, dataDir, idxDir string) {
	raw, err := os.ReadFile(filepath.Join(idxDir, descFile))
	if err != nil {
		rep.addf("%s: descriptor: %v", name, err)
	} else if _, err := decodeDescriptor(raw); err != nil {
		rep.addf("%s: descriptor: %v", name, err)
	}
	if _, err := loadSide(idxDir); err != nil {
		rep.addf("%s: side file: %v", name, err)
	}
	ids, err := listFiles(idxDir, "i")
	if err != nil {
		rep.addf("%s: %v", name, err)
		return
	}
	dids, _ := listFiles(dataDir, "d")
	if len(ids) == 0 {
		rep.addf("%s: no index file", name)
	}
	// Data files are streamed one at a time and then read by offset, so
	// memory stays bounded whatever their size.
	data := map[uint32]*fileView{}
	defer func() {
		for _, v := range data {
			v.f.Close()
		}
	}()
	for _, id := range dids {
		f, err := os.Open(dataPath(dataDir, id))
		if err != nil {
			rep.addf("%s: data file %d: %v", name, id, err)
			continue
		}
		fi, err := f.Stat()
		if err != nil {
			f.Close()
			rep.addf("%s: data file %d: %v", name, id, err)
			continue
		}
		v := &fileView{f: f, size: fi.Size()}
		data[id] = v
		verifyDataFile(rep, name, id, v)
	}
	index := map[uint32]*parsedIndex{}
	var mode Mode
	for i, id := range ids {
		p, err := parseIndexFile(indexPath(idxDir, id), id)
		if err != nil {
			rep.addf("%s: index file %d: %v", name, id, err)
			continue
		}
		index[id] = p
		if i == 0 {
			mode = p.mode
		} else if p.mode != mode {
			rep.addf("%s: index file %d: mode %s differs from %s", name, id, p.mode, mode)
		}
		if p.bad >= 0 {
			rep.addf("%s: index file %d: unparsable entry at offset %d (torn tail)", name, id, p.bad)
		}
		if _, ok := data[id]; !ok {
			rep.addf("%s: index file %d has no data file", name, id)
		}
	}
	for _, id := range ids {
		p := index[id]
		if p == nil {
			continue
		}
		for _, off := range p.offs {
			rep.Entries++
			e, _, _ := decodeEntry(p.buf[off:])
			e.fixDataID(mode, id)
			v, ok := data[e.DataID]
			if !ok {
				rep.addf("%s: index %d@%d: data file %d missing", name, id, off, e.DataID)
				continue
			}
			if err := v.checkEntry(&e); err != nil {
				rep.addf("%s: index %d@%d: %v", name, id, off, err)
			}
			if e.ParentID != 0 || e.ParentOff != 0 {
				pp := index[e.ParentID]
				if pp == nil || !containsOff(pp.offs, e.ParentOff) {
					rep.addf("%s: index %d@%d: history link %d@%d points at no entry", name, id, off, e.ParentID, e.ParentOff)
				} else if pe, _, _ := decodeEntry(pp.buf[e.ParentOff:]); !bytes.Equal(pe.Key, e.Key) {
					rep.addf("%s: index %d@%d: history link points at another key", name, id, off)
				}
			}
		}
	}
}

func containsOff(offs []uint32, off uint32) bool {
	i := sort.Search(len(offs), func(i int) bool { return offs[i] >= off })
	return i < len(offs) && offs[i] == off
}

// checkEntry compares an index entry with the record it points at.
func (v *fileView) checkEntry(e *entry) error {
	start := int64(e.Offset)
	n := int64(dataRecordSize) + int64(len(e.Key)) + int64(e.Length)
	if start < dataHeaderSize || e.Length > MaxValueSize || start+n > v.size {
		return fmt.Errorf("record at %d (%d bytes) lies outside data file %d", start, n, e.DataID)
	}
	b, ok := v.read(start, n)
	if !ok {
		return fmt.Errorf("record at %d of data file %d cannot be read", start, e.DataID)
	}
	r, _ := decodeRecord(b)
	if int(r.KeyLen) != len(e.Key) || r.Length != e.Length {
		return fmt.Errorf("record at %d does not match its entry", start)
	}
	if !bytes.Equal(b[dataRecordSize:dataRecordSize+len(e.Key)], e.Key) {
		return fmt.Errorf("record at %d holds another key", start)
	}
	if CRC(b[dataRecordSize+len(e.Key):]) != e.CRC {
		return fmt.Errorf("value at data file %d offset %d fails its CRC32C", e.DataID, start)
	}
	return nil
}

func verifyDataFile(rep *Report, name string, id uint32, v *fileView) {
	err := walkRecords(v.f, id, v.size, true, func(off int64, r *record, rec []byte) error {
		if CRC(rec[dataRecordSize+int(r.KeyLen):]) != r.CRC {
			rep.addf("%s: data file %d: record at %d fails its CRC32C", name, id, off)
		}
		rep.Records++
		return nil
	})
	if err != nil { // the walk stops at a damaged header or a torn tail
		rep.addf("%s: %v", name, err)
	}
}
