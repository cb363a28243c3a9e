package zdb

import (
	"bytes"
	"encoding/binary"
	"flag"
	"os"
	"path/filepath"
	"testing"
)

var update = flag.Bool("update", false, "rewrite zdb/testdata golden files")

// layout builds bytes field by field from the documented 0-db layout, on
// purpose without the package's encoders.
type layout struct{ bytes.Buffer }

func (l *layout) u8(v uint8) *layout   { l.WriteByte(v); return l }
func (l *layout) u32(v uint32) *layout { binary.Write(l, binary.LittleEndian, v); return l }
func (l *layout) u64(v uint64) *layout { binary.Write(l, binary.LittleEndian, v); return l }
func (l *layout) s(v string) *layout   { l.WriteString(v); return l }

// TestGoldenLayout writes a fixed sequence (set, overwrite, delete) and
// compares the files byte for byte with the layout spelled out here and with
// the checked-in golden files.
func TestGoldenLayout(t *testing.T) {
	o := testOpts(t)
	o.Mode = ModeUser
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "key", "hello")                             // record @28, entry @29
	set(t, ns, "key", "world")                             // record @54, entry @66
	if _, err := ns.Delete([]byte("key"), 0); err != nil { // tombstone @80
		t.Fatal(err)
	}
	db.Close()
	const ts = 1700000000
	crcHello, crcWorld := CRC([]byte("hello")), CRC([]byte("world"))
	if crcHello != 0x9a71bb4c {
		t.Fatalf("CRC32C(hello) = %#x, want 0x9a71bb4c", crcHello)
	}
	var data layout
	data.s("DAT0").u32(3).u64(0).u64(0).u32(0)
	data.u8(3).u32(5).u32(0).u32(crcHello).u8(0).u32(ts).s("key").s("hello")
	data.u8(3).u32(5).u32(28).u32(crcWorld).u8(0).u32(ts).s("key").s("world")
	data.u8(3).u32(0).u32(54).u32(0).u8(1).u32(ts).s("key")
	var index layout
	index.s("IDX0").u32(4).u64(0).u64(0).u32(0).u8(0)
	// offset, length, previous, flags, dataid, timestamp, crc, parentid, parentoff
	index.u8(3).u32(28).u32(5).u32(0).u8(1).u32(0).u32(ts).u32(crcHello).u32(0).u32(0).s("key")
	index.u8(3).u32(54).u32(5).u32(29).u8(1).u32(0).u32(ts).u32(crcWorld).u32(0).u32(29).s("key")
	var desc layout
	desc.u32(1).u8(7).u8(0).u64(0).u8(1 | 4).s("default")

	for _, f := range []struct {
		path, golden string
		want         []byte
	}{
		{filepath.Join(o.DataDir, "default", "d0"), "user-d0.golden", data.Bytes()},
		{filepath.Join(o.IndexDir, "default", "i0"), "user-i0.golden", index.Bytes()},
		{filepath.Join(o.IndexDir, "default", descFile), "user-zdb-namespace.golden", desc.Bytes()},
	} {
		got, err := os.ReadFile(f.path)
		if err != nil {
			t.Fatal(err)
		}
		if !bytes.Equal(got, f.want) {
			t.Errorf("%s:\n got %x\nwant %x", f.golden, got, f.want)
		}
		gp := filepath.Join("testdata", f.golden)
		if *update {
			os.WriteFile(gp, got, 0o644)
		}
		golden, err := os.ReadFile(gp)
		if err != nil {
			t.Fatalf("%v (run go test -run TestGoldenLayout -update)", err)
		}
		if !bytes.Equal(got, golden) {
			t.Errorf("%s differs from the golden file", f.golden)
		}
	}
}

// TestOpenGolden opens the checked-in files as a namespace written elsewhere
// (0-db writes the same bytes) and reads them back.
func TestOpenGolden(t *testing.T) {
	o := testOpts(t)
	for _, f := range []struct{ dir, name, golden string }{
		{o.DataDir, "d0", "user-d0.golden"},
		{o.IndexDir, "i0", "user-i0.golden"},
		{o.IndexDir, descFile, "user-zdb-namespace.golden"},
	} {
		b, err := os.ReadFile(filepath.Join("testdata", f.golden))
		if err != nil {
			t.Fatal(err)
		}
		os.MkdirAll(filepath.Join(f.dir, "default"), 0o700)
		os.WriteFile(filepath.Join(f.dir, "default", f.name), b, 0o600)
	}
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	if len(db.Repairs()) > 0 {
		t.Fatal(db.Repairs())
	}
	if ns.Stats().Entries != 0 {
		t.Fatal("deleted key is live")
	}
	set(t, ns, "key", "again")
	h, err := ns.History([]byte("key"), nil)
	if err != nil || string(h.Value) != "again" || h.Parent != nil {
		t.Fatalf("history %+v %v", h, err)
	}
}

// FuzzOpen opens a namespace whose index and data files were corrupted: it
// must never panic or serve a value that fails its CRC.
func FuzzOpen(f *testing.F) {
	seedD, _ := os.ReadFile(filepath.Join("testdata", "user-d0.golden"))
	seedI, _ := os.ReadFile(filepath.Join("testdata", "user-i0.golden"))
	f.Add(seedI, seedD)
	f.Add(seedI[:40], seedD[:50])
	f.Add([]byte("IDX0\x04\x00\x00\x00"), []byte("DAT0"))
	f.Fuzz(func(t *testing.T, idx, data []byte) {
		o := testOpts(t)
		os.MkdirAll(filepath.Join(o.IndexDir, "default"), 0o700)
		os.MkdirAll(filepath.Join(o.DataDir, "default"), 0o700)
		os.WriteFile(filepath.Join(o.IndexDir, "default", "i0"), idx, 0o600)
		os.WriteFile(filepath.Join(o.DataDir, "default", "d0"), data, 0o600)
		db, err := Open(o)
		if err != nil {
			return // refusing to open corrupt files is fine
		}
		defer db.Close()
		ns, _ := db.Namespace(DefaultNamespace)
		items, _ := ns.Scan(nil, 1000, false)
		for _, it := range items {
			v, m, err := ns.Get(nil, it.Key)
			if err == nil && CRC(v) != m.CRC {
				t.Fatal("served a value failing its CRC")
			}
			ns.History(it.Key, nil)
		}
		ns.Scan(nil, 1000, true)
		r, err := ns.Set([]byte("new"), []byte("value"), 0)
		if err == nil {
			if err := ns.Commit(r.Seq); err != nil {
				t.Fatal(err)
			}
			if v, _, err := ns.Get(nil, []byte("new")); err != nil || string(v) != "value" {
				t.Fatalf("write after repair: %q %v", v, err)
			}
		}
	})
}
