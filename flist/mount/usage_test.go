package mount_test

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/flisttest"
	"github.com/zosgrid/zos/flist/mount"
)

// mapStore is an in-memory block store.
type mapStore map[flist.ID][]byte

func (m mapStore) Get(_ context.Context, id flist.ID) ([]byte, error) {
	if b, ok := m[id]; ok {
		return b, nil
	}
	return nil, flist.ErrNotFound
}

func blocks(t *testing.T, n int, size int) ([]flist.Block, mapStore) {
	t.Helper()
	st := mapStore{}
	var bs []flist.Block
	for i := range n {
		b, data, err := flist.EncodeBlock(flisttest.Random(uint64(1000+i), size))
		if err != nil {
			t.Fatal(err)
		}
		st[b.ID] = data
		bs = append(bs, b)
	}
	return bs, st
}

// fetch puts every block of bs in cache c.
func fetch(t *testing.T, c *mount.Cache, bs []flist.Block, st mapStore) {
	t.Helper()
	for _, blk := range bs {
		f, err := c.Open(context.Background(), blk, st)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
	}
}

// cacheBytes is what the block files in dir really take.
func cacheBytes(t *testing.T, dir string) int64 {
	t.Helper()
	var n int64
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			if _, perr := flist.ParseID(d.Name()); perr == nil {
				info, _ := d.Info()
				n += info.Size()
			}
		}
		return nil
	})
	return n
}

// TestCacheBoundIsSharedByProcesses opens one directory twice, as two
// supervisors of a node do, and fills it through both: the bound holds for
// the directory, not for each of them, and each still serves every block
// (fetching again what the other evicted).
func TestCacheBoundIsSharedByProcesses(t *testing.T) {
	const size = 64 << 10
	bs, st := blocks(t, 12, size)
	dir := t.TempDir()
	a, err := mount.NewCache(dir, 4*size, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mount.NewCache(dir, 4*size, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	var wg sync.WaitGroup
	for i, c := range []*mount.Cache{a, b} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for round := range 2 {
				for j := range 6 {
					blk := bs[(i*6+j+round*3)%len(bs)]
					f, err := c.Open(ctx, blk, st)
					if err != nil {
						t.Errorf("cache %d block %d: %v", i, j, err)
						return
					}
					f.Close()
				}
			}
		}()
	}
	wg.Wait()
	if got := cacheBytes(t, dir); got > 5*size {
		t.Errorf("the directory holds %d bytes, bound %d (+1 block of slack): each process bounded only its own files", got, 4*size)
	}
	if sa, sb, real := a.Stats().Size, b.Stats().Size, cacheBytes(t, dir); sa != real || sb != real {
		t.Errorf("shared total %d / %d, files %d", sa, sb, real)
	}
	// A third opener recounts from the files, healing any drift.
	c, err := mount.NewCache(dir, 4*size, nil)
	if err != nil {
		t.Fatal(err)
	}
	if c.Stats().Size != cacheBytes(t, dir) {
		t.Errorf("after a rescan the total is %d, files %d", c.Stats().Size, cacheBytes(t, dir))
	}
}

// TestCacheUsageBatchedUntilClose: with a large bound, a process counts
// small changes in the shared total in batches, and Close counts the rest.
func TestCacheUsageBatchedUntilClose(t *testing.T) {
	const size = 64 << 10
	bs, st := blocks(t, 3, size)
	dir := t.TempDir()
	a, err := mount.NewCache(dir, 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	b, err := mount.NewCache(dir, 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	fetch(t, a, bs, st)
	real := cacheBytes(t, dir)
	if got := b.Stats().Size; got > real {
		t.Fatalf("the other process sees %d bytes, more than the %d there are", got, real)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got := b.Stats().Size; got != real {
		t.Fatalf("after Close the other process sees %d bytes, files hold %d", got, real)
	}
}

// TestCacheOpenWhileInUseKeepsTheTotal: a cache opened while another
// process uses the directory must not rewrite the total from its scan: the
// scan sees the files the other process has not counted yet (its batch),
// which its Close then adds a second time.
func TestCacheOpenWhileInUseKeepsTheTotal(t *testing.T) {
	const size = 64 << 10
	bs, st := blocks(t, 3, size)
	dir := t.TempDir()
	a, err := mount.NewCache(dir, 1<<30, nil) // batch 4 MiB: nothing counted yet
	if err != nil {
		t.Fatal(err)
	}
	fetch(t, a, bs, st)
	b, err := mount.NewCache(dir, 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
	if got, real := b.Stats().Size, cacheBytes(t, dir); got != real {
		t.Errorf("total %d, files hold %d", got, real)
	}
	if err := b.Close(); err != nil {
		t.Fatal(err)
	}
	// Alone, an opener recounts from the files, healing drift.
	os.WriteFile(filepath.Join(dir, ".usage"), []byte{1, 0, 0, 0, 0, 0, 0, 0}, 0o600)
	c, err := mount.NewCache(dir, 1<<30, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	if got, real := c.Stats().Size, cacheBytes(t, dir); got != real {
		t.Errorf("after a rescan alone: total %d, files hold %d", got, real)
	}
}

// TestCacheOpenKeepsOtherProcessesTempFiles: opening a cache removes what
// an interrupted fetch left behind, but not a file another live process is
// writing right now.
func TestCacheOpenKeepsOtherProcessesTempFiles(t *testing.T) {
	dir := t.TempDir()
	if _, err := mount.NewCache(dir, 0, nil); err != nil {
		t.Fatal(err)
	}
	sub := filepath.Join(dir, "ab")
	os.MkdirAll(sub, 0o700)
	live := exec.Command("sleep", "30")
	if err := live.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { live.Process.Kill(); live.Wait() }()
	dead := exec.Command("true")
	dead.Run()
	keep := filepath.Join(sub, fmt.Sprintf(".fetch-%d-1", live.Process.Pid))
	stale := filepath.Join(sub, fmt.Sprintf(".fetch-%d-1", dead.Process.Pid))
	old := filepath.Join(sub, ".fetch-old")
	for _, p := range []string{keep, stale, old} {
		os.WriteFile(p, []byte("partial"), 0o400)
	}
	if _, err := mount.NewCache(dir, 0, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(keep); err != nil {
		t.Errorf("the temporary file of a live process was removed: %v", err)
	}
	for _, p := range []string{stale, old} {
		if _, err := os.Stat(p); !os.IsNotExist(err) {
			t.Errorf("%s left by a dead writer was kept", filepath.Base(p))
		}
	}
}
