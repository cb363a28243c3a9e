package zdb

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

func testOpts(t testing.TB) Options {
	dir := t.TempDir()
	return Options{DataDir: filepath.Join(dir, "data"), IndexDir: filepath.Join(dir, "index"), Mode: ModeMix,
		Now: func() time.Time { return time.Unix(1700000000, 0) }}
}

func mustOpen(t testing.TB, o Options) *DB {
	t.Helper()
	db, err := Open(o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { db.Close() })
	return db
}

func set(t testing.TB, ns *Namespace, k, v string) SetResult {
	t.Helper()
	r, err := ns.Set([]byte(k), []byte(v), 0)
	if err != nil {
		t.Fatalf("set %q: %v", k, err)
	}
	if err := ns.Commit(r.Seq); err != nil {
		t.Fatal(err)
	}
	return r
}

func get(t testing.TB, ns *Namespace, k string) (string, error) {
	t.Helper()
	v, _, err := ns.Get(nil, []byte(k))
	return string(v), err
}

func TestSetGetDeleteReopen(t *testing.T) {
	o := testOpts(t)
	o.DataSize = 200 // force rotations
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	want := map[string]string{}
	for i := 0; i < 50; i++ {
		k, v := fmt.Sprintf("key-%d", i%20), fmt.Sprintf("value-%d", i)
		set(t, ns, k, v)
		want[k] = v
	}
	for i := 0; i < 5; i++ {
		k := fmt.Sprintf("key-%d", i)
		seq, err := ns.Delete([]byte(k), 0)
		if err != nil {
			t.Fatal(err)
		}
		ns.Commit(seq)
		delete(want, k)
	}
	if _, err := ns.Delete([]byte("key-0"), 0); !errors.Is(err, ErrNotFound) {
		t.Fatalf("second delete: %v", err)
	}
	r, err := ns.Set([]byte("key-10"), []byte(want["key-10"]), 0)
	if err != nil || !r.Unchanged {
		t.Fatalf("identical set: %+v %v", r, err)
	}
	check := func(ns *Namespace) {
		t.Helper()
		for k, v := range want {
			got, err := get(t, ns, k)
			if err != nil || got != v {
				t.Fatalf("%s = %q %v, want %q", k, got, err, v)
			}
		}
		if _, err := get(t, ns, "key-0"); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted key: %v", err)
		}
		if st := ns.Stats(); st.Entries != int64(len(want)) {
			t.Fatalf("entries = %d, want %d", st.Entries, len(want))
		}
	}
	check(ns)
	if ns.Stats().CurrentFile == 0 {
		t.Fatal("expected rotation with datasize 200")
	}
	db.Close()
	db = mustOpen(t, o)
	ns, _ = db.Namespace(DefaultNamespace)
	check(ns)
	if len(db.Repairs()) != 0 {
		t.Fatalf("clean reopen repaired: %v", db.Repairs())
	}
	db.Close()
	rep, err := Verify(o.DataDir, o.IndexDir)
	if err != nil || !rep.OK() {
		t.Fatalf("verify: %v %v", err, rep.Problems)
	}
}

func TestHistoryAndScan(t *testing.T) {
	o := testOpts(t)
	o.DataSize = 120
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "a", "1")
	set(t, ns, "b", "x")
	set(t, ns, "a", "2")
	set(t, ns, "a", "3")
	set(t, ns, "c", "y")
	var vals []string
	v, err := ns.History([]byte("a"), nil)
	for err == nil {
		vals = append(vals, string(v.Value))
		if v.Parent == nil {
			break
		}
		v, err = ns.History([]byte("a"), v.Parent)
	}
	if err != nil || fmt.Sprint(vals) != "[3 2 1]" {
		t.Fatalf("history = %v, %v", vals, err)
	}
	if _, err := ns.History([]byte("b"), &Cursor{0, indexHeaderSize}); !errors.Is(err, ErrInvalidKey) {
		t.Fatalf("history with another key's cursor: %v", err)
	}
	keys := func(items []Item) (s []string) {
		for _, it := range items {
			s = append(s, string(it.Key))
		}
		return s
	}
	items, err := ns.Scan(nil, 100, false)
	if err != nil || fmt.Sprint(keys(items)) != "[b a c]" {
		t.Fatalf("scan = %v %v", keys(items), err)
	}
	// Page one at a time through the encoded cursor.
	var got []string
	var cur *Cursor
	for {
		items, err := ns.Scan(cur, 1, false)
		if errors.Is(err, ErrNoMoreData) {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, string(items[0].Key))
		c, err := ns.DecodeCursor(items[0].EncodeCursor())
		if err != nil {
			t.Fatal(err)
		}
		cur = &c
	}
	if fmt.Sprint(got) != "[b a c]" {
		t.Fatalf("paged scan = %v", got)
	}
	items, err = ns.Scan(nil, 100, true)
	if err != nil || fmt.Sprint(keys(items)) != "[c a b]" {
		t.Fatalf("rscan = %v %v", keys(items), err)
	}
	if _, err := ns.DecodeCursor(bytes.Repeat([]byte{0xff}, KeyCursorSize)); !errors.Is(err, ErrInvalidCursor) {
		t.Fatalf("bad cursor: %v", err)
	}
}

func TestSeqMode(t *testing.T) {
	o := testOpts(t)
	o.Mode = ModeSeq
	o.DataSize = 150
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	var ids [][]byte
	for i := 0; i < 10; i++ {
		r := set(t, ns, "", fmt.Sprintf("v%d", i))
		if len(r.Key) != 8 {
			t.Fatalf("seq key %x", r.Key)
		}
		ids = append(ids, r.Key)
	}
	if le.Uint64(ids[9]) != 9 {
		t.Fatalf("10th id = %d", le.Uint64(ids[9]))
	}
	if _, err := ns.Set([]byte("12345678"), []byte("x"), 0); !errors.Is(err, ErrUpdateOnly) {
		t.Fatalf("set unknown id: %v", err)
	}
	set(t, ns, string(ids[3]), "updated")
	seq, err := ns.Delete(ids[4], 0)
	if err != nil {
		t.Fatal(err)
	}
	ns.Commit(seq)
	r := set(t, ns, "", "after")
	if le.Uint64(r.Key) != 11 { // the history copy took id 10
		t.Fatalf("id after update = %d, want 11", le.Uint64(r.Key))
	}
	check := func(ns *Namespace) {
		t.Helper()
		if v, err := get(t, ns, string(ids[3])); v != "updated" || err != nil {
			t.Fatalf("updated id: %q %v", v, err)
		}
		if _, err := get(t, ns, string(ids[4])); !errors.Is(err, ErrNotFound) {
			t.Fatalf("deleted id: %v", err)
		}
		if v, err := get(t, ns, string(ids[9])); v != "v9" || err != nil {
			t.Fatalf("id 9: %q %v", v, err)
		}
		h, err := ns.History(ids[3], nil)
		if err != nil || h.Parent == nil {
			t.Fatalf("history: %v", err)
		}
		h, err = ns.History(ids[3], h.Parent)
		if err != nil || string(h.Value) != "v3" {
			t.Fatalf("older version: %q %v", h.Value, err)
		}
		if st := ns.Stats(); st.Entries != 10 {
			t.Fatalf("entries = %d", st.Entries)
		}
	}
	check(ns)
	db.Close()
	db = mustOpen(t, o)
	ns, _ = db.Namespace(DefaultNamespace)
	check(ns)
	r = set(t, ns, "", "next")
	if le.Uint64(r.Key) != 12 {
		t.Fatalf("id after reopen = %d", le.Uint64(r.Key))
	}
	db.Close()
	if rep, _ := Verify(o.DataDir, o.IndexDir); !rep.OK() {
		t.Fatal(rep.Problems)
	}
}

func TestNamespaces(t *testing.T) {
	o := testOpts(t)
	db := mustOpen(t, o)
	if _, err := db.Create("default"); !errors.Is(err, ErrInvalidName) {
		t.Fatalf("create default: %v", err)
	}
	for _, bad := range []string{"", ".", "..", "a/b", string(make([]byte, 129))} {
		if _, err := db.Create(bad); !errors.Is(err, ErrInvalidName) {
			t.Fatalf("create %q: %v", bad, err)
		}
	}
	ns, err := db.Create("n1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := db.Create("n1"); !errors.Is(err, ErrNamespaceExists) {
		t.Fatal(err)
	}
	if err := ns.Update(func(s *Settings) { s.Mode = ModeSeq; s.Worm = true; s.MaxSize = 10; s.Lock = true }); err != nil {
		t.Fatal(err)
	}
	if _, err := ns.Set(nil, []byte("x"), 0); !errors.Is(err, ErrReadOnly) {
		t.Fatalf("locked: %v", err)
	}
	ns.Update(func(s *Settings) { s.Lock = false })
	r := set(t, ns, "", "0123456789")
	if _, err := ns.Set(nil, []byte("x"), 0); !errors.Is(err, ErrNamespaceFull) {
		t.Fatalf("maxsize: %v", err)
	}
	if _, err := ns.Set(r.Key, []byte("y"), 0); !errors.Is(err, ErrWorm) {
		t.Fatalf("worm: %v", err)
	}
	if err := ns.Update(func(s *Settings) { s.Mode = ModeUser }); !errors.Is(err, ErrModeChange) {
		t.Fatalf("mode change of used namespace: %v", err)
	}
	if err := ns.SetPassword("secret"); err != nil {
		t.Fatal(err)
	}
	ns.Update(func(s *Settings) { s.Freeze = true })
	db.Close()
	// The password is not on disk in clear; freeze and mode persist.
	raw, _ := os.ReadFile(filepath.Join(o.IndexDir, "n1", descFile))
	side, _ := os.ReadFile(filepath.Join(o.IndexDir, "n1", sideFileName))
	if bytes.Contains(raw, []byte("secret")) || bytes.Contains(side, []byte("secret")) {
		t.Fatal("password stored in clear")
	}
	db = mustOpen(t, o)
	ns, _ = db.Namespace("n1")
	s := ns.Settings()
	if !s.Freeze || !s.Worm || s.Mode != ModeSeq || !s.HasPassword || s.MaxSize != 10 {
		t.Fatalf("settings after reopen: %+v", s)
	}
	if !ns.CheckPassword("secret") || ns.CheckPassword("wrong") {
		t.Fatal("password check")
	}
	if _, _, err := ns.Get(nil, r.Key); !errors.Is(err, ErrFrozen) {
		t.Fatalf("frozen get: %v", err)
	}
	if fmt.Sprint(db.List()) != "[default n1]" {
		t.Fatal(db.List())
	}
	if err := db.Delete("n1"); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(o.DataDir, "n1")); !os.IsNotExist(err) {
		t.Fatal("namespace data left behind")
	}
	if _, err := ns.Set(nil, nil, 0); !errors.Is(err, ErrClosed) {
		t.Fatalf("deleted namespace: %v", err)
	}
}

func TestCompatPasswords(t *testing.T) {
	o := testOpts(t)
	o.CompatPasswords = true
	db := mustOpen(t, o)
	ns, _ := db.Create("p")
	ns.SetPassword("pw")
	if pw, ok := ns.ClearPassword(); !ok || pw != "pw" {
		t.Fatal("clear password")
	}
	raw, _ := os.ReadFile(filepath.Join(o.IndexDir, "p", descFile))
	d, _ := decodeDescriptor(raw)
	if d.Password != "pw" {
		t.Fatalf("descriptor password %q", d.Password)
	}
}

func TestTornTail(t *testing.T) {
	o := testOpts(t)
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	for i := 0; i < 10; i++ {
		set(t, ns, fmt.Sprintf("k%d", i), fmt.Sprintf("value-%d", i))
	}
	db.Close()
	dpath := filepath.Join(o.DataDir, "default", "d0")
	ipath := filepath.Join(o.IndexDir, "default", "i0")
	di, _ := os.Stat(dpath)
	ii, _ := os.Stat(ipath)
	// Cut the last data record in half, and leave half an index entry.
	os.Truncate(dpath, di.Size()-5)
	os.Truncate(ipath, ii.Size()-3)
	if rep, _ := Verify(o.DataDir, o.IndexDir); rep.OK() {
		t.Fatal("verify missed the torn tail")
	}
	db = mustOpen(t, o)
	ns, _ = db.Namespace(DefaultNamespace)
	if len(db.Repairs()) == 0 {
		t.Fatal("no repair reported")
	}
	for i := 0; i < 9; i++ {
		if v, err := get(t, ns, fmt.Sprintf("k%d", i)); err != nil || v != fmt.Sprintf("value-%d", i) {
			t.Fatalf("k%d after repair: %q %v", i, v, err)
		}
	}
	if _, err := get(t, ns, "k9"); !errors.Is(err, ErrNotFound) {
		t.Fatalf("torn key: %v", err)
	}
	set(t, ns, "k9", "again")
	db.Close()
	if rep, _ := Verify(o.DataDir, o.IndexDir); !rep.OK() {
		t.Fatal(rep.Problems)
	}
}

func TestCorruptValueNeverServed(t *testing.T) {
	o := testOpts(t)
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "a", "hello world")
	set(t, ns, "b", "other")
	db.Close()
	dpath := filepath.Join(o.DataDir, "default", "d0")
	b, _ := os.ReadFile(dpath)
	i := bytes.Index(b, []byte("hello"))
	b[i] ^= 0xff
	os.WriteFile(dpath, b, 0o600)
	db = mustOpen(t, o)
	ns, _ = db.Namespace(DefaultNamespace)
	if _, err := get(t, ns, "a"); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("corrupt get: %v", err)
	}
	if ok, _ := ns.Check([]byte("a")); ok {
		t.Fatal("check passed a corrupt value")
	}
	if ok, _ := ns.Check([]byte("b")); !ok {
		t.Fatal("check failed a good value")
	}
	db.Close()
	if rep, _ := Verify(o.DataDir, o.IndexDir); rep.OK() {
		t.Fatal("verify missed the corrupt value")
	}
}

func TestFlush(t *testing.T) {
	db := mustOpen(t, testOpts(t))
	ns, _ := db.Create("f")
	set(t, ns, "a", "1")
	if err := ns.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, err := get(t, ns, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	set(t, ns, "b", "2")
	if v, _ := get(t, ns, "b"); v != "2" {
		t.Fatal(v)
	}
}

// TestGroupCommitVisibility: a write is readable before its commit (from the
// pending batch) and after it (from the file).
func TestGroupCommitVisibility(t *testing.T) {
	db := mustOpen(t, testOpts(t))
	ns, _ := db.Namespace(DefaultNamespace)
	r1, _ := ns.Set([]byte("a"), []byte("1"), 0)
	r2, _ := ns.Set([]byte("a"), []byte("2"), 0)
	if v, _ := get(t, ns, "a"); v != "2" {
		t.Fatalf("pending read %q", v)
	}
	if err := ns.Commit(r1.Seq); err != nil {
		t.Fatal(err)
	}
	if ns.committed.Load() < r2.Seq {
		t.Fatal("commit did not take the whole batch")
	}
	seq, _ := ns.Delete([]byte("a"), 0)
	if _, err := get(t, ns, "a"); !errors.Is(err, ErrNotFound) {
		t.Fatal(err)
	}
	ns.Commit(seq)
	h, err := ns.History([]byte("a"), nil)
	if err == nil {
		t.Fatalf("history of deleted key: %v", h)
	}
}

func TestOrphanTailRecords(t *testing.T) {
	o := testOpts(t)
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "a", "1")
	set(t, ns, "b", "2")
	seq, _ := ns.Delete([]byte("b"), 0)
	ns.Commit(seq)
	db.Close()
	dpath := filepath.Join(o.DataDir, "default", "d0")
	good, _ := os.ReadFile(dpath)
	// A SET whose index entry never made it, and a data file of a rotation
	// whose index file never made it: neither was acknowledged.
	orphan := appendRecord(nil, &record{CRC: CRC([]byte("x"))}, []byte("c"), []byte("x"))
	os.WriteFile(dpath, append(append([]byte(nil), good...), orphan...), 0o600)
	os.WriteFile(filepath.Join(o.DataDir, "default", "d1"), appendDataHeader(nil, 1), 0o600)
	db = mustOpen(t, o)
	if len(db.Repairs()) != 2 {
		t.Fatalf("repairs: %v", db.Repairs())
	}
	if b, _ := os.ReadFile(dpath); len(b) != len(good) {
		t.Fatalf("data file %d bytes after repair, want %d (tombstone kept, orphan cut)", len(b), len(good))
	}
	ns, _ = db.Namespace(DefaultNamespace)
	if _, err := get(t, ns, "c"); !errors.Is(err, ErrNotFound) {
		t.Fatal("orphan record served")
	}
	db.Close()
	if rep, _ := Verify(o.DataDir, o.IndexDir); !rep.OK() {
		t.Fatal(rep.Problems)
	}
}

func TestSeqUpdateAtTailSurvivesReopen(t *testing.T) {
	o := testOpts(t)
	o.Mode = ModeSeq
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	r := set(t, ns, "", "old")
	set(t, ns, string(r.Key), "new")
	db.Close()
	db = mustOpen(t, o)
	if len(db.Repairs()) != 0 {
		t.Fatalf("clean reopen repaired: %v", db.Repairs())
	}
	ns, _ = db.Namespace(DefaultNamespace)
	if v, err := get(t, ns, string(r.Key)); v != "new" || err != nil {
		t.Fatalf("%q %v", v, err)
	}
}

func TestVerifyLargeValues(t *testing.T) {
	o := testOpts(t)
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	big := string(bytes.Repeat([]byte("b"), 200<<10))
	set(t, ns, "big", big)
	set(t, ns, "small", "s")
	db.Close()
	rep, err := Verify(o.DataDir, o.IndexDir)
	if err != nil || !rep.OK() || rep.Records != 2 || rep.Entries != 2 {
		t.Fatalf("verify: %+v %v", rep, err)
	}
}

// A follower that copied bytes a crash repair later cut must not resume
// past the cut (where new records now start); one whose position is before
// the cut resumes normally.
func TestReadLogAfterCrashCut(t *testing.T) {
	o := testOpts(t)
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "a", "1")
	set(t, ns, "b", "2")
	recs, p1, _, err := ns.ReadLog(LogPosition{}, 1)
	if err != nil || len(recs) != 1 || string(recs[0].Key) != "a" {
		t.Fatalf("first read: %v %v", recs, err)
	}
	recs, p2, _, err := ns.ReadLog(p1, 1<<20)
	if err != nil || len(recs) != 1 || string(recs[0].Key) != "b" {
		t.Fatalf("second read: %v %v", recs, err)
	}
	db.Close()
	// The crash: b's index entry never reached the file.
	ipath := filepath.Join(o.IndexDir, "default", "i0")
	fi, err := os.Stat(ipath)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(ipath, fi.Size()-int64(indexEntrySize+1)); err != nil {
		t.Fatal(err)
	}
	db = mustOpen(t, o)
	if len(db.Repairs()) != 1 {
		t.Fatalf("repairs: %v", db.Repairs())
	}
	ns, _ = db.Namespace(DefaultNamespace)
	set(t, ns, "c", "3") // same size as b: lands exactly where b was
	if _, _, _, err := ns.ReadLog(p2, 1<<20); !errors.Is(err, ErrLogPosition) {
		t.Fatalf("position past the cut: err %v, want ErrLogPosition", err)
	}
	recs, p3, _, err := ns.ReadLog(p1, 1<<20)
	if err != nil || len(recs) != 1 || string(recs[0].Key) != "c" {
		t.Fatalf("position before the cut: %v %v", recs, err)
	}
	if p3.Generation == p1.Generation || p3.Offset != p2.Offset {
		t.Fatalf("resumed position %+v (old %+v)", p3, p2)
	}
	// A clean restart keeps positions; the cut is remembered.
	db.Close()
	db = mustOpen(t, o)
	ns, _ = db.Namespace(DefaultNamespace)
	if _, _, _, err := ns.ReadLog(p3, 1<<20); err != nil {
		t.Fatalf("after clean reopen: %v", err)
	}
	if _, _, _, err := ns.ReadLog(p2, 1<<20); !errors.Is(err, ErrLogPosition) {
		t.Fatalf("old position past the cut after reopen: %v", err)
	}
	// FLUSH voids every older position.
	if err := ns.Flush(); err != nil {
		t.Fatal(err)
	}
	if _, _, _, err := ns.ReadLog(p3, 1<<20); !errors.Is(err, ErrLogPosition) {
		t.Fatalf("position after flush: %v", err)
	}
}

// A crash between creating a file pair (rotation, FLUSH) and writing its
// headers leaves empty files: open repairs them instead of refusing.
func TestTornFileCreation(t *testing.T) {
	o := testOpts(t)
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "a", "1")
	db.Close()
	nsIdx, nsData := filepath.Join(o.IndexDir, "default"), filepath.Join(o.DataDir, "default")
	os.WriteFile(filepath.Join(nsIdx, "i1"), nil, 0o600)
	os.WriteFile(filepath.Join(nsData, "d1"), []byte("DAT"), 0o600)
	db = mustOpen(t, o)
	if len(db.Repairs()) != 2 {
		t.Fatalf("repairs: %v", db.Repairs())
	}
	ns, _ = db.Namespace(DefaultNamespace)
	if v, err := get(t, ns, "a"); err != nil || v != "1" {
		t.Fatalf("a = %q, %v", v, err)
	}
	set(t, ns, "b", "2")
	db.Close()
	db = mustOpen(t, o)
	ns, _ = db.Namespace(DefaultNamespace)
	if v, err := get(t, ns, "b"); err != nil || v != "2" {
		t.Fatalf("b after reopen = %q, %v", v, err)
	}
	db.Close()
	if rep, _ := Verify(o.DataDir, o.IndexDir); !rep.OK() {
		t.Fatal(rep.Problems)
	}

	// A FLUSH cut short: only an empty i0 is left.
	o2 := testOpts(t)
	db = mustOpen(t, o2)
	db.Close()
	os.WriteFile(filepath.Join(o2.IndexDir, "default", "i0"), nil, 0o600)
	os.Remove(filepath.Join(o2.DataDir, "default", "d0"))
	db = mustOpen(t, o2)
	ns, _ = db.Namespace(DefaultNamespace)
	set(t, ns, "c", "3")
	if v, err := get(t, ns, "c"); err != nil || v != "3" {
		t.Fatalf("c = %q, %v", v, err)
	}
}

// Records queued for a file and a rotation to the next one in the same
// uncommitted batch: a follower at the committed end of the first file must
// wait there, not skip to the next file and lose the queued records.
func TestReadLogWaitsForQueuedTailBeforeRotation(t *testing.T) {
	o := testOpts(t)
	o.DataSize = 200
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "a", "1")
	_, pos, _, err := ns.ReadLog(LogPosition{}, 1<<20)
	if err != nil || pos.File != 0 {
		t.Fatalf("read: %+v %v", pos, err)
	}
	// Queued, not committed: a delete in file 0, then writes that rotate.
	if _, err := ns.Delete([]byte("a"), 0); err != nil {
		t.Fatal(err)
	}
	big := strings.Repeat("x", 150)
	var last uint64
	for i := 0; i < 3; i++ {
		r, err := ns.Set([]byte(fmt.Sprintf("k%d", i)), []byte(big), 0)
		if err != nil {
			t.Fatal(err)
		}
		last = r.Seq
	}
	if ns.Stats().Files < 2 {
		t.Fatalf("no rotation queued: %+v", ns.Stats())
	}
	recs, next, _, err := ns.ReadLog(pos, 1<<20)
	if err != nil || len(recs) != 0 || next != pos {
		t.Fatalf("before commit: %d records, next %+v (from %+v), %v", len(recs), next, pos, err)
	}
	if err := ns.Commit(last); err != nil {
		t.Fatal(err)
	}
	recs, _, _, err = ns.ReadLog(pos, 1<<20)
	if err != nil || len(recs) < 2 || !recs[0].Deleted || string(recs[0].Key) != "a" {
		t.Fatalf("after commit: %v %v", recs, err)
	}
}
