package hub

import (
	"context"

	"github.com/zosgrid/zos/flist"
)

// FlistBlocks lists the distinct block ids a .fl file references, after
// flist's own consistency checks; it is the default Config.ListBlocks.
func FlistBlocks(ctx context.Context, file string) ([][32]byte, error) {
	f, err := flist.Open(ctx, file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	t, err := f.Tree(ctx)
	if err != nil {
		return nil, err
	}
	seen := map[flist.ID]bool{}
	var ids [][32]byte
	for _, bs := range t.Blocks {
		for _, b := range bs {
			if !seen[b.ID] {
				seen[b.ID] = true
				ids = append(ids, b.ID)
			}
		}
	}
	return ids, nil
}
