package pack

import (
	"context"
	"fmt"
	"time"

	"github.com/zosgrid/zos/flist"
)

// MissingFinder is a store that can say, for many ids in one round trip,
// which it lacks (the hub's POST /api/v1/block/verify, zdb's pipelined
// EXISTS). Pack then asks in batches instead of once per block, so
// importing an image the store already holds costs a few round trips.
type MissingFinder interface {
	Missing(ctx context.Context, ids []flist.ID) ([]flist.ID, error)
}

// Batch limits: a batch is sent when it holds batchMaxBytes of ciphertext
// (which it keeps until the answer says whether to upload it), or
// batchLinger after its first block arrived, or when the pack has no more
// blocks.
const (
	batchMaxBytes = 64 << 20
	batchLinger   = 200 * time.Millisecond
)

// pendingBlock is a new (to this pack) encrypted block whose presence in
// the store is not known yet.
type pendingBlock struct {
	id flist.ID
	ct []byte
}

// queue hands a block the pack has not seen before to the batch checker.
func (b *builder) queue(id flist.ID, ct []byte) error {
	select {
	case b.pending <- pendingBlock{id: id, ct: ct}:
		return nil
	case <-b.ctx.Done():
		return b.ctx.Err()
	}
}

// checkBatches gathers pending blocks into batches, asks the store which
// are missing and passes those on to the uploaders. It closes b.uploads
// when it returns.
func (b *builder) checkBatches(mf MissingFinder) error {
	defer close(b.uploads)
	ctx := b.ctx
	for {
		var first pendingBlock
		var ok bool
		select {
		case first, ok = <-b.pending:
		case <-ctx.Done():
			return ctx.Err()
		}
		if !ok {
			return nil
		}
		batch := []pendingBlock{first}
		size := len(first.ct)
		timer := time.NewTimer(batchLinger)
	gather:
		for size < batchMaxBytes {
			select {
			case p, ok := <-b.pending:
				if !ok {
					break gather
				}
				batch = append(batch, p)
				size += len(p.ct)
			case <-timer.C:
				break gather
			case <-ctx.Done():
				timer.Stop()
				return ctx.Err()
			}
		}
		timer.Stop()
		ids := make([]flist.ID, len(batch))
		for i, p := range batch {
			ids[i] = p.id
		}
		missing, err := mf.Missing(ctx, ids)
		if err != nil {
			return fmt.Errorf("pack: store: %w", err)
		}
		b.log.Debug("checked blocks", "batch", len(batch), "missing", len(missing))
		want := make(map[flist.ID]bool, len(missing))
		for _, id := range missing {
			want[id] = true
		}
		for _, p := range batch {
			if !want[p.id] {
				continue
			}
			select {
			case b.uploads <- p:
			case <-ctx.Done():
				return ctx.Err()
			}
		}
	}
}

// uploader writes the blocks the store said it lacks.
func (b *builder) uploader() error {
	for p := range b.uploads {
		if err := b.opts.Store.Set(b.ctx, p.id, p.ct); err != nil {
			return fmt.Errorf("pack: upload block %s: %w", p.id, err)
		}
		b.nNew.Add(1)
		b.newBytes.Add(int64(len(p.ct)))
	}
	return nil
}
