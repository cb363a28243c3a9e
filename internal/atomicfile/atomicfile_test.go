package atomicfile

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
)

func TestWriteReplacesAndLeavesNoTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "state.json")
	if err := Write(p, []byte("old"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := Write(p, []byte("new"), 0o640); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(p)
	if err != nil || string(b) != "new" {
		t.Fatalf("read %q %v", b, err)
	}
	st, _ := os.Stat(p)
	if st.Mode().Perm() != 0o640 {
		t.Errorf("mode %v, want 0640", st.Mode().Perm())
	}
	ents, _ := os.ReadDir(dir)
	if len(ents) != 1 {
		t.Errorf("directory holds %d entries, want only the file", len(ents))
	}
}

func TestConcurrentWritersLeaveOneWholeVersion(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s")
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if err := Write(p, []byte(strings.Repeat(string(rune('a'+i)), 4096)), 0o600); err != nil {
				t.Error(err)
			}
		}()
	}
	wg.Wait()
	b, _ := os.ReadFile(p)
	if len(b) != 4096 || strings.Count(string(b), string(b[0])) != 4096 {
		t.Errorf("torn file: %d bytes", len(b))
	}
}

func TestWriteIntoMissingDirectoryFails(t *testing.T) {
	if err := Write(filepath.Join(t.TempDir(), "no", "such"), []byte("x"), 0o600); err == nil {
		t.Fatal("write into a missing directory succeeded")
	}
}

func TestJSONRoundTripAndCorruptFile(t *testing.T) {
	p := filepath.Join(t.TempDir(), "s.json")
	type rec struct{ Name string }
	if err := WriteJSON(p, rec{"x"}); err != nil {
		t.Fatal(err)
	}
	var r rec
	if err := ReadJSON(p, &r); err != nil || r.Name != "x" {
		t.Fatalf("%+v %v", r, err)
	}
	os.WriteFile(p, []byte("{not json"), 0o600)
	if err := ReadJSON(p, &r); err == nil || !strings.Contains(err.Error(), "corrupt") || !strings.Contains(err.Error(), p) {
		t.Errorf("corrupt file: %v", err)
	}
	if err := ReadJSON(p+".missing", &r); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestVolatileJSONReplacesWithoutTemporaryFiles(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "status.json")
	type rec struct{ Pid int }
	for pid := range 3 {
		if err := WriteJSONVolatile(p, rec{pid}); err != nil {
			t.Fatal(err)
		}
	}
	var r rec
	if err := ReadJSON(p, &r); err != nil || r.Pid != 2 {
		t.Fatalf("read back %+v, %v; want the last write", r, err)
	}
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o600 {
		t.Fatalf("mode: %v %v", st, err)
	}
	if ents, _ := os.ReadDir(dir); len(ents) != 1 {
		t.Fatalf("left %d files, want only status.json", len(ents))
	}
}
