package main

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"
	"time"

	"github.com/zosgrid/zos/container"
	"github.com/zosgrid/zos/flist/pack"
	"github.com/zosgrid/zos/flist/store"
)

func TestDecodeFlistImageConfig(t *testing.T) {
	for name, tc := range map[string]struct {
		json    string
		want    container.ImageConfig
		invalid bool
	}{
		"zos flist import": {
			json: `{"source":"r/app:1","digest":"sha256:ab","os":"linux","entrypoint":["/bin/sh","-c"],"cmd":["echo hi"],` +
				`"env":["A=1"],"working_dir":"/srv","user":"1000:1000","exposed_ports":["80/tcp"]}`,
			want: container.ImageConfig{Entrypoint: []string{"/bin/sh", "-c"}, Cmd: []string{"echo hi"}, Env: []string{"A=1"},
				WorkingDir: "/srv", User: "1000:1000"},
		},
		"OCI config file": {
			json: `{"architecture":"amd64","os":"linux","config":{"Cmd":["sh"],"Env":["B=2"],"WorkingDir":"/tmp"}}`,
			want: container.ImageConfig{Cmd: []string{"sh"}, Env: []string{"B=2"}, WorkingDir: "/tmp"},
		},
		"import with a relative workdir": {json: `{"digest":"sha256:ab","cmd":["sh"],"working_dir":"srv"}`, invalid: true},
		"OCI with a bad env":             {json: `{"config":{"Env":["NOVALUE"]}}`, invalid: true},
	} {
		got, err := decodeFlistImageConfig([]byte(tc.json))
		if tc.invalid {
			if !errors.Is(err, container.ErrInvalidConfig) {
				t.Errorf("%s: err %v, want ErrInvalidConfig", name, err)
			}
			continue
		}
		if err != nil || !slices.Equal(got.Entrypoint, tc.want.Entrypoint) || !slices.Equal(got.Cmd, tc.want.Cmd) ||
			!slices.Equal(got.Env, tc.want.Env) || got.WorkingDir != tc.want.WorkingDir || got.User != tc.want.User {
			t.Errorf("%s: got %+v %v, want %+v", name, got, err, tc.want)
		}
	}
}

// TestFlistImageRecord: the first build of an image's config and exec sets
// is kept, the next starts take it, and a changed .fl file is read again.
func TestFlistImageRecord(t *testing.T) {
	src := t.TempDir()
	os.MkdirAll(filepath.Join(src, "bin"), 0o755)
	os.WriteFile(filepath.Join(src, "bin", "prog"), []byte("#!/bin/sh\necho hi\n"), 0o755)
	os.WriteFile(filepath.Join(src, "data"), []byte("not a program"), 0o644)
	st, err := store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	fl := filepath.Join(t.TempDir(), "x.fl")
	ctx := context.Background()
	if _, err := pack.Dir(ctx, src, fl, pack.Options{Store: st, ImageConfig: []byte(`{"config":{"Cmd":["/bin/prog"]}}`)}); err != nil {
		t.Fatal(err)
	}
	p := flistImages{root: t.TempDir()}
	args := []string{"--insecure"}
	os.MkdirAll(p.dir(fl, args), 0o755) // as Prepare does

	allowed, libs, err := p.execSets(ctx, fl, args)
	if err != nil || len(allowed) != 1 || len(libs) != 2 {
		t.Fatalf("execSets: %d allowed, %d libs, %v", len(allowed), len(libs), err)
	}
	rec, ok := p.loadRecord(fl, args, true)
	if !ok {
		t.Fatal("no record kept after the first build")
	}
	// Taken as is from now on: a forged record shows it is read.
	var forged [32]byte
	forged[0] = 0xff
	rec.Allowed = [][32]byte{forged}
	rec.Config = []byte(`{"config":{"Cmd":["/bin/other"]}}`)
	if err := os.WriteFile(p.dir(fl, args)+recordSuffix, rec.encode(), 0o600); err != nil {
		t.Fatal(err)
	}
	if allowed, _, _ := p.execSets(ctx, fl, args); !allowed[forged] {
		t.Error("the kept record was not used")
	}
	if img, err := p.Image(ctx, fl, args); err != nil || !slices.Equal(img.Cmd, []string{"/bin/other"}) {
		t.Errorf("image config not taken from the record: %+v %v", img, err)
	}
	// The same file under other flags (another trust) has no record.
	if _, ok := p.loadRecord(fl, []string{"--insecure", "--cache", "/elsewhere"}, true); ok {
		t.Error("a record was used for other mount flags")
	}
	// A damaged record is rebuilt.
	os.WriteFile(p.dir(fl, args)+recordSuffix, []byte(recordMagic+"short"), 0o600)
	if allowed, libs, err := p.execSets(ctx, fl, args); err != nil || allowed[forged] || len(allowed) != 1 || len(libs) != 2 {
		t.Errorf("damaged record: %d allowed, %d libs, %v", len(allowed), len(libs), err)
	}
	// A changed file (new times) is read again.
	later := time.Now().Add(time.Minute)
	os.Chtimes(fl, later, later)
	if allowed, _, _ := p.execSets(ctx, fl, args); allowed[forged] || len(allowed) != 1 {
		t.Errorf("record of an older file used: %d allowed", len(allowed))
	}
	if img, err := p.Image(ctx, fl, args); err != nil || !slices.Equal(img.Cmd, []string{"/bin/prog"}) {
		t.Errorf("image config of the changed file: %+v %v", img, err)
	}
}

// FuzzImageRecord: a damaged record file is refused (and rebuilt by the
// caller), never a panic; a record reads back as written.
func FuzzImageRecord(f *testing.F) {
	good := (&imageRecord{File: fileStamp{Dev: 1, Ino: 2, Size: 3, Mtime: 4, Ctime: 5}, Config: []byte(`{}`),
		Allowed: [][32]byte{{1}}, Libs: [][32]byte{{1}, {2}}}).encode()
	f.Add(good)
	f.Add(good[:len(good)-1])
	f.Add((&imageRecord{}).encode())
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, rest, err := decodeRecordHead(b)
		if err != nil {
			return
		}
		if rec.decodeSets(rest) != nil {
			return
		}
		again, rest, err := decodeRecordHead(rec.encode())
		if err != nil || again.decodeSets(rest) != nil || again.File != rec.File || !bytes.Equal(again.Config, rec.Config) ||
			!slices.Equal(again.Allowed, rec.Allowed) || !slices.Equal(again.Libs, rec.Libs) {
			t.Fatalf("record does not read back: %+v", rec)
		}
	})
}
