package chain

import (
	"bytes"
	"os"
	"path/filepath"
	"testing"
)

func TestWriteSnapshot(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, snapshotFile)
	for _, b := range [][]byte{[]byte("first"), []byte("second, longer")} {
		if err := writeSnapshot(path, b); err != nil {
			t.Fatal(err)
		}
		got, err := os.ReadFile(path)
		if err != nil || !bytes.Equal(got, b) {
			t.Fatalf("read back %q %v, want %q", got, err, b)
		}
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Fatalf("temporary files left behind: %v", ents)
	}
	// A failed write keeps the old snapshot.
	if err := writeSnapshot(filepath.Join(dir, "missing", snapshotFile), []byte("x")); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
	if err := os.Mkdir(filepath.Join(dir, "blocked"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := writeSnapshot(filepath.Join(dir, "blocked"), []byte("x")); err == nil { // rename over a directory
		t.Fatal("replacing a directory succeeded")
	}
	if got, _ := os.ReadFile(path); string(got) != "second, longer" {
		t.Fatalf("old snapshot changed: %q", got)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 2 {
		t.Fatalf("temporary files left behind after a failure: %v", ents)
	}
}
