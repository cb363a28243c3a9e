package oci

import (
	"bufio"
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"

	"github.com/klauspost/compress/gzip"
	"github.com/klauspost/compress/zstd"
	"golang.org/x/sync/errgroup"
)

// Progress reports the download of layers: Done of Total compressed bytes.
type Progress struct {
	Layer, Layers int
	Done, Total   int64
}

// Spooled is an image whose layers sit uncompressed in a local directory,
// checked against their digests (compressed and diff_id), ready to be
// flattened (downloaded and decompressed once, read twice).
type Spooled struct {
	Config ImageConfig
	Layers []Layer
	// Size is the compressed size of all layers.
	Size int64
	dir  string
}

// Close removes the spooled layers.
func (s *Spooled) Close() error { return os.RemoveAll(s.dir) }

// Spool downloads the layers of src into a new directory under tmp (the
// system's temporary directory when empty), checking each against its
// digest; progress, when not nil, is called as bytes arrive. On error
// nothing is left behind.
func Spool(ctx context.Context, src *Source, tmp string, progress func(Progress)) (_ *Spooled, err error) {
	cfg, err := ConfigOf(src.Image)
	if err != nil {
		return nil, err
	}
	cfg.Source = src.Ref
	cf, err := src.Image.ConfigFile()
	if err != nil {
		return nil, fmt.Errorf("oci: image config: %w", err)
	}
	layers, err := src.Image.Layers()
	if err != nil {
		return nil, fmt.Errorf("oci: layers: %w", err)
	}
	if len(cf.RootFS.DiffIDs) != len(layers) {
		return nil, fmt.Errorf("%w: image has %d layers but %d diff_ids", ErrOCIBadLayer, len(layers), len(cf.RootFS.DiffIDs))
	}
	dir, err := os.MkdirTemp(tmp, "zos-oci-")
	if err != nil {
		return nil, err
	}
	s := &Spooled{Config: cfg, dir: dir}
	defer func() {
		if err != nil {
			os.RemoveAll(dir)
		}
	}()
	var total int64
	for _, l := range layers {
		n, err := l.Size()
		if err != nil {
			return nil, fmt.Errorf("oci: layer size: %w", err)
		}
		total += n
	}
	s.Size = total
	var done int64
	// Layers download one after the other (progress stays in order), and
	// each is decompressed and checked in the background while the next one
	// downloads: both hash every byte, so they share the cores.
	s.Layers = make([]Layer, len(layers))
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(runtime.GOMAXPROCS(0) + 1) // the downloader plus decompressors
	for i, l := range layers {
		d, err := l.Digest()
		if err != nil {
			g.Wait()
			return nil, fmt.Errorf("oci: layer %d digest: %w", i, err)
		}
		file := filepath.Join(dir, fmt.Sprintf("%03d-%s", i, d.Hex))
		report := func(n int64) {
			if progress != nil {
				progress(Progress{Layer: i + 1, Layers: len(layers), Done: done + n, Total: total})
			}
		}
		n, err := spoolLayer(gctx, l.Compressed, file, d.String(), report)
		if err != nil {
			if werr := g.Wait(); werr != nil && gctx.Err() != nil && ctx.Err() == nil {
				return nil, werr // a decompressor failed first; this is its echo
			}
			return nil, fmt.Errorf("layer %d (%s): %w", i, d, err)
		}
		done += n
		// Decompress once, here, checking the diff_id; both flatten passes
		// then read the plain tar.
		plain := file + ".tar"
		diffID := cf.RootFS.DiffIDs[i].String()
		g.Go(func() error {
			if err := decompressLayer(gctx, file, plain, diffID); err != nil {
				return fmt.Errorf("layer %d (%s): %w", i, d, err)
			}
			os.Remove(file)
			return nil
		})
		s.Layers[i] = Layer{Open: func() (io.ReadCloser, error) { return os.Open(plain) }}
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	return s, nil
}

// decompressLayer writes the uncompressed stream of the blob src to dst and
// checks its sha256 against diffID.
func decompressLayer(ctx context.Context, src, dst, diffID string) error {
	rc, err := openDecompressed(src)
	if err != nil {
		return err
	}
	defer rc.Close()
	f, err := os.Create(dst)
	if err != nil {
		return err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.CopyBuffer(io.MultiWriter(f, h), ctxReader{ctx, rc}, make([]byte, 256<<10)); err != nil {
		return fmt.Errorf("%w: decompress: %w", ErrOCIBadLayer, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != diffID {
		return fmt.Errorf("%w: uncompressed digest %s, image says %s", ErrOCIBadLayer, got, diffID)
	}
	return f.Close()
}

// spoolLayer copies a compressed blob to file and checks its sha256.
func spoolLayer(ctx context.Context, open func() (io.ReadCloser, error), file, digest string, report func(int64)) (int64, error) {
	rc, err := open()
	if err != nil {
		return 0, err
	}
	defer rc.Close()
	f, err := os.Create(file)
	if err != nil {
		return 0, err
	}
	defer f.Close()
	h := sha256.New()
	cw := &countWriter{report: report}
	buf := make([]byte, 256<<10)
	n, err := io.CopyBuffer(io.MultiWriter(f, h, cw), ctxReader{ctx, rc}, buf)
	if err != nil {
		return n, fmt.Errorf("%w: download: %w", ErrOCIBadLayer, err)
	}
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != digest {
		return n, fmt.Errorf("%w: content digest %s does not match %s", ErrOCIBadLayer, got, digest)
	}
	return n, f.Close()
}

type countWriter struct {
	n      int64
	report func(int64)
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	c.report(c.n)
	return len(p), nil
}

type ctxReader struct {
	ctx context.Context
	r   io.Reader
}

func (c ctxReader) Read(p []byte) (int, error) {
	if err := c.ctx.Err(); err != nil {
		return 0, err
	}
	return c.r.Read(p)
}

// openDecompressed opens a spooled blob, undoing gzip or zstd if its magic
// bytes say so.
func openDecompressed(file string) (io.ReadCloser, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	br := bufio.NewReaderSize(f, 256<<10)
	magic, err := br.Peek(4)
	if err != nil && !errors.Is(err, io.EOF) {
		f.Close()
		return nil, err
	}
	switch {
	case bytes.HasPrefix(magic, []byte{0x1f, 0x8b}):
		zr, err := gzip.NewReader(br)
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%w: gzip: %w", ErrOCIBadLayer, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	case bytes.HasPrefix(magic, []byte{0x28, 0xb5, 0x2f, 0xfd}):
		zr, err := zstd.NewReader(br, zstd.WithDecoderConcurrency(1))
		if err != nil {
			f.Close()
			return nil, fmt.Errorf("%w: zstd: %w", ErrOCIBadLayer, err)
		}
		return readCloser{zr, func() error { zr.Close(); return f.Close() }}, nil
	}
	return readCloser{br, f.Close}, nil
}

type readCloser struct {
	io.Reader
	close func() error
}

func (r readCloser) Close() error { return r.close() }
