package oci

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"path/filepath"
	"testing"

	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
)

func TestImportStreamsIntoPack(t *testing.T) {
	img := testImage(t, testConfig, baseLayers(t)...)
	lp := filepath.Join(t.TempDir(), "layout")
	p, err := layout.Write(lp, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	p.AppendImage(img)

	var got []byte
	var gotCfg ImageConfig
	cfg, st, err := Import(context.Background(), lp, ImportOptions{TempDir: t.TempDir()}, func(ctx context.Context, r io.Reader, c []byte) error {
		var err error
		got, err = io.ReadAll(r)
		if err != nil {
			return err
		}
		return json.Unmarshal(c, &gotCfg)
	})
	if err != nil {
		t.Fatal(err)
	}
	m := readMerged(t, got)
	if m.bodies["bin/busybox"] != "new busybox" || st.Files != 9 {
		t.Errorf("merged stream wrong: busybox %q, stats %+v", m.bodies["bin/busybox"], st)
	}
	if gotCfg.Digest != cfg.Digest || gotCfg.WorkingDir != "/home/user" || gotCfg.Source != lp {
		t.Errorf("pack saw config %+v, import returned %+v", gotCfg, cfg)
	}

	// pack failing early stops the flattener and its error comes back.
	boom := errors.New("disk full")
	_, _, err = Import(context.Background(), lp, ImportOptions{TempDir: t.TempDir()}, func(ctx context.Context, r io.Reader, c []byte) error {
		io.CopyN(io.Discard, r, 10)
		return boom
	})
	if !errors.Is(err, boom) {
		t.Errorf("pack failure: err = %v, want %v", err, boom)
	}

	// A broken layer reaches pack as a read error, and Import reports the cause.
	bad := testImage(t, testConfig, layerTar(t, ent{name: "a", body: "x"}, ent{name: "l", typ: '1', link: "missing"}))
	lp2 := filepath.Join(t.TempDir(), "bad")
	p2, _ := layout.Write(lp2, empty.Index)
	p2.AppendImage(bad)
	var packErr error
	_, _, err = Import(context.Background(), lp2, ImportOptions{TempDir: t.TempDir()}, func(ctx context.Context, r io.Reader, c []byte) error {
		_, packErr = io.Copy(io.Discard, r)
		return packErr
	})
	if !errors.Is(err, ErrOCIBadLayer) || packErr == nil {
		t.Errorf("bad layer: err = %v (pack saw %v), want ErrOCIBadLayer", err, packErr)
	}
}
