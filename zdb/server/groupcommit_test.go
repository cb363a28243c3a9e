package server

import (
	"bytes"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/zosgrid/zos/resp"
	"github.com/zosgrid/zos/zdb"
)

// Many clients writing at once share commits; still, every SET is in the
// data file by the time its reply arrives.
func TestGroupCommitAcksOnlyWrittenRecords(t *testing.T) {
	ts := startServer(t, zdb.Options{}, Config{})
	dataFile := filepath.Join(ts.opts.DataDir, zdb.DefaultNamespace, "d0")
	const clients, batches, perBatch = 8, 20, 4
	var wg sync.WaitGroup
	errc := make(chan error, clients)
	for c := 0; c < clients; c++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errc <- func() error {
				conn, err := net.Dial("tcp", ts.addr)
				if err != nil {
					return err
				}
				defer conn.Close()
				r, w := resp.NewReader(conn), resp.NewWriter(conn)
				for b := 0; b < batches; b++ {
					var vals [][]byte
					for i := 0; i < perBatch; i++ {
						v := []byte(fmt.Sprintf("value-c%02d-b%03d-i%d-%s", c, b, i, bytes.Repeat([]byte("x"), 40)))
						vals = append(vals, v)
						w.Command([]byte("SET"), []byte(fmt.Sprintf("k-%d-%d-%d", c, b, i)), v)
					}
					if err := w.Flush(); err != nil {
						return err
					}
					for range vals {
						v, err := r.ReadValue()
						if err != nil {
							return err
						}
						if v.Kind != resp.KindBulk || v.Null {
							return fmt.Errorf("SET replied %v", v)
						}
					}
					file, err := os.ReadFile(dataFile)
					if err != nil {
						return err
					}
					for _, v := range vals {
						if !bytes.Contains(file, v) {
							return fmt.Errorf("client %d batch %d: acknowledged %q is not in the data file", c, b, v)
						}
					}
				}
				return nil
			}()
		}()
	}
	wg.Wait()
	close(errc)
	for err := range errc {
		if err != nil {
			t.Fatal(err)
		}
	}
}

// A client stuck halfway through a request, or one that pipelines writes and
// never reads its replies, holds no lock and no commit others wait for.
func TestSlowClientsDoNotStallOthers(t *testing.T) {
	ts := startServer(t, zdb.Options{}, Config{})
	half, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer half.Close()
	if _, err := half.Write([]byte("*3\r\n$3\r\nSET\r\n$4\r\nhalf\r\n$10\r\nabc")); err != nil {
		t.Fatal(err)
	}
	deaf, err := net.Dial("tcp", ts.addr)
	if err != nil {
		t.Fatal(err)
	}
	defer deaf.Close()
	go func() {
		// Replies pile up until the server's writes to this client block.
		w := resp.NewWriter(deaf)
		v := bytes.Repeat([]byte("d"), 4096)
		for i := 0; ; i++ {
			w.Command([]byte("SET"), []byte(fmt.Sprintf("deaf-%d", i)), v)
			if w.Flush() != nil {
				return
			}
		}
	}()
	c := ts.client(t)
	ctx := t.Context()
	for i := 0; i < 50; i++ {
		k := fmt.Sprintf("live-%d", i)
		if err := c.Do(ctx, "SET", k, "v").Err(); err != nil {
			t.Fatalf("SET %s while other clients stall: %v", k, err)
		}
		if got, err := c.Get(ctx, k).Result(); err != nil || got != "v" {
			t.Fatalf("GET %s = %q, %v", k, got, err)
		}
	}
	deaf.SetDeadline(time.Now()) // stop its writer
}

// GET copies a value straight into the reply buffer; one that fails its
// CRC leaves nothing of itself in the reply, in GET and in MGET.
func TestGetCorruptValueLeavesCleanReply(t *testing.T) {
	ts := startServer(t, zdb.Options{CacheSize: -1}, Config{})
	c := ts.client(t)
	ctx := t.Context()
	for _, kv := range [][2]string{{"good", "good-value"}, {"bad", "bad-value-to-corrupt"}} {
		if err := c.Do(ctx, "SET", kv[0], kv[1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	path := filepath.Join(ts.opts.DataDir, zdb.DefaultNamespace, "d0")
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	i := bytes.Index(b, []byte("bad-value-to-corrupt"))
	if i < 0 {
		t.Fatal("value not found in the data file")
	}
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := f.WriteAt([]byte("X"), int64(i)); err != nil {
		t.Fatal(err)
	}
	f.Close()
	if err := c.Get(ctx, "bad").Err(); err == nil || err.Error() != "Internal Error" {
		t.Fatalf("GET of a corrupt value: %v, want Internal Error", err)
	}
	if got, err := c.Get(ctx, "good").Result(); err != nil || got != "good-value" {
		t.Fatalf("GET after the failed one: %q, %v", got, err)
	}
	vals, err := c.Do(ctx, "MGET", "good", "bad", "good").Slice()
	if err != nil || len(vals) != 3 || vals[0] != "good-value" || vals[2] != "good-value" {
		t.Fatalf("MGET around a corrupt value: %v, %v", vals, err)
	}
}
