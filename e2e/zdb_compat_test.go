//go:build e2e

package e2e

import (
	"bytes"
	"context"
	"path/filepath"
	"testing"
)

// TestZdbServes0dbFixtures starts zos zdb on a copy of directories written
// by the real 0-db (zdb/testdata/0db) and reads them through the protocol.
func TestZdbServes0dbFixtures(t *testing.T) {
	zdbRequireCommand(t)
	root := t.TempDir()
	zdbCopyDir(t, filepath.Join("..", "zdb", "testdata", "0db"), root)
	data, index := filepath.Join(root, "data"), filepath.Join(root, "index")
	s := zdbServe(t, data, index, "--admin", "fixtureadmin")
	ctx := context.Background()
	c := zdbClient(t, "tcp", s.addr)
	zdbMustGet(ctx, t, c, "alpha", []byte("three"))
	zdbMustGet(ctx, t, c, "bin\x00key", []byte("\x00\x01binary\xff\r\n"))
	zdbMustGet(ctx, t, c, "epsilon", []byte("v2"))
	zdbMustGet(ctx, t, c, "empty", []byte{})
	zdbMustMiss(ctx, t, c, "gamma")
	if ts, err := c.Do(ctx, "KEYTIME", "alpha").Int64(); err != nil || ts != 1700000003 {
		t.Fatalf("KEYTIME alpha = %d, %v; want 1700000003", ts, err)
	}
	if err := c.Do(ctx, "SELECT", "seqns").Err(); err != nil {
		t.Fatal(err)
	}
	zdbMustGet(ctx, t, c, string([]byte{1, 0, 0, 0, 0, 0, 0, 0}), []byte("second-updated"))
	zdbMustMiss(ctx, t, c, string([]byte{2, 0, 0, 0, 0, 0, 0, 0}))
	// The private namespace keeps its 0-db password.
	anon := zdbClient(t, "tcp", s.addr)
	if err := anon.Do(ctx, "SELECT", "secret").Err(); err == nil {
		t.Fatal("SELECT of a private namespace without its password succeeded")
	}
	if err := anon.Do(ctx, "SELECT", "secret", "s3cr3t").Err(); err != nil {
		t.Fatalf("SELECT secret with its 0-db password: %v", err)
	}
	zdbMustGet(ctx, t, anon, "hidden", []byte("more treasure"))
	if err := c.Do(ctx, "SELECT", "rotated").Err(); err != nil {
		t.Fatal(err)
	}
	zdbMustGet(ctx, t, c, "big-9", bytes.Repeat([]byte("j"), 60000))
}
