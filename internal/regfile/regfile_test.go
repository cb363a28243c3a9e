package regfile

import (
	"bytes"
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"testing"
)

func TestReadFile(t *testing.T) {
	dir := t.TempDir()
	p := filepath.Join(dir, "block")
	want := bytes.Repeat([]byte("0123456789"), 70000) // over one read of some file systems
	if err := os.WriteFile(p, want, 0o400); err != nil {
		t.Fatal(err)
	}
	got, err := ReadFile(p, 0)
	if err != nil || !bytes.Equal(got, want) {
		t.Fatalf("ReadFile: %d bytes, %v; want %d bytes", len(got), err, len(want))
	}
	if _, err := ReadFile(p, int64(len(want)-1)); !errors.Is(err, ErrTooLarge) {
		t.Errorf("over the limit: err = %v, want ErrTooLarge", err)
	}
	empty := filepath.Join(dir, "empty")
	os.WriteFile(empty, nil, 0o600)
	if got, err := ReadFile(empty, 10); err != nil || len(got) != 0 {
		t.Errorf("empty file: %q, %v", got, err)
	}
	if _, err := ReadFile(filepath.Join(dir, "missing"), 0); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
	if _, err := ReadFile(dir, 0); err == nil {
		t.Error("a directory was read as a file")
	}
}

func TestCreateExclusiveAndOpen(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	f, err := CreateExclusive(p, 0o400)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.Write([]byte("data")); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if st, err := os.Stat(p); err != nil || st.Mode().Perm() != 0o400 {
		t.Fatalf("mode %v, %v; want 0400", st.Mode(), err)
	}
	if _, err := CreateExclusive(p, 0o400); !errors.Is(err, fs.ErrExist) {
		t.Errorf("second create: err = %v, want fs.ErrExist", err)
	}
	r, err := Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	b := make([]byte, 8)
	if n, err := r.ReadAt(b, 0); n != 4 || string(b[:n]) != "data" {
		t.Errorf("ReadAt = %q, %v", b[:n], err)
	}
}

func TestOpenFD(t *testing.T) {
	p := filepath.Join(t.TempDir(), "f")
	os.WriteFile(p, []byte("bare"), 0o400)
	fd, err := OpenFD(p)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	b := make([]byte, 4)
	if n, err := f.ReadAt(b, 0); n != 4 || string(b) != "bare" {
		t.Errorf("read %q, %v", b[:n], err)
	}
	if _, err := OpenFD(p + ".missing"); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing file: err = %v, want fs.ErrNotExist", err)
	}
}
