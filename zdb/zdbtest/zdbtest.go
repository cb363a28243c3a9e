package zdbtest

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/zosgrid/zos/zdb"
	zdbserver "github.com/zosgrid/zos/zdb/server"
)

// Start runs a zdb server (mixed mode, every client admin) on a free
// loopback port in a fresh directory, stops it when the test ends, and
// returns its address.
func Start(t testing.TB) string {
	t.Helper()
	dir := t.TempDir()
	db, err := zdb.Open(zdb.Options{DataDir: filepath.Join(dir, "data"), IndexDir: filepath.Join(dir, "index")})
	if err != nil {
		t.Fatal(err)
	}
	srv, err := zdbserver.New(db, zdbserver.Config{Listen: "127.0.0.1", Port: 0})
	if err != nil {
		t.Fatal(err)
	}
	if err := srv.Listen(); err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- srv.Serve(ctx) }()
	t.Cleanup(func() {
		cancel()
		if err := <-done; err != nil {
			t.Errorf("zdb serve: %v", err)
		}
		db.Close()
	})
	return srv.Addrs()[0].String()
}
