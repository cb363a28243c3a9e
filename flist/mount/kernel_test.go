package mount_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/flisttest"
	"github.com/zosgrid/zos/flist/mount"
	"github.com/zosgrid/zos/internal/zostest"
)

// warmUp reads every file of the fixture's flist through a FUSE mount, so
// that every file's content is in the cache, then unmounts.
func (fx *fixture) warmUp(t *testing.T) {
	t.Helper()
	m, mp := fx.mount(t, mount.Options{Kernel: mount.KernelAuto, PassthroughMin: -1})
	if m.Kernel() {
		t.Fatal("a flist with nothing cached was mounted by the kernel")
	}
	flisttest.Scan(t, mp, true) // reads every byte
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
}

// reopenCache opens the fixture's cache directory again, as a new mount
// process does, with a size bound.
func (fx *fixture) reopenCache(t *testing.T, bound int64) *mount.Cache {
	t.Helper()
	c, err := mount.NewCache(fx.cache.Dir(), bound, slog.New(slog.NewTextHandler(fx.logs, nil)))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	c.Backoff = 1
	return c
}

func pinFiles(t *testing.T, cacheDir string) []string {
	t.Helper()
	p, _ := filepath.Glob(filepath.Join(cacheDir, "pins", "pin-*"))
	return p
}

func TestKernelMountRoundTrip(t *testing.T) {
	zostest.RequiresFUSE(t)
	fx := newFixture(t, func(d string) {
		flisttest.MakeTree(t, d)
		// An xattr overlayfs would act on must reach the reader as it is.
		if err := unix.Lsetxattr(filepath.Join(d, "deep"), "trusted.overlay.opaque", []byte("y"), 0); err != nil {
			t.Fatal(err)
		}
	}, 0)
	want := flisttest.Scan(t, fx.src, true)
	fx.warmUp(t)
	gets := fx.store.gets.Load()

	fx.cache = fx.reopenCache(t, 0) // a new process: files trusted on their records
	m, mp := fx.mount(t, mount.Options{Kernel: mount.KernelOnly})
	if !m.Kernel() {
		t.Fatal("not mounted by the kernel")
	}
	if len(pinFiles(t, fx.cache.Dir())) != 1 {
		t.Fatal("the kernel mount pinned no cache entries")
	}
	flisttest.Compare(t, want, flisttest.Scan(t, mp, true))
	if n := fx.store.gets.Load() - gets; n != 0 {
		t.Errorf("a kernel mount of a cached flist fetched %d blocks", n)
	}
	if s := fx.cache.Stats(); s.Rehashed != 0 {
		t.Errorf("cached files re-hashed on their way to the kernel: %+v", s)
	}
	if err := m.Unmount(); err != nil {
		t.Fatal(err)
	}
	if p := pinFiles(t, fx.cache.Dir()); len(p) != 0 {
		t.Fatalf("pins left after unmount: %v", p)
	}
}

func TestKernelMountNeedsEveryFileCached(t *testing.T) {
	zostest.RequiresFUSE(t)
	fx := newFixture(t, func(d string) { flisttest.MakeTree(t, d) }, 0)
	f, err := flist.Open(context.Background(), fx.fl)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	_, err = mount.New(context.Background(), f, t.TempDir(), mount.Options{Cache: fx.cache, Store: fx.store, Kernel: mount.KernelOnly})
	if err == nil || !strings.Contains(err.Error(), "not in the cache") {
		t.Fatalf("kernel mount of an uncached flist: %v", err)
	}
	if p := pinFiles(t, fx.cache.Dir()); len(p) != 0 {
		t.Fatalf("a refused kernel mount left pins: %v", p)
	}
	if n := fx.store.gets.Load(); n != 0 {
		t.Fatalf("checking the cache fetched %d blocks", n)
	}
}

// A cache file changed after it was verified is not handed to the kernel:
// the mount falls back to FUSE, which fetches the block again.
func TestKernelMountRefusesTamperedCache(t *testing.T) {
	zostest.RequiresFUSE(t)
	data := flisttest.Random(41, 100<<10)
	fx := newFixture(t, func(d string) { os.WriteFile(filepath.Join(d, "f"), data, 0o644) }, 0)
	fx.warmUp(t)
	files := cacheFiles(t, fx.cache.Dir())
	if len(files) != 1 {
		t.Fatalf("cache files: %v", files)
	}
	p := files[0]
	if err := os.Chmod(p, 0o600); err != nil {
		t.Fatal(err)
	}
	bad := bytes.Clone(data)
	bad[5000] ^= 1
	if err := os.WriteFile(p, bad, 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(p, 0o400); err != nil {
		t.Fatal(err)
	}
	fx.cache = fx.reopenCache(t, 0)
	m, mp := fx.mount(t, mount.Options{Kernel: mount.KernelAuto})
	if m.Kernel() {
		t.Fatal("a tampered cache file was handed to the kernel")
	}
	got, err := os.ReadFile(filepath.Join(mp, "f"))
	if err != nil || !bytes.Equal(got, data) {
		t.Fatalf("read after tampering: %v (equal %v)", err, bytes.Equal(got, data))
	}
}

// The files a kernel mount reads are pinned: another process sharing the
// cache with a tiny bound evicts around them, and once the mount is gone
// (here unmounted by hand) they may go.
func TestKernelMountPinsItsFiles(t *testing.T) {
	zostest.RequiresFUSE(t)
	files := map[string][]byte{}
	fx := newFixture(t, func(d string) {
		for i := range 4 {
			name := fmt.Sprintf("f%d", i)
			files[name] = flisttest.Random(uint64(50+i), 200<<10)
			os.WriteFile(filepath.Join(d, name), files[name], 0o644)
		}
	}, 0)
	fx.warmUp(t)
	m, mp := fx.mount(t, mount.Options{Kernel: mount.KernelOnly})
	if !m.Kernel() {
		t.Fatal("not mounted by the kernel")
	}
	fx.cache.Close()                    // counts its files in the directory's shared total
	small := fx.reopenCache(t, 100<<10) // evicts at open, down to its bound
	if n := len(cacheFiles(t, fx.cache.Dir())); n != 4 {
		t.Fatalf("%d cache files left of 4 pinned", n)
	}
	if s := small.Stats(); s.Evictions != 0 {
		t.Fatalf("evictions of pinned files: %+v", s)
	}
	for name, want := range files {
		got, err := os.ReadFile(filepath.Join(mp, name))
		if err != nil || !bytes.Equal(got, want) {
			t.Fatalf("%s after eviction: %v", name, err)
		}
	}

	if err := unix.Unmount(mp, 0); err != nil {
		t.Fatal(err)
	}
	m.Wait() // returns once the unmount is seen and the pin released
	if p := pinFiles(t, fx.cache.Dir()); len(p) != 0 {
		t.Fatalf("pins left after umount: %v", p)
	}
	small.Close()
	fx.reopenCache(t, 100<<10)
	if n := len(cacheFiles(t, fx.cache.Dir())); n != 1 {
		t.Fatalf("unpinned files not evicted: %d cache files, want 1 (the most recent)", n)
	}
	if err := m.Unmount(); err != nil && !errors.Is(err, unix.EINVAL) {
		t.Fatalf("unmount after umount: %v", err)
	}
}
