package container

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestRotatingWriter(t *testing.T) {
	p := filepath.Join(t.TempDir(), "current.log")
	w, err := NewRotatingWriter(p, 10, 2)
	if err != nil {
		t.Fatal(err)
	}
	for _, s := range []string{"aaaa\n", "bbbb\n", "cccc\n", "dddd\n", "eeee\n", "ffff\n"} {
		if _, err := w.Write([]byte(s)); err != nil {
			t.Fatal(err)
		}
	}
	w.Close()
	read := func(name string) string {
		b, _ := os.ReadFile(name)
		return string(b)
	}
	// 10 bytes per file: two lines each; two rotated files kept, the oldest dropped.
	if got := read(p); got != "eeee\nffff\n" {
		t.Errorf("current %q", got)
	}
	if got := read(p + ".1"); got != "cccc\ndddd\n" {
		t.Errorf(".1 %q", got)
	}
	if got := read(p + ".2"); got != "aaaa\nbbbb\n" {
		t.Errorf(".2 %q", got)
	}
	if _, err := os.Stat(p + ".3"); !os.IsNotExist(err) {
		t.Errorf("kept more than 2 rotated files")
	}
	// Reopening appends.
	w, _ = NewRotatingWriter(p, 100, 2)
	w.Write([]byte("gggg\n"))
	w.Close()
	if got := read(p); !strings.HasSuffix(got, "ffff\ngggg\n") {
		t.Errorf("reopen %q", got)
	}
}
