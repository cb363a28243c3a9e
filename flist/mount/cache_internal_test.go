package mount

import (
	"bytes"
	"context"
	"io"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
)

type oneBlock struct {
	id     flist.ID
	stored []byte
}

func (o oneBlock) Get(_ context.Context, id flist.ID) ([]byte, error) {
	if id != o.id {
		return nil, flist.ErrNotFound
	}
	return o.stored, nil
}

func readChunk(t *testing.T, c *Cache, b flist.Block, g BlockGetter) []byte {
	t.Helper()
	ch, err := c.openChunk(context.Background(), b, g)
	if err != nil {
		t.Fatal(err)
	}
	defer ch.Close()
	buf := make([]byte, 1<<16)
	n, err := ch.ReadAt(buf, 0)
	if err != nil && err != io.EOF {
		t.Fatal(err)
	}
	return buf[:n]
}

// A cache file willNeed opened is served only if it was opened after this
// process verified the entry: one opened before (a corrupt file dropped and
// fetched again since) is not the verified file.
func TestWarmFileOfAnEarlierEntryNotServed(t *testing.T) {
	c, err := NewCache(t.TempDir(), 0, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	plain := bytes.Repeat([]byte("good"), 1000)
	b, stored, err := flist.EncodeBlock(plain)
	if err != nil {
		t.Fatal(err)
	}
	g := oneBlock{b.ID, stored}
	if err := c.Prefetch(context.Background(), b, g); err != nil {
		t.Fatal(err)
	}
	if _, verified := c.touch(b.ID); !verified {
		t.Fatal("fetched block not verified")
	}

	stale := filepath.Join(t.TempDir(), "stale")
	if err := os.WriteFile(stale, bytes.Repeat([]byte("evil"), 1000), 0o600); err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Open(stale, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	c.warm.put(b.ID, warmFile{fd: fd}) // opened while no entry was verified
	if got := readChunk(t, c, b, g); !bytes.Equal(got, plain) {
		t.Fatalf("served %q..., want the verified content", got[:8])
	}
	if _, ok := c.warm.take(b.ID); ok {
		t.Fatal("stale file left for later reads")
	}

	c.willNeed(b.ID) // opened after verification: taken by the read
	if got := readChunk(t, c, b, g); !bytes.Equal(got, plain) {
		t.Fatalf("served %q..., want the verified content", got[:8])
	}
	if _, ok := c.warm.take(b.ID); ok {
		t.Fatal("file willNeed opened was not taken by the read")
	}
}
