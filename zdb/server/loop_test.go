package server

import (
	"bytes"
	"fmt"
	"net"
	"sync"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/resp"
	"github.com/zosgrid/zos/zdb"
)

// loopOwned counts the clients the server's event loops serve now.
func loopOwned(ts *testServer) int {
	ts.srv.mu.Lock()
	loops := ts.srv.loops
	ts.srv.mu.Unlock()
	n := 0
	for _, l := range loops {
		l.mu.Lock()
		n += len(l.owned)
		l.mu.Unlock()
	}
	return n
}

func waitOwned(t *testing.T, ts *testServer, want int) {
	t.Helper()
	zostest.WaitFor(t, 5*time.Second, func() error {
		if n := loopOwned(ts); n != want {
			return fmt.Errorf("%d clients in the event loop, want %d", n, want)
		}
		return nil
	})
}

// TestEventLoopServesManyPipelinedClients: past maxBlocking, waiting
// clients are the loop's, and pipelined batches of many clients at once
// get their own replies, in order.
func TestEventLoopServesManyPipelinedClients(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	ts.srv.maxBlocking.Store(1)
	const clients, rounds, depth = 12, 20, 16
	conns := make([]net.Conn, clients)
	readers := make([]*resp.Reader, clients)
	for i := range conns {
		conns[i], readers[i] = rawConn(t, ts.addr)
		ping(t, conns[i], readers[i])
	}
	ping(t, conns[0], readers[0]) // it waited alone, blocking, until now
	waitOwned(t, ts, clients)

	var wg sync.WaitGroup
	errs := make(chan error, clients)
	for i := range conns {
		wg.Add(1)
		go func() {
			defer wg.Done()
			w := resp.NewWriter(conns[i])
			for r := range rounds {
				for d := range depth {
					key := fmt.Appendf(nil, "c%d:%d:%d", i, r, d)
					w.Command([]byte("SET"), key, bytes.Repeat(key, 3))
					w.Command([]byte("GET"), key)
				}
				if err := w.Flush(); err != nil {
					errs <- err
					return
				}
				for d := range depth {
					key := fmt.Sprintf("c%d:%d:%d", i, r, d)
					if v, err := readers[i].ReadValue(); err != nil || string(v.Str) != key {
						errs <- fmt.Errorf("client %d SET %s: %v %v", i, key, v, err)
						return
					}
					if v, err := readers[i].ReadValue(); err != nil || string(v.Str) != key+key+key {
						errs <- fmt.Errorf("client %d GET %s: %v %v", i, key, v, err)
						return
					}
				}
			}
			// Batches of GETs alone (the loop prefetches them), with
			// absent keys among them.
			for r := range rounds {
				for d := range depth {
					w.Command([]byte("GET"), fmt.Appendf(nil, "c%d:%d:%d", i, r, d))
					w.Command([]byte("GET"), fmt.Appendf(nil, "absent:%d:%d", r, d))
				}
				if err := w.Flush(); err != nil {
					errs <- err
					return
				}
				for d := range depth {
					key := fmt.Sprintf("c%d:%d:%d", i, r, d)
					if v, err := readers[i].ReadValue(); err != nil || string(v.Str) != key+key+key {
						errs <- fmt.Errorf("client %d GET %s in a GET batch: %v %v", i, key, v, err)
						return
					}
					if v, err := readers[i].ReadValue(); err != nil || !v.Null {
						errs <- fmt.Errorf("client %d GET of an absent key in a GET batch: %v %v", i, v, err)
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Error(err)
	}
	waitOwned(t, ts, clients)
}

// TestEventLoopNeverWaitsForOneClient: a client that does not read its
// large replies, and one blocked in WAIT, leave the loop for their own
// goroutines while the others are still served; both come back.
func TestEventLoopNeverWaitsForOneClient(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	ts.srv.maxBlocking.Store(0)
	other, ro := rawConn(t, ts.addr)
	ping(t, other, ro)

	// Replies of 512 KiB, one request at a time, that nobody reads: each
	// batch is under the 1 MiB that sends a client to its goroutine, so
	// only a socket that takes no more can.
	slow, rs := rawConn(t, ts.addr)
	value := bytes.Repeat([]byte("v"), 512<<10)
	w := resp.NewWriter(slow)
	w.Command([]byte("SET"), []byte("big"), value)
	w.Flush()
	if v, err := rs.ReadValue(); err != nil || string(v.Str) != "big" {
		t.Fatalf("slow client's set: %v %v", v, err)
	}
	const gets = 40
	for range gets {
		w.Command([]byte("GET"), []byte("big"))
		w.Flush()
		time.Sleep(5 * time.Millisecond)
	}
	waitOwned(t, ts, 1) // slow's goroutine waits for room
	ping(t, other, ro)  // answered meanwhile

	waiter, rw := rawConn(t, ts.addr)
	ping(t, waiter, rw)
	ww := resp.NewWriter(waiter)
	ww.Command([]byte("WAIT"), []byte("SET"), []byte("10000"))
	ww.Flush()
	zostest.WaitFor(t, 5*time.Second, func() error {
		if ts.srv.nwait.Load() != 1 {
			return fmt.Errorf("WAIT not registered")
		}
		return nil
	})
	waitOwned(t, ts, 1)
	ping(t, other, ro) // answered while waiter waits
	ow := resp.NewWriter(other)
	ow.Command([]byte("SET"), []byte("k"), []byte("v"))
	ow.Flush()
	if v, err := ro.ReadValue(); err != nil || string(v.Str) != "k" {
		t.Fatalf("set: %v %v", v, err)
	}
	if v, err := rw.ReadValue(); err != nil || string(v.Str) != "SET" {
		t.Fatalf("wait: %v %v", v, err)
	}

	for i := range gets {
		if v, err := rs.ReadValue(); err != nil || !bytes.Equal(v.Str, value) {
			t.Fatalf("slow client's get %d: %d bytes, %v", i, len(v.Str), err)
		}
	}
	ping(t, slow, rs)
	ping(t, waiter, rw)
	waitOwned(t, ts, 3)
}

// TestEventLoopProtocolErrorAndClose: a malformed request in the loop gets
// its error reply before the connection closes, a client that hangs up
// leaves the loop, and Close ends the clients the loop still serves.
func TestEventLoopProtocolErrorAndClose(t *testing.T) {
	ts := startServer(t, zdb.Options{Mode: zdb.ModeMix}, Config{})
	ts.srv.maxBlocking.Store(0)
	bad, rb := rawConn(t, ts.addr)
	ping(t, bad, rb)
	idle, ri := rawConn(t, ts.addr)
	ping(t, idle, ri)
	gone, rg := rawConn(t, ts.addr)
	ping(t, gone, rg)
	waitOwned(t, ts, 3)

	bad.Write([]byte("PING\r\n"))
	if v, err := rb.ReadValue(); err != nil || v.Kind != resp.KindError {
		t.Fatalf("malformed request: %v %v, want an error reply", v, err)
	}
	if _, err := rb.ReadValue(); err == nil {
		t.Fatal("the connection stays open after a protocol error")
	}
	gone.Close()
	waitOwned(t, ts, 1)

	closed := make(chan struct{})
	go func() { ts.srv.Close(); close(closed) }()
	select {
	case <-closed:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return with a client in the event loop")
	}
	if _, err := ri.ReadValue(); err == nil {
		t.Error("the loop's client is still connected after Close")
	}
	if n := ts.srv.nconn.Load(); n != 0 {
		t.Errorf("%d connections counted after Close", n)
	}
}
