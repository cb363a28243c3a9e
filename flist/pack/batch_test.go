package pack_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"sync/atomic"
	"testing"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/flisttest"
	"github.com/zosgrid/zos/flist/pack"
	"github.com/zosgrid/zos/flist/store"
)

// batchStore counts the calls pack makes on a directory store that can
// answer "which are missing" for many ids at once.
type batchStore struct {
	*store.Dir
	has, set, missing, asked atomic.Int64
	fail                     error
}

func (s *batchStore) Has(ctx context.Context, id flist.ID) (bool, error) {
	s.has.Add(1)
	return s.Dir.Has(ctx, id)
}

func (s *batchStore) Set(ctx context.Context, id flist.ID, data []byte) error {
	s.set.Add(1)
	return s.Dir.Set(ctx, id, data)
}

func (s *batchStore) Missing(ctx context.Context, ids []flist.ID) ([]flist.ID, error) {
	s.missing.Add(1)
	s.asked.Add(int64(len(ids)))
	if s.fail != nil {
		return nil, s.fail
	}
	var out []flist.ID
	for _, id := range ids {
		ok, err := s.Dir.Has(ctx, id)
		if err != nil {
			return nil, err
		}
		if !ok {
			out = append(out, id)
		}
	}
	return out, nil
}

func TestPackAsksInBatches(t *testing.T) {
	src := t.TempDir()
	flisttest.MakeTree(t, src)
	d, _ := store.NewDir(t.TempDir())
	s := &batchStore{Dir: d}
	pk := func() pack.Stats {
		st, err := pack.Dir(context.Background(), src, filepath.Join(t.TempDir(), "x.fl"), pack.Options{Store: s, Workers: 4})
		if err != nil {
			t.Fatal(err)
		}
		return st
	}
	first := pk()
	if first.UniqueBlocks < 2 {
		t.Fatalf("tree too small to test batching: %+v", first)
	}
	if s.has.Load() != 0 {
		t.Errorf("pack called Has %d times on a store with Missing", s.has.Load())
	}
	if got := s.set.Load(); got != int64(first.UniqueBlocks) || first.NewBlocks != first.UniqueBlocks {
		t.Errorf("first pack: %d Set calls, stats %+v; want every unique block uploaded once", got, first)
	}
	if s.asked.Load() != int64(first.UniqueBlocks) {
		t.Errorf("asked about %d ids, want %d", s.asked.Load(), first.UniqueBlocks)
	}

	s.set.Store(0)
	s.missing.Store(0)
	again := pk()
	if again.NewBlocks != 0 || s.set.Load() != 0 {
		t.Errorf("second pack uploaded %d blocks (%d Set calls), want none", again.NewBlocks, s.set.Load())
	}
	if n := s.missing.Load(); n < 1 || n > 3 {
		t.Errorf("second pack asked the store %d times, want 1 to 3 round trips", n)
	}

	// The restored tree still matches: blocks recorded through the batch path.
	fl := filepath.Join(t.TempDir(), "y.fl")
	if _, err := pack.Dir(context.Background(), src, fl, pack.Options{Store: s}); err != nil {
		t.Fatal(err)
	}
	root := os.Geteuid() == 0
	flisttest.Compare(t, flisttest.Scan(t, src, root), flisttest.Scan(t, unpackTo(t, fl, d), root))
}

func TestPackBatchError(t *testing.T) {
	src := t.TempDir()
	flisttest.MakeTree(t, src)
	d, _ := store.NewDir(t.TempDir())
	boom := errors.New("store unreachable")
	s := &batchStore{Dir: d, fail: boom}
	out := filepath.Join(t.TempDir(), "x.fl")
	_, err := pack.Dir(context.Background(), src, out, pack.Options{Store: s, Workers: 2})
	if !errors.Is(err, boom) {
		t.Fatalf("pack with a failing store: %v, want %v", err, boom)
	}
	if m, _ := filepath.Glob(out); len(m) != 0 {
		t.Errorf("failed pack left %v", m)
	}
}
