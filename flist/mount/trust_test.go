package mount

import (
	"os"
	"syscall"
	"testing"

	"github.com/zosgrid/zos/flist"
)

// TestTrustLogCompactRewrites: a log mostly of stale records is rewritten
// with the live ones only, atomically (no temporary file left), and a new
// process loads exactly those.
func TestTrustLogCompactRewrites(t *testing.T) {
	dir := t.TempDir()
	tl, err := openTrustLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	live := map[trustKey]stamp{}
	for i := range 1100 {
		var id flist.ID
		id[0], id[1] = byte(i), byte(i>>8)
		st := &syscall.Stat_t{Ino: uint64(i + 1), Size: 4096}
		tl.record(trustKey{id: id}, st)
		if i%100 == 0 {
			live[trustKey{id: id}] = stampOf(st)
		}
	}
	before, _ := os.Stat(tl.path)
	if err := tl.compact(live); err != nil {
		t.Fatal(err)
	}
	after, _ := os.Stat(tl.path)
	if want := int64(len(live) * recordLen); after.Size() != want {
		t.Fatalf("log is %d bytes after compaction (was %d), want %d", after.Size(), before.Size(), want)
	}
	tl.record(trustKey{id: flist.ID{0xff}}, &syscall.Stat_t{Ino: 9999})
	again, err := openTrustLog(dir)
	if err != nil {
		t.Fatal(err)
	}
	if len(again.recs) != len(live)+1 {
		t.Fatalf("reopened log holds %d records, want %d", len(again.recs), len(live)+1)
	}
	for k, s := range live {
		if again.recs[k] != s {
			t.Errorf("record %x lost by compaction", k.id[:2])
		}
	}
	des, _ := os.ReadDir(dir)
	for _, de := range des {
		if de.Name() != trustKeyName && de.Name() != trustLogName {
			t.Errorf("compaction left %s behind", de.Name())
		}
	}
}
