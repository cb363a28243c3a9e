package zdb_test

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"github.com/zosgrid/zos/zdb"
)

// The directories under testdata/0db were written by the real 0-db v2.0.7
// (see testdata/0db/README.md for the exact commands). These tests open them
// with the engine and check every key, value, timestamp, history entry and
// deletion that the commands produced. They found two differences from 0-db,
// since fixed in the engine: 0-db's CRC32C starts at 0 without a final XOR,
// and in user mode it stores dataid 0 in index entries (index file N
// describes data file N).

// compatVersion is one version of a key, newest first in compatKey.history.
type compatVersion struct {
	ts    uint32
	value string
}

type compatKey struct {
	key     string
	history []compatVersion // [0] is the live version
}

type compatNS struct {
	name     string
	mode     zdb.Mode
	keys     []compatKey // every live key, in insertion order of the live version
	deleted  []string    // keys that must be absent
	settings zdb.Settings
	password string
	files    int // data (and index) files
}

func seqKey(id byte) string { return string([]byte{id, 0, 0, 0, 0, 0, 0, 0}) }

func bigValue(n int) string { return string(bytes.Repeat([]byte{byte('a' + n)}, 60000)) }

var compatFixtures = func() []compatNS {
	longKey := string(bytes.Repeat([]byte("K"), 255))
	rotated := compatNS{name: "rotated", mode: zdb.ModeUser, files: 2,
		settings: zdb.Settings{Public: true, Mode: zdb.ModeUser}}
	for n := 0; n < 10; n++ {
		rotated.keys = append(rotated.keys, compatKey{"big-" + string(rune('0'+n)),
			[]compatVersion{{uint32(1700000400 + n), bigValue(n)}}})
	}
	return []compatNS{
		{
			name: "default", mode: zdb.ModeUser, files: 1,
			settings: zdb.Settings{Public: true, Mode: zdb.ModeUser},
			keys: []compatKey{
				{"alpha", []compatVersion{{1700000003, "three"}, {1700000002, "two"}, {1700000001, "one"}}},
				{"bin\x00key", []compatVersion{{1700000004, "\x00\x01binary\xff\r\n"}}},
				// The second, identical SET (at ...08) wrote nothing.
				{"same", []compatVersion{{1700000007, "x"}}},
				// epsilon was set, deleted, set again: a new chain.
				{"epsilon", []compatVersion{{1700000011, "v2"}}},
				{longKey, []compatVersion{{1700000012, "longest-key"}}},
				{"empty", []compatVersion{{1700000013, ""}}},
			},
			deleted: []string{"gamma", "never-written"},
		},
		{
			name: "seqns", mode: zdb.ModeSeq, files: 1,
			settings: zdb.Settings{Public: true, Mode: zdb.ModeSeq},
			keys: []compatKey{
				{seqKey(0), []compatVersion{{1700000101, "first"}}},
				{seqKey(1), []compatVersion{{1700000105, "second-updated"}, {1700000102, "second"}}},
				{seqKey(3), []compatVersion{{1700000104, "fourth"}}},
			},
			deleted: []string{seqKey(2)},
		},
		{
			name: "secret", mode: zdb.ModeUser, files: 1, password: "s3cr3t",
			settings: zdb.Settings{Public: false, MaxSize: 1048576, HasPassword: true, Mode: zdb.ModeUser},
			keys: []compatKey{
				{"hidden", []compatVersion{{1700000202, "more treasure"}, {1700000201, "treasure"}}},
			},
		},
		{
			name: "wormns", mode: zdb.ModeUser, files: 1,
			settings: zdb.Settings{Public: true, Worm: true, Mode: zdb.ModeUser},
			keys:     []compatKey{{"once", []compatVersion{{1700000301, "forever"}}}},
		},
		rotated,
	}
}()

// copyFixtures copies testdata/0db into a temporary directory (the engine
// may write side files; the checked-in fixtures must stay as 0-db wrote them)
// and returns the data and index directories.
func copyFixtures(t *testing.T) (data, index string) {
	t.Helper()
	root := t.TempDir()
	src := filepath.Join("testdata", "0db")
	err := filepath.WalkDir(src, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(src, path)
		if d.IsDir() {
			return os.MkdirAll(filepath.Join(root, rel), 0o700)
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		return os.WriteFile(filepath.Join(root, rel), b, 0o600)
	})
	if err != nil {
		t.Fatal(err)
	}
	return filepath.Join(root, "data"), filepath.Join(root, "index")
}

// snapshot reads every file under dir.
func snapshot(t *testing.T, dir string) map[string][]byte {
	t.Helper()
	out := map[string][]byte{}
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		b, err := os.ReadFile(path)
		out[path] = b
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}

func TestCompat0dbVerify(t *testing.T) {
	data, index := copyFixtures(t)
	rep, err := zdb.Verify(data, index)
	if err != nil {
		t.Fatalf("Verify: %v", err)
	}
	if !rep.OK() {
		t.Fatalf("Verify found problems in directories written by 0-db: %v", rep.Problems)
	}
	if len(rep.Namespaces) != len(compatFixtures) {
		t.Errorf("Verify saw namespaces %v, want %d", rep.Namespaces, len(compatFixtures))
	}
}

func TestCompat0dbOpen(t *testing.T) {
	data, index := copyFixtures(t)
	before := snapshot(t, data)
	for k, v := range snapshot(t, index) {
		before[k] = v
	}
	db, err := zdb.Open(zdb.Options{DataDir: data, IndexDir: index, Mode: zdb.ModeMix, DataSize: 524288})
	if err != nil {
		t.Fatalf("Open 0-db directories: %v", err)
	}
	defer db.Close()
	if r := db.Repairs(); len(r) != 0 {
		t.Fatalf("opening clean 0-db directories repaired something: %v", r)
	}

	names := map[string]bool{}
	for _, n := range db.List() {
		names[n] = true
	}
	for _, want := range compatFixtures {
		t.Run(want.name, func(t *testing.T) {
			if !names[want.name] {
				t.Fatalf("namespace %s not listed (have %v)", want.name, db.List())
			}
			ns, err := db.Namespace(want.name)
			if err != nil {
				t.Fatal(err)
			}
			checkNamespace(t, ns, want)
		})
	}

	// Reading changed none of 0-db's files (side files of zos may be added).
	db.Close()
	for path, b := range before {
		after, err := os.ReadFile(path)
		if err != nil {
			t.Errorf("%s: %v", path, err)
			continue
		}
		if !bytes.Equal(after, b) {
			t.Errorf("%s changed by opening and reading it", path)
		}
	}
}

func checkNamespace(t *testing.T, ns *zdb.Namespace, want compatNS) {
	t.Helper()
	if ns.Mode() != want.mode {
		t.Errorf("mode = %v, want %v", ns.Mode(), want.mode)
	}
	if got := ns.Settings(); got != want.settings {
		t.Errorf("settings = %+v, want %+v", got, want.settings)
	}
	if want.password != "" {
		if !ns.CheckPassword(want.password) {
			t.Errorf("0-db password %q not accepted", want.password)
		}
		if ns.CheckPassword(want.password + "x") {
			t.Error("a wrong password was accepted")
		}
	}
	st := ns.Stats()
	if st.Entries != int64(len(want.keys)) {
		t.Errorf("Stats.Entries = %d, want %d", st.Entries, len(want.keys))
	}
	var payload int64
	for _, k := range want.keys {
		payload += int64(len(k.history[0].value))
	}
	if st.Payload != payload {
		t.Errorf("Stats.Payload = %d, want %d", st.Payload, payload)
	}
	if int(st.CurrentFile) != want.files-1 {
		t.Errorf("current file = %d, want %d", st.CurrentFile, want.files-1)
	}

	for _, k := range want.keys {
		live := k.history[0]
		got, meta, err := ns.Get(nil, []byte(k.key))
		if err != nil {
			t.Errorf("Get %q: %v", short(k.key), err)
			continue
		}
		if string(got) != live.value {
			t.Errorf("Get %q = %q, want %q", short(k.key), short(string(got)), short(live.value))
		}
		if meta.Timestamp != live.ts || meta.Length != uint32(len(live.value)) || meta.CRC != zdb.CRC([]byte(live.value)) {
			t.Errorf("Get %q meta = %+v, want ts %d length %d", short(k.key), meta, live.ts, len(live.value))
		}
		if ok, err := ns.Check([]byte(k.key)); !ok || err != nil {
			t.Errorf("Check %q = %v, %v", short(k.key), ok, err)
		}
		// The whole history chain, newest first, and nothing more.
		var at *zdb.Cursor
		for i, wantV := range k.history {
			v, err := ns.History([]byte(k.key), at)
			if err != nil {
				t.Errorf("History %q step %d: %v", short(k.key), i, err)
				break
			}
			if v.Timestamp != wantV.ts || string(v.Value) != wantV.value {
				t.Errorf("History %q step %d = %d %q, want %d %q", short(k.key), i,
					v.Timestamp, short(string(v.Value)), wantV.ts, short(wantV.value))
			}
			if i == len(k.history)-1 && v.Parent != nil {
				t.Errorf("History %q has more than %d versions", short(k.key), len(k.history))
			}
			if i < len(k.history)-1 && v.Parent == nil {
				t.Errorf("History %q ends after %d versions, want %d", short(k.key), i+1, len(k.history))
				break
			}
			at = v.Parent
		}
	}
	for _, k := range want.deleted {
		if _, _, err := ns.Get(nil, []byte(k)); !errors.Is(err, zdb.ErrNotFound) {
			t.Errorf("deleted key %q: Get err = %v, want ErrNotFound", short(k), err)
		}
	}

	// A scan sees exactly the live keys, forwards and backwards, in the order
	// of their live index entries (in seq mode the id order: an overwrite
	// rewrites the entry at its fixed position).
	var scanned []string
	var from *zdb.Cursor
	for {
		items, err := ns.Scan(from, 3, false)
		if errors.Is(err, zdb.ErrNoMoreData) {
			break
		}
		if err != nil {
			t.Fatalf("Scan: %v", err)
		}
		for _, it := range items {
			scanned = append(scanned, string(it.Key))
		}
		c := items[len(items)-1].Cursor
		from = &c
	}
	var wantKeys []string
	for _, k := range want.keys {
		wantKeys = append(wantKeys, k.key)
	}
	if !equalStrings(scanned, wantKeys) {
		t.Errorf("Scan = %q, want %q", shortAll(scanned), shortAll(wantKeys))
	}
	back, err := ns.Scan(nil, 1000, true)
	if err != nil {
		t.Fatalf("Scan backwards: %v", err)
	}
	if len(back) != len(scanned) || string(back[0].Key) != scanned[len(scanned)-1] {
		t.Errorf("backward scan has %d keys starting at %q, want %d starting at %q",
			len(back), short(string(back[0].Key)), len(scanned), short(scanned[len(scanned)-1]))
	}
}

func equalStrings(a, b []string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := range a {
		if a[i] != b[i] {
			return false
		}
	}
	return true
}

func short(s string) string {
	if len(s) > 24 {
		return s[:24] + "…"
	}
	return s
}

func shortAll(ss []string) []string {
	out := make([]string, len(ss))
	for i, s := range ss {
		out[i] = short(s)
	}
	return out
}

// TestCompat0dbWriteAfterOpen appends to 0-db's directories with the engine,
// reopens them, and checks old and new content side by side: the engine
// continues 0-db's files (rotation, seq ids, history chains) instead of
// starting its own.
func TestCompat0dbWriteAfterOpen(t *testing.T) {
	data, index := copyFixtures(t)
	opts := zdb.Options{DataDir: data, IndexDir: index, Mode: zdb.ModeMix, DataSize: 524288}
	db, err := zdb.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	def, _ := db.Namespace("default")
	r, err := def.Set([]byte("alpha"), []byte("four"), 1700000500)
	if err != nil {
		t.Fatal(err)
	}
	if err := def.Commit(r.Seq); err != nil {
		t.Fatal(err)
	}
	seq, _ := db.Namespace("seqns")
	r, err = seq.Set(nil, []byte("fifth"), 1700000501)
	if err != nil {
		t.Fatal(err)
	}
	// The deleted copy 0-db appended when id 1 was overwritten holds
	// position 4, so the next id is 5 (the real 0-db answers the same).
	if string(r.Key) != seqKey(5) {
		t.Errorf("next seq id after 0-db's entries = %x, want id 5", r.Key)
	}
	if err := seq.Commit(r.Seq); err != nil {
		t.Fatal(err)
	}
	rot, _ := db.Namespace("rotated")
	r, err = rot.Set([]byte("big-10"), []byte(bigValue(10)), 1700000502)
	if err != nil {
		t.Fatal(err)
	}
	if err := rot.Commit(r.Seq); err != nil {
		t.Fatal(err)
	}
	if err := db.Close(); err != nil {
		t.Fatal(err)
	}
	if rep, err := zdb.Verify(data, index); err != nil || !rep.OK() {
		t.Fatalf("Verify after writing into 0-db's directories: %v %v", err, rep)
	}

	db, err = zdb.Open(opts)
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	def, _ = db.Namespace("default")
	want := compatFixtures[0]
	want.keys = append([]compatKey(nil), want.keys...)
	alpha := compatKey{"alpha", append([]compatVersion{{1700000500, "four"}}, want.keys[0].history...)}
	want.keys = append(want.keys[1:], alpha) // the overwrite moves alpha to the end of the scan
	checkNamespace(t, def, want)

	seq, _ = db.Namespace("seqns")
	wantSeq := compatFixtures[1]
	wantSeq.keys = append(append([]compatKey(nil), wantSeq.keys...), compatKey{seqKey(5), []compatVersion{{1700000501, "fifth"}}})
	wantSeq.deleted = append(wantSeq.deleted, seqKey(4))
	checkNamespace(t, seq, wantSeq)

	rot, _ = db.Namespace("rotated")
	wantRot := compatFixtures[4]
	wantRot.keys = append(append([]compatKey(nil), wantRot.keys...), compatKey{"big-10", []compatVersion{{1700000502, bigValue(10)}}})
	checkNamespace(t, rot, wantRot)
}
