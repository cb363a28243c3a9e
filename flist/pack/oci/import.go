package oci

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
)

// ImportOptions configure Import.
type ImportOptions struct {
	Source SourceOptions
	// TempDir holds the spooled layers while importing; empty means the
	// system's temporary directory.
	TempDir string
	// Progress, when set, reports the layer download.
	Progress func(Progress)
}

// PackFunc consumes the merged tar stream of an image and its configuration
// (ImageConfig as JSON), typically by calling flist/pack.Tar. It must read r
// to the end or return an error.
type PackFunc func(ctx context.Context, r io.Reader, imageConfig []byte) error

// Import opens src, spools its layers, and streams the flattened root
// filesystem into pack while it is being merged. It returns the image
// configuration. If anything fails, pack sees a read error and the error is
// returned; the caller discards whatever pack wrote.
func Import(ctx context.Context, src string, opts ImportOptions, pack PackFunc) (ImageConfig, FlattenStats, error) {
	s, err := Open(ctx, src, opts.Source)
	if err != nil {
		return ImageConfig{}, FlattenStats{}, err
	}
	sp, err := Spool(ctx, s, opts.TempDir, opts.Progress)
	if err != nil {
		return ImageConfig{}, FlattenStats{}, err
	}
	defer sp.Close()
	cfgJSON, err := json.Marshal(sp.Config)
	if err != nil {
		return ImageConfig{}, FlattenStats{}, err
	}
	ctx, cancel := context.WithCancel(ctx)
	defer cancel()
	pr, pw := io.Pipe()
	type result struct {
		st  FlattenStats
		err error
	}
	done := make(chan result, 1)
	go func() {
		st, err := Flatten(ctx, sp.Layers, pw)
		if err == nil {
			err = pw.Close()
		} else {
			pw.CloseWithError(err)
		}
		done <- result{st, err}
	}()
	perr := pack(ctx, pr, cfgJSON)
	// Unblock the flattener if pack stopped early, then wait for it.
	pr.CloseWithError(errPackStopped)
	cancel()
	res := <-done
	ours := errors.Is(res.err, errPackStopped) || errors.Is(res.err, context.Canceled)
	switch {
	case res.err != nil && !ours:
		return sp.Config, res.st, res.err // the real cause; pack only saw its echo
	case perr != nil:
		return sp.Config, res.st, fmt.Errorf("oci: pack: %w", perr)
	case res.err != nil:
		return sp.Config, res.st, res.err
	}
	return sp.Config, res.st, nil
}

var errPackStopped = errors.New("oci: pack stopped reading")
