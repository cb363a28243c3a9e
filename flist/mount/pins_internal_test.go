package mount

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/internal/dirlock"
)

// A pin outlives its process only while its mount exists: opening the
// cache removes the pins of dead processes whose mount is gone, and keeps
// the others.
func TestCleanPins(t *testing.T) {
	dir := t.TempDir()
	c, err := NewCache(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	var stx unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, "/", 0, unix.STATX_MNT_ID, &stx); err != nil {
		t.Fatal(err)
	}
	pinWith := func(mntID uint64, id byte) *pin {
		p, err := c.pin([]flist.ID{{id}})
		if err != nil {
			t.Fatal(err)
		}
		if err := p.setMount(mntID); err != nil {
			t.Fatal(err)
		}
		return p
	}
	gone := pinWith(1<<62, 1)         // no such mount
	mounted := pinWith(stx.Mnt_id, 2) // a mount that exists
	living := pinWith(1<<62, 3)       // its process still holds it
	defer living.release()
	// The first two processes "die": their locks go, their files stay.
	gone.f.Close()
	mounted.f.Close()

	c2, err := NewCache(dir, 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c2.Close()
	for _, p := range []*pin{gone, mounted, living} {
		_, err := os.Stat(p.path)
		if want := p != gone; (err == nil) != want {
			t.Errorf("pin %s: kept %v, want %v", filepath.Base(p.path), err == nil, want)
		}
	}
	lock, err := os.Open(filepath.Join(dir, pinsDir, dirlock.Name))
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Close()
	c2.mu.Lock()
	pinned := c2.pinnedLocked(lock)
	c2.mu.Unlock()
	if pinned[flist.ID{1}] || !pinned[flist.ID{2}] || !pinned[flist.ID{3}] {
		t.Errorf("pinned after cleaning: %v", pinned)
	}
}
