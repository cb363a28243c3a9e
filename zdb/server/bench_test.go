package server

import (
	"fmt"
	"net"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zosgrid/zos/resp"
	"github.com/zosgrid/zos/zdb"
)

// BenchmarkSetPipelined measures server-side cost of pipelined 64-byte SETs
// over loopback (16 per batch). Not a pass/fail test.
func BenchmarkSetPipelined(b *testing.B) {
	dir := b.TempDir()
	db, _ := zdb.Open(zdb.Options{DataDir: filepath.Join(dir, "d"), IndexDir: filepath.Join(dir, "i"), Mode: zdb.ModeMix})
	defer db.Close()
	srv, _ := New(db, Config{})
	srv.Listen()
	go srv.Serve(b.Context())
	conn, _ := net.Dial("tcp", srv.Addrs()[0].String())
	defer conn.Close()
	r, w := resp.NewReader(conn), resp.NewWriter(conn)
	val := make([]byte, 64)
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 16 {
		for j := 0; j < 16; j++ {
			w.Command([]byte("SET"), []byte(fmt.Sprintf("key:%012d", i+j)), val)
		}
		w.Flush()
		for j := 0; j < 16; j++ {
			if _, err := r.ReadValue(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGetPipelined measures pipelined 64-byte GETs of existing keys.
func BenchmarkGetPipelined(b *testing.B) {
	dir := b.TempDir()
	db, _ := zdb.Open(zdb.Options{DataDir: filepath.Join(dir, "d"), IndexDir: filepath.Join(dir, "i"), Mode: zdb.ModeMix})
	defer db.Close()
	ns, _ := db.Namespace(zdb.DefaultNamespace)
	val := make([]byte, 64)
	for i := 0; i < 10000; i++ {
		ns.Set([]byte(fmt.Sprintf("key:%012d", i)), val, 0)
	}
	ns.CommitAll()
	srv, _ := New(db, Config{})
	srv.Listen()
	go srv.Serve(b.Context())
	conn, _ := net.Dial("tcp", srv.Addrs()[0].String())
	defer conn.Close()
	r, w := resp.NewReader(conn), resp.NewWriter(conn)
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key:%012d", i))
	}
	b.ReportAllocs()
	b.ResetTimer()
	for i := 0; i < b.N; i += 16 {
		for j := 0; j < 16; j++ {
			w.Command([]byte("GET"), keys[(i+j)%len(keys)])
		}
		w.Flush()
		for j := 0; j < 16; j++ {
			if _, err := r.ReadValue(); err != nil {
				b.Fatal(err)
			}
		}
	}
}

// BenchmarkGetPipelined50 runs 50 pipelined GET clients at once.
func BenchmarkGetPipelined50(b *testing.B) {
	dir := b.TempDir()
	db, _ := zdb.Open(zdb.Options{DataDir: filepath.Join(dir, "d"), IndexDir: filepath.Join(dir, "i"), Mode: zdb.ModeMix})
	defer db.Close()
	ns, _ := db.Namespace(zdb.DefaultNamespace)
	val := make([]byte, 64)
	keys := make([][]byte, 10000)
	for i := range keys {
		keys[i] = []byte(fmt.Sprintf("key:%012d", i))
		ns.Set(keys[i], val, 0)
	}
	ns.CommitAll()
	srv, _ := New(db, Config{})
	srv.Listen()
	go srv.Serve(b.Context())
	b.ReportAllocs()
	b.ResetTimer()
	var wg sync.WaitGroup
	per := b.N / 50
	for c := 0; c < 50; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			conn, _ := net.Dial("tcp", srv.Addrs()[0].String())
			defer conn.Close()
			r, w := resp.NewReader(conn), resp.NewWriter(conn)
			for i := 0; i < per; i += 16 {
				for j := 0; j < 16; j++ {
					w.Command([]byte("GET"), keys[(i+j+c*97)%len(keys)])
				}
				w.Flush()
				for j := 0; j < 16; j++ {
					if _, err := r.ReadValue(); err != nil {
						return
					}
				}
			}
		}()
	}
	wg.Wait()
}
