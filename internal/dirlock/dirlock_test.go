package dirlock

import (
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// Shared locks coexist; an exclusive one waits for them, also within one
// process (each Take has its own file description).
func TestTakeExcludes(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "state")
	a, err := Take(dir, 0o700, unix.LOCK_SH)
	if err != nil {
		t.Fatal(err)
	}
	b, err := Take(dir, 0o700, unix.LOCK_SH)
	if err != nil {
		t.Fatalf("second shared lock: %v", err)
	}
	if _, err := Take(dir, 0o700, unix.LOCK_EX|unix.LOCK_NB); err == nil {
		t.Fatal("exclusive lock taken while shared ones are held")
	}
	a.Close()
	b.Close()
	c, err := Take(dir, 0o700, unix.LOCK_EX|unix.LOCK_NB)
	if err != nil {
		t.Fatalf("exclusive lock after release: %v", err)
	}
	c.Close()
}
