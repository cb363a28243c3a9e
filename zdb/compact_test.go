package zdb

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func dirSize(t *testing.T, dirs ...string) int64 {
	var n int64
	for _, d := range dirs {
		filepath.Walk(d, func(_ string, fi os.FileInfo, err error) error {
			if err == nil && !fi.IsDir() {
				n += fi.Size()
			}
			return nil
		})
	}
	return n
}

func TestCompactOnline(t *testing.T) {
	o := testOpts(t)
	o.DataSize = 4096
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	big := strings.Repeat("x", 300)
	for i := 0; i < 60; i++ {
		set(t, ns, fmt.Sprintf("dead-%d", i), big)
	}
	set(t, ns, "hist", "v1")
	set(t, ns, "hist", "v2")
	set(t, ns, "keep", "k")
	set(t, ns, "changed", "before")
	set(t, ns, "gone", "soon")
	for i := 0; i < 60; i++ {
		ns.Delete([]byte(fmt.Sprintf("dead-%d", i)), 0)
	}
	set(t, ns, "hist", "v3")
	ns.CommitAll()
	before := dirSize(t, o.DataDir, o.IndexDir)
	// Writes that land while the copy runs.
	ns.compactHook = func() {
		set(t, ns, "changed", "after")
		if seq, err := ns.Delete([]byte("gone"), 0); err != nil {
			t.Error(err)
		} else {
			ns.Commit(seq)
		}
		set(t, ns, "new", "n")
	}
	res, err := ns.Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	after := dirSize(t, o.DataDir, o.IndexDir)
	if after >= before/2 {
		t.Fatalf("disk usage %d -> %d did not drop (%+v)", before, after, res)
	}
	check := func(ns *Namespace, live int) {
		t.Helper()
		for k, want := range map[string]string{"keep": "k", "changed": "after", "new": "n", "hist": "v3"} {
			if v, err := get(t, ns, k); err != nil || v != want {
				t.Fatalf("%s = %q %v, want %q", k, v, err, want)
			}
		}
		for _, k := range []string{"gone", "dead-1"} {
			if _, err := get(t, ns, k); !errors.Is(err, ErrNotFound) {
				t.Fatalf("%s: %v", k, err)
			}
		}
		var vals []string
		v, err := ns.History([]byte("hist"), nil)
		for err == nil {
			vals = append(vals, string(v.Value))
			if v.Parent == nil {
				break
			}
			v, err = ns.History([]byte("hist"), v.Parent)
		}
		if fmt.Sprint(vals) != "[v3 v2 v1]" || err != nil {
			t.Fatalf("history after compaction %v %v", vals, err)
		}
		v, err = ns.History([]byte("changed"), nil)
		if err != nil || v.Parent == nil {
			t.Fatalf("changed history %v", err)
		}
		if v, err = ns.History([]byte("changed"), v.Parent); err != nil || string(v.Value) != "before" {
			t.Fatalf("relinked history %q %v", v.Value, err)
		}
		items, err := ns.Scan(nil, 100, false)
		if err != nil || len(items) != live {
			var ks []string
			for _, it := range items {
				ks = append(ks, string(it.Key))
			}
			t.Fatalf("scan after compaction: %v %v", ks, err)
		}
	}
	check(ns, 4)
	set(t, ns, "later", "l")
	db.Close()
	if rep, _ := Verify(o.DataDir, o.IndexDir); !rep.OK() {
		t.Fatal(rep.Problems)
	}
	db = mustOpen(t, o)
	ns, _ = db.Namespace(DefaultNamespace)
	check(ns, 5)
}

func TestCompactRecovery(t *testing.T) {
	o := testOpts(t)
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	set(t, ns, "a", "1")
	db.Close()
	// A copy interrupted before its swap leaves .compact files: dropped.
	junk := filepath.Join(o.IndexDir, "default", "i0"+compactSuffix)
	os.WriteFile(junk, []byte("partial"), 0o600)
	tmp := filepath.Join(o.IndexDir, "default", ".i0"+compactSuffix+".123.tmp") // a seq swap writes index copies atomically
	os.WriteFile(tmp, []byte("partial"), 0o600)
	db = mustOpen(t, o)
	for _, p := range []string{junk, tmp} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Fatalf("leftover compaction file %s kept", p)
		}
	}
	ns, _ = db.Namespace(DefaultNamespace)
	if v, _ := get(t, ns, "a"); v != "1" {
		t.Fatal(v)
	}
}

// In seq mode ids are positions: a compaction drops the values of deleted
// ids only, and every id keeps its key, value and history.
func TestCompactSeq(t *testing.T) {
	o := testOpts(t)
	o.Mode = ModeSeq
	o.DataSize = 4096
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	alloc := func(v string) string { t.Helper(); return string(set(t, ns, "", v).Key) }
	del := func(k string) {
		t.Helper()
		seq, err := ns.Delete([]byte(k), 0)
		if err != nil {
			t.Fatal(err)
		}
		ns.Commit(seq)
	}
	big := strings.Repeat("x", 300)
	var dead []string
	for i := 0; i < 40; i++ {
		dead = append(dead, alloc(big))
	}
	hist := alloc("v1")
	set(t, ns, hist, "v2")
	keep := alloc("k")
	changed := alloc("before")
	gone := alloc("soon")
	churn := alloc(big) // updated, then deleted: its history goes too
	set(t, ns, churn, big+"2")
	for _, k := range dead {
		del(k)
	}
	del(churn)
	set(t, ns, hist, "v3")
	ns.CommitAll()
	before := dirSize(t, o.DataDir)
	var added string
	ns.compactHook = func() {
		set(t, ns, changed, "after")
		del(gone)
		added = alloc("n")
	}
	res, err := ns.Compact(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	if after := dirSize(t, o.DataDir); after >= before/2 {
		t.Fatalf("data %d -> %d bytes did not drop (%+v)", before, after, res)
	}
	nextID := ns.Stats().NextID
	check := func(ns *Namespace) {
		t.Helper()
		for k, want := range map[string]string{keep: "k", changed: "after", added: "n", hist: "v3"} {
			if v, err := get(t, ns, k); err != nil || v != want {
				t.Fatalf("id %x = %q %v, want %q", k, v, err, want)
			}
		}
		for _, k := range []string{gone, churn, dead[0], dead[39]} {
			if _, err := get(t, ns, k); !errors.Is(err, ErrNotFound) {
				t.Fatalf("deleted id %x: %v", k, err)
			}
			if _, err := ns.Set([]byte(k), []byte("back"), 0); !errors.Is(err, ErrUpdateOnly) {
				t.Fatalf("update of deleted id %x: %v", k, err)
			}
		}
		var vals []string
		v, err := ns.History([]byte(hist), nil)
		for err == nil {
			vals = append(vals, string(v.Value))
			if v.Parent == nil {
				break
			}
			v, err = ns.History([]byte(hist), v.Parent)
		}
		if fmt.Sprint(vals) != "[v3 v2 v1]" || err != nil {
			t.Fatalf("history after compaction %v %v", vals, err)
		}
		v, err = ns.History([]byte(changed), nil)
		if err == nil && v.Parent != nil {
			v, err = ns.History([]byte(changed), v.Parent)
		}
		if err != nil || string(v.Value) != "before" {
			t.Fatalf("history of an id updated during the copy: %q %v", v.Value, err)
		}
		if items, err := ns.Scan(nil, 100, false); err != nil || len(items) != 4 {
			t.Fatalf("scan after compaction: %d items %v", len(items), err)
		}
		if st := ns.Stats(); st.NextID != nextID || st.Entries != 4 {
			t.Fatalf("next id %d (want %d), %d entries", st.NextID, nextID, st.Entries)
		}
	}
	check(ns)
	db.Close()
	if rep, _ := Verify(o.DataDir, o.IndexDir); !rep.OK() {
		t.Fatal(rep.Problems)
	}
	db = mustOpen(t, o)
	ns, _ = db.Namespace(DefaultNamespace)
	check(ns)
	// Ids keep counting from where they were. The value of the id deleted
	// during the copy goes at the next compaction, and then nothing is left.
	if k := alloc("later"); le.Uint64([]byte(k)) != nextID {
		t.Fatalf("new id %d after compaction, want %d", le.Uint64([]byte(k)), nextID)
	}
	for _, want := range []int{1, 0} {
		if res, err := ns.Compact(context.Background()); err != nil || res.EntriesDrops != want {
			t.Fatalf("next compaction: %+v %v, want %d dropped", res, err, want)
		}
	}
	if v, err := get(t, ns, hist); err != nil || v != "v3" {
		t.Fatalf("after more compactions: %q %v", v, err)
	}
}
