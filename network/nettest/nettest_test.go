package nettest

import (
	"crypto/rand"
	"encoding/hex"
	"net"
	"os"
	"testing"

	"github.com/zosgrid/zos/internal/freeport"
	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/network/internal/netnsx"
)

// TestAddDoDelete: a namespace made by Add has loopback up (a listener
// inside is reachable inside and not from the test's own namespace), and
// del removes it.
func TestAddDoDelete(t *testing.T) {
	zostest.RequiresNetns(t)
	b := make([]byte, 4)
	rand.Read(b)
	name := "nettest-" + hex.EncodeToString(b)
	del, err := Add(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { del() })
	// The same port is held, not listened on, in the test's own namespace,
	// so a connection there can only succeed if the namespaces are mixed up.
	host, err := freeport.Reserve("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	defer host.Release()
	var ln net.Listener
	if err := Do(name, func() (err error) { ln, err = net.Listen("tcp", host.Addr()); return }); err != nil {
		t.Fatalf("listen inside: %v", err)
	}
	defer ln.Close()
	// The kernel completes the handshake into the backlog: no Accept needed.
	if err := Do(name, func() error {
		c, err := net.Dial("tcp", ln.Addr().String())
		if err == nil {
			c.Close()
		}
		return err
	}); err != nil {
		t.Fatalf("dial inside over loopback: %v", err)
	}
	if c, err := net.Dial("tcp", ln.Addr().String()); err == nil {
		c.Close()
		t.Fatal("the namespace's listener is reachable from the test's own namespace")
	}
	ln.Close()
	if err := del(); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(netnsx.Path(name)); !os.IsNotExist(err) {
		t.Fatalf("namespace still there after del: %v", err)
	}
	if err := Do(name, func() error { return nil }); err == nil {
		t.Fatal("Do in a deleted namespace succeeded")
	}
}
