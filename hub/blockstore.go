package hub

import (
	"context"
	"fmt"

	"github.com/zosgrid/zos/flist"
)

// blockStore gives conversions direct access to the hub's block namespace
// (flist/pack's BlockStore: Has and Set).
type blockStore struct{ s *Server }

func (b blockStore) Has(ctx context.Context, id flist.ID) (bool, error) {
	b.s.keepBlocks(id)
	return b.s.blocks.exists(ctx, blockKey(id))
}

func (b blockStore) Set(ctx context.Context, id flist.ID, data []byte) error {
	if !flist.CheckID(id, data) {
		return fmt.Errorf("hub: block %s: %w", id, flist.ErrCorruptBlock)
	}
	b.s.keepBlocks(id)
	if ok, err := b.s.blocks.exists(ctx, blockKey(id)); err != nil || ok {
		return err
	}
	if err := b.s.blocks.set(ctx, blockKey(id), data); err != nil {
		return err
	}
	b.s.metrics.blocksStored.Inc()
	b.s.metrics.bytesStored.Add(float64(len(data)))
	return nil
}

// Missing implements flist/pack's MissingFinder with the pipelined check
// the verify endpoint uses, so a re-conversion asks zdb in batches.
func (b blockStore) Missing(ctx context.Context, ids []flist.ID) ([]flist.ID, error) {
	raw := make([][32]byte, len(ids))
	for i, id := range ids {
		raw[i] = id
	}
	m, err := b.s.missing(ctx, raw)
	if err != nil {
		return nil, err
	}
	out := make([]flist.ID, len(m))
	for i, id := range m {
		out[i] = id
	}
	return out, nil
}
