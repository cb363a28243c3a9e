package pack

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math"
	"runtime"
	"sort"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/zosgrid/zos/flist"
)

// BlockStore is what pack needs from a store.
type BlockStore interface {
	Has(ctx context.Context, id flist.ID) (bool, error)
	Set(ctx context.Context, id flist.ID, data []byte) error
}

// Options configure a pack.
type Options struct {
	Store       BlockStore
	Routes      []flist.Route     // saved in the route table (strip passwords first)
	Tags        map[string]string // saved in the tag table
	Meta        map[string][]byte // saved in zos_meta
	ImageConfig []byte            // OCI image config JSON, saved as flist.MetaImageConfig
	Workers     int               // parallel encode+upload workers; 0 = 4 x GOMAXPROCS
	// Progress, if set, is called about every 200ms and once at the end.
	Progress func(Stats)
	Logger   *slog.Logger
}

// Stats summarises a pack.
type Stats struct {
	Files, Dirs, Symlinks, HardLinks, Special int
	Bytes                                     int64 // bytes of regular file content
	Blocks                                    int   // blocks referenced
	UniqueBlocks                              int   // distinct blocks in this flist
	NewBlocks                                 int   // blocks the store did not have
	NewBytes                                  int64 // encrypted bytes written
}

// DedupRatio is referenced blocks per new block written: 1 when every block
// was new, higher when the store or the tree already had them, +Inf when
// nothing had to be written.
func (s Stats) DedupRatio() float64 {
	if s.NewBlocks == 0 {
		if s.Blocks == 0 {
			return 1
		}
		return math.Inf(1)
	}
	return float64(s.Blocks) / float64(s.NewBlocks)
}

// ErrBadInput means the source tree or tar stream cannot be packed.
var ErrBadInput = errors.New("pack: bad input")

type job struct {
	ino  uint64
	idx  int
	data []byte
	pool bool
}

// builder is shared by Dir and Tar: the walker adds inodes (single
// goroutine) and queues chunks; workers encode and upload them.
type builder struct {
	ctx     context.Context
	w       *flist.Writer
	opts    Options
	workers int
	log     *slog.Logger
	jobs    chan job
	// with a MissingFinder store: new blocks go through pending to the
	// batch checker, and the missing ones through uploads to uploaders.
	pending chan pendingBlock
	uploads chan pendingBlock
	mu      sync.Mutex
	blocks  map[uint64][]flist.Block
	links   map[uint64]uint64      // link ino -> target ino
	attrs   map[uint64]flist.Inode // tar: regular file attributes, for hard links
	seen    sync.Map               // flist.ID -> struct{}
	stats   Stats
	// counters updated by workers
	nBlocks, nUnique, nNew atomic.Int64
	newBytes, bytes        atomic.Int64
}

var bufPool = sync.Pool{New: func() any { b := make([]byte, flist.BlockSize); return &b }}

func run(ctx context.Context, out string, opts Options, walk func(b *builder) error) (Stats, error) {
	if opts.Store == nil {
		return Stats{}, errors.New("pack: no store")
	}
	if opts.Logger == nil {
		opts.Logger = slog.New(slog.DiscardHandler)
	}
	workers := opts.Workers
	if workers <= 0 {
		workers = 4 * runtime.GOMAXPROCS(0)
	}
	w, err := flist.Create(ctx, out)
	if err != nil {
		return Stats{}, err
	}
	defer w.Abort()
	g, gctx := errgroup.WithContext(ctx)
	b := &builder{
		ctx: gctx, w: w, opts: opts, workers: workers, log: opts.Logger.With("component", "flist-pack"),
		jobs: make(chan job, workers*2), blocks: map[uint64][]flist.Block{}, links: map[uint64]uint64{}, attrs: map[uint64]flist.Inode{},
	}
	// producers are the walk and the encode workers; once they are done no
	// more blocks can be queued for the batch checker.
	var producers sync.WaitGroup
	producers.Add(workers + 1)
	mf, batched := opts.Store.(MissingFinder)
	if batched {
		b.pending = make(chan pendingBlock, workers*2)
		b.uploads = make(chan pendingBlock, workers)
		g.Go(func() error { return b.checkBatches(mf) })
		for range workers {
			g.Go(b.uploader)
		}
		g.Go(func() error {
			producers.Wait()
			close(b.pending)
			return nil
		})
	}
	for range workers {
		g.Go(func() error {
			defer producers.Done()
			return b.worker()
		})
	}
	stopProgress := make(chan struct{})
	progressDone := make(chan struct{})
	go func() {
		defer close(progressDone)
		if opts.Progress == nil {
			return
		}
		t := time.NewTicker(200 * time.Millisecond)
		defer t.Stop()
		for {
			select {
			case <-stopProgress:
				return
			case <-t.C:
				opts.Progress(b.snapshot())
			}
		}
	}()
	g.Go(func() error {
		defer producers.Done()
		defer close(b.jobs)
		return walk(b)
	})
	err = g.Wait()
	close(stopProgress)
	<-progressDone
	if err != nil {
		return b.snapshot(), err
	}
	b.ctx = ctx // the errgroup's context is canceled once Wait returns
	if err := b.finish(); err != nil {
		return b.snapshot(), err
	}
	if err := w.Commit(); err != nil {
		return b.snapshot(), err
	}
	st := b.snapshot()
	if opts.Progress != nil {
		opts.Progress(st)
	}
	b.log.Info("packed", "out", out, "files", st.Files, "bytes", st.Bytes, "blocks", st.Blocks, "new", st.NewBlocks)
	return st, nil
}

func (b *builder) snapshot() Stats {
	b.mu.Lock()
	s := b.stats
	b.mu.Unlock()
	s.Blocks = int(b.nBlocks.Load())
	s.UniqueBlocks = int(b.nUnique.Load())
	s.NewBlocks = int(b.nNew.Load())
	s.NewBytes = b.newBytes.Load()
	s.Bytes = b.bytes.Load()
	return s
}

func (b *builder) count(f func(s *Stats)) {
	b.mu.Lock()
	f(&b.stats)
	b.mu.Unlock()
}

// addFile reads r to the end in BlockSize chunks and queues them for ino.
// It returns the number of bytes read.
func (b *builder) addFile(ino uint64, r io.Reader) (int64, error) {
	var total int64
	for idx := 0; ; idx++ {
		bp := bufPool.Get().(*[]byte)
		n, err := io.ReadFull(r, *bp)
		if n > 0 {
			total += int64(n)
			b.mu.Lock()
			if len(b.blocks[ino]) <= idx {
				b.blocks[ino] = append(b.blocks[ino], flist.Block{})
			}
			b.mu.Unlock()
			select {
			case b.jobs <- job{ino: ino, idx: idx, data: (*bp)[:n], pool: true}:
			case <-b.ctx.Done():
				return total, b.ctx.Err()
			}
		} else {
			bufPool.Put(bp)
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return total, fmt.Errorf("pack: read: %w", err)
		}
	}
	b.bytes.Add(total)
	return total, nil
}

func (b *builder) worker() error {
	for j := range b.jobs {
		err := b.encode(j.ino, j.idx, j.data)
		if j.pool {
			d := j.data[:cap(j.data)]
			bufPool.Put(&d)
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// encode encrypts one chunk, uploads it if the store lacks it, and records
// it as chunk idx of ino.
func (b *builder) encode(ino uint64, idx int, data []byte) error {
	blk, ct, err := flist.EncodeBlock(data)
	if err != nil {
		return err
	}
	b.nBlocks.Add(1)
	if _, dup := b.seen.LoadOrStore(blk.ID, struct{}{}); !dup {
		b.nUnique.Add(1)
		if err := b.store(blk.ID, ct); err != nil {
			return err
		}
	}
	b.mu.Lock()
	for len(b.blocks[ino]) <= idx {
		b.blocks[ino] = append(b.blocks[ino], flist.Block{})
	}
	b.blocks[ino][idx] = blk
	b.mu.Unlock()
	return nil
}

// store sends a block this pack has not seen before to the store: through
// the batch checker when the store can answer for many ids at once, else
// with one Has (and a Set when missing).
func (b *builder) store(id flist.ID, ct []byte) error {
	if b.pending != nil {
		return b.queue(id, ct)
	}
	has, err := b.opts.Store.Has(b.ctx, id)
	if err != nil {
		return fmt.Errorf("pack: store: %w", err)
	}
	if !has {
		if err := b.opts.Store.Set(b.ctx, id, ct); err != nil {
			return fmt.Errorf("pack: upload block %s: %w", id, err)
		}
		b.nNew.Add(1)
		b.newBytes.Add(int64(len(ct)))
	}
	return nil
}

// encodeFile reads r in BlockSize chunks and encodes them in this
// goroutine (directory packing runs many of these in parallel). It returns
// the number of bytes read.
func (b *builder) encodeFile(ino uint64, r io.Reader) (int64, error) {
	bp := bufPool.Get().(*[]byte)
	defer bufPool.Put(bp)
	var total int64
	for idx := 0; ; idx++ {
		n, err := io.ReadFull(r, *bp)
		if n > 0 {
			total += int64(n)
			if err := b.encode(ino, idx, (*bp)[:n]); err != nil {
				return total, err
			}
		}
		if err == io.EOF || err == io.ErrUnexpectedEOF {
			break
		}
		if err != nil {
			return total, fmt.Errorf("pack: read: %w", err)
		}
	}
	b.bytes.Add(total)
	return total, nil
}

// finish writes block rows (per inode, in chunk order), hard links, tags,
// routes and metadata.
func (b *builder) finish() error {
	ctx := b.ctx
	for link, target := range b.links {
		b.blocks[link] = b.blocks[target]
		if err := b.w.AddHardLink(ctx, link, target); err != nil {
			return err
		}
	}
	inos := make([]uint64, 0, len(b.blocks))
	for ino := range b.blocks {
		inos = append(inos, ino)
	}
	sort.Slice(inos, func(i, j int) bool { return inos[i] < inos[j] })
	for _, ino := range inos {
		if err := b.w.AddBlocks(ctx, ino, b.blocks[ino]); err != nil {
			return err
		}
	}
	keys := make([]string, 0, len(b.opts.Tags))
	for k := range b.opts.Tags {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := b.w.SetTag(ctx, k, b.opts.Tags[k]); err != nil {
			return err
		}
	}
	for _, r := range b.opts.Routes {
		if err := b.w.AddRoute(ctx, r); err != nil {
			return err
		}
	}
	for k, v := range b.opts.Meta {
		if err := b.w.SetMeta(ctx, k, v); err != nil {
			return err
		}
	}
	if b.opts.ImageConfig != nil {
		if err := b.w.SetMeta(ctx, flist.MetaImageConfig, b.opts.ImageConfig); err != nil {
			return err
		}
	}
	return nil
}
