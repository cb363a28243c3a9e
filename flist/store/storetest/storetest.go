package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/store"
)

// Harness is one fresh store under test.
type Harness struct {
	Store store.Store
	// Put stores a block bypassing the Store (for read-only stores); nil
	// means Store.Set is used.
	Put func(id flist.ID, data []byte)
	// Corrupt replaces the stored bytes of id behind the store's back.
	Corrupt func(id flist.ID, data []byte)
	// ReadOnly stores must refuse Set with store.ErrReadOnly.
	ReadOnly bool
}

// Run runs the conformance suite; newHarness is called once per subtest.
func Run(t *testing.T, newHarness func(t *testing.T) Harness) {
	ctx := context.Background()
	put := func(t *testing.T, h Harness, plain []byte) (flist.Block, []byte) {
		t.Helper()
		b, ct, err := flist.EncodeBlock(plain)
		if err != nil {
			t.Fatal(err)
		}
		if h.Put != nil {
			h.Put(b.ID, ct)
		} else if err := h.Store.Set(ctx, b.ID, ct); err != nil {
			t.Fatalf("Set: %v", err)
		}
		return b, ct
	}
	t.Run("RoundTrip", func(t *testing.T) {
		h := newHarness(t)
		b, ct := put(t, h, []byte("hello flist"))
		got, err := h.Store.Get(ctx, b.ID)
		if err != nil || !bytes.Equal(got, ct) {
			t.Fatalf("Get = %d bytes, %v; want the stored block", len(got), err)
		}
		ok, err := h.Store.Has(ctx, b.ID)
		if err != nil || !ok {
			t.Fatalf("Has = %v, %v; want true", ok, err)
		}
		plain, err := flist.DecodeBlock(b, got)
		if err != nil || string(plain) != "hello flist" {
			t.Fatalf("decode: %q %v", plain, err)
		}
	})
	t.Run("Missing", func(t *testing.T) {
		h := newHarness(t)
		var id flist.ID
		id[0], id[31] = 0x42, 0x17
		if _, err := h.Store.Get(ctx, id); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("Get(missing) = %v; want ErrNotFound", err)
		}
		ok, err := h.Store.Has(ctx, id)
		if err != nil || ok {
			t.Fatalf("Has(missing) = %v, %v; want false, nil", ok, err)
		}
	})
	t.Run("SetRefusesWrongID", func(t *testing.T) {
		h := newHarness(t)
		b, ct, _ := flist.EncodeBlock([]byte("x"))
		bad := append([]byte{}, ct...)
		bad[0] ^= 1
		err := h.Store.Set(ctx, b.ID, bad)
		if h.ReadOnly {
			if !errors.Is(err, store.ErrReadOnly) {
				t.Fatalf("Set on read-only store = %v; want ErrReadOnly", err)
			}
			return
		}
		if !errors.Is(err, flist.ErrCorruptBlock) {
			t.Fatalf("Set(wrong id) = %v; want ErrCorruptBlock", err)
		}
		if _, err := h.Store.Get(ctx, b.ID); !errors.Is(err, store.ErrNotFound) {
			t.Fatalf("after refused Set, Get = %v; want ErrNotFound", err)
		}
	})
	t.Run("SetTwice", func(t *testing.T) {
		h := newHarness(t)
		if h.ReadOnly {
			t.Skip("read-only store")
		}
		b, ct := put(t, h, []byte("twice"))
		if err := h.Store.Set(ctx, b.ID, ct); err != nil {
			t.Fatalf("second Set: %v", err)
		}
		if got, err := h.Store.Get(ctx, b.ID); err != nil || !bytes.Equal(got, ct) {
			t.Fatalf("Get after second Set: %v", err)
		}
	})
	t.Run("Corrupt", func(t *testing.T) {
		h := newHarness(t)
		if h.Corrupt == nil {
			t.Fatal("harness has no Corrupt function")
		}
		b, ct := put(t, h, bytes.Repeat([]byte("corrupt me "), 1000))
		bad := append([]byte{}, ct...)
		bad[len(bad)/2] ^= 0xff
		h.Corrupt(b.ID, bad)
		got, err := h.Store.Get(ctx, b.ID)
		if !errors.Is(err, flist.ErrCorruptBlock) {
			t.Fatalf("Get(corrupt) = %d bytes, %v; want ErrCorruptBlock", len(got), err)
		}
	})
	t.Run("ConcurrentGets", func(t *testing.T) {
		h := newHarness(t)
		var blocks []flist.Block
		var cts [][]byte
		for i := range 8 {
			b, ct := put(t, h, []byte(fmt.Sprintf("block %d", i)))
			blocks = append(blocks, b)
			cts = append(cts, ct)
		}
		var wg sync.WaitGroup
		errs := make(chan error, 64)
		for g := range 16 {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range blocks {
					j := (i + g) % len(blocks)
					got, err := h.Store.Get(ctx, blocks[j].ID)
					if err != nil || !bytes.Equal(got, cts[j]) {
						errs <- fmt.Errorf("get %d: %v", j, err)
						return
					}
				}
			}()
		}
		wg.Wait()
		close(errs)
		for err := range errs {
			t.Error(err)
		}
	})
	t.Run("Closed", func(t *testing.T) {
		h := newHarness(t)
		b, _ := put(t, h, []byte("closed"))
		if err := h.Store.Close(); err != nil {
			t.Fatalf("Close: %v", err)
		}
		if _, err := h.Store.Get(ctx, b.ID); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Get after Close = %v; want ErrClosed", err)
		}
		if _, err := h.Store.Has(ctx, b.ID); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Has after Close = %v; want ErrClosed", err)
		}
		if err := h.Store.Set(ctx, b.ID, nil); !errors.Is(err, store.ErrClosed) {
			t.Fatalf("Set after Close = %v; want ErrClosed", err)
		}
		if err := h.Store.Close(); err != nil {
			t.Fatalf("second Close: %v", err)
		}
	})
}
