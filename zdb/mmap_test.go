package zdb

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// mapped reports whether data file id of ns is read through a map.
func mapped(ns *Namespace, id uint32) bool {
	ns.fileMu.Lock()
	defer ns.fileMu.Unlock()
	m := ns.maps[id]
	return m != nil && m.b != nil
}

// TestMappedReadsFollowAppends: values appended after the current file was
// mapped, and values in files rotated away from, are read through the maps
// with the same bytes as written; a Flush and a compaction drop the maps of
// the files they replace.
func TestMappedReadsFollowAppends(t *testing.T) {
	o := testOpts(t)
	o.CacheSize = -1 // every read goes to the files
	o.DataSize = 4096
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	want := map[string]string{}
	for i := range 200 {
		k, v := fmt.Sprintf("k%d", i%150), strings.Repeat(fmt.Sprint(i), 1+i%40)
		set(t, ns, k, v)
		want[k] = v
		// Read back at once: the map of the current file must learn
		// about every append.
		if got, err := get(t, ns, k); err != nil || got != v {
			t.Fatalf("%s right after set = %q %v, want %q", k, got, err, v)
		}
	}
	check := func(when string) {
		t.Helper()
		for k, v := range want {
			if got, err := get(t, ns, k); err != nil || got != v {
				t.Fatalf("%s: %s = %q %v, want %q", when, k, got, err, v)
			}
		}
	}
	check("after the writes")
	cur := ns.Stats().CurrentFile
	if cur < 2 || !mapped(ns, 0) || !mapped(ns, cur) {
		t.Fatalf("files 0 and %d should be mapped", cur)
	}
	if size, end := ns.maps[cur].size, ns.Stats().DataOffset; size != end {
		t.Fatalf("map of the current file knows %d bytes, the file has %d", size, end)
	}
	if _, err := ns.Compact(t.Context()); err != nil {
		t.Fatal(err)
	}
	if mapped(ns, 0) {
		t.Fatal("compaction kept the map of a rewritten file")
	}
	check("after compaction")
	if err := ns.Flush(); err != nil {
		t.Fatal(err)
	}
	if len(ns.maps) != 0 {
		t.Fatal("flush kept maps of removed files")
	}
	want = map[string]string{}
	set(t, ns, "after", "flush")
	want["after"] = "flush"
	check("after flush")
}

// TestMappedFileShortenedBehindBack: a data file cut by someone else while
// mapped makes reads of the lost bytes fail with ErrCorrupt; the fault the
// map raises (SIGBUS) does not kill the process.
func TestMappedFileShortenedBehindBack(t *testing.T) {
	o := testOpts(t)
	o.CacheSize = -1
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	big := strings.Repeat("v", 3*os.Getpagesize())
	set(t, ns, "a", "first")
	set(t, ns, "b", big)
	if v, err := get(t, ns, "b"); err != nil || v != big {
		t.Fatalf("b = %d bytes, %v", len(v), err)
	}
	if !mapped(ns, 0) {
		t.Fatal("data file 0 not mapped")
	}
	if err := os.Truncate(filepath.Join(o.DataDir, DefaultNamespace, "d0"), int64(os.Getpagesize())); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, ns, "b"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get of a cut value: %v, want ErrCorrupt", err)
	}
	if v, err := get(t, ns, "a"); err != nil || v != "first" {
		t.Fatalf("a = %q %v", v, err)
	}
}

// TestMappedReadsCheckCRC: a value changed in the file after it was mapped
// is refused, not served from the map.
func TestMappedReadsCheckCRC(t *testing.T) {
	o := testOpts(t)
	o.CacheSize = -1
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "a", "hello world")
	if v, err := get(t, ns, "a"); err != nil || v != "hello world" {
		t.Fatalf("a = %q %v", v, err)
	}
	dpath := filepath.Join(o.DataDir, DefaultNamespace, "d0")
	b, _ := os.ReadFile(dpath)
	f, err := os.OpenFile(dpath, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("j"), int64(strings.Index(string(b), "hello"))); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if _, err := get(t, ns, "a"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("get of a changed value: %v, want ErrCorrupt", err)
	}
}

// TestPrefetchReadsNothingWrong: Prefetch of present, absent and
// over-long keys, in user and seq namespaces, changes no value and no
// reply; on a closed namespace it does nothing.
func TestPrefetchReadsNothingWrong(t *testing.T) {
	o := testOpts(t)
	o.CacheSize = -1
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	for i := range 100 {
		set(t, ns, fmt.Sprint("p", i), strings.Repeat("v", i))
	}
	keys := [][]byte{[]byte("p1"), []byte("absent"), []byte(strings.Repeat("x", MaxKeySize+10)), []byte("p99"), []byte("p0")}
	ns.Prefetch(keys)
	for i := range 100 {
		if got, err := get(t, ns, fmt.Sprint("p", i)); err != nil || got != strings.Repeat("v", i) {
			t.Fatalf("p%d after Prefetch = %q %v", i, got, err)
		}
	}
	if _, err := get(t, ns, "absent"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("absent key after Prefetch: %v", err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	ns.Prefetch(keys) // closed: must not touch unmapped files
}
