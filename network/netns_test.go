package network

import (
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/network/internal/netnsx"
	"github.com/zosgrid/zos/network/nettest"
)

// Helpers that build a small world of namespaces for the root tests.

func randSuffix(t testing.TB) string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// testNS creates a uniquely named namespace, removed when the test ends.
func testNS(t testing.TB, name string) string {
	t.Helper()
	p, err := netnsx.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsx.Delete(name) })
	h, err := openNS(p)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	lo, _ := h.h.LinkByName("lo")
	h.h.LinkSetUp(lo)
	return p
}

// wire connects namespaces a and b with a veth pair named eth0 on both
// sides, with addresses aa and ba.
func wire(t testing.TB, a, b string, aa, ba netip.Prefix) { wireNamed(t, a, "eth0", b, "eth0", aa, ba) }

// wireNamed is wire with interface names an (in a) and bn (in b).
func wireNamed(t testing.TB, a, an, b, bn string, aa, ba netip.Prefix) {
	t.Helper()
	ha, err := openNS(a)
	if err != nil {
		t.Fatal(err)
	}
	defer ha.Close()
	hb, err := openNS(b)
	if err != nil {
		t.Fatal(err)
	}
	defer hb.Close()
	la, err := ensureVeth(ha.h, an, bn, int(hb.ns))
	if err != nil {
		t.Fatal(err)
	}
	if err := up(ha.h, la, aa); err != nil {
		t.Fatal(err)
	}
	lb, err := hb.h.LinkByName(bn)
	if err != nil {
		t.Fatal(err)
	}
	if err := up(hb.h, lb, ba); err != nil {
		t.Fatal(err)
	}
}

// echoServer listens on addr inside ns and echoes every connection.
func echoServer(t testing.TB, ns, addr string) {
	t.Helper()
	var ln net.Listener
	if err := netnsx.Do(ns, func() (err error) { ln, err = net.Listen("tcp", addr); return }); err != nil {
		t.Fatal(err)
	}
	done := make(chan struct{})
	var mu sync.Mutex
	var conns []net.Conn
	var wg sync.WaitGroup
	t.Cleanup(func() {
		ln.Close()
		<-done
		mu.Lock()
		for _, c := range conns {
			c.Close() // the peer may be unreachable by now
		}
		mu.Unlock()
		wg.Wait()
	})
	go func() {
		defer close(done)
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			mu.Lock()
			conns = append(conns, c)
			mu.Unlock()
			wg.Add(1)
			go func() { defer wg.Done(); io.Copy(c, c); c.Close() }()
		}
	}()
}

// dialIn connects from inside ns.
func dialIn(ns, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := netnsx.Do(ns, func() (err error) { c, err = net.DialTimeout("tcp", addr, timeout); return })
	return c, err
}

// waitEcho waits until a connection from ns to addr echoes.
func waitEcho(t testing.TB, ns, addr string) net.Conn {
	t.Helper()
	var conn net.Conn
	zostest.WaitFor(t, 30*time.Second, func() error {
		c, err := dialIn(ns, addr, 2*time.Second)
		if err != nil {
			return err
		}
		if err := nettest.RoundTrip(c, "hello", 10*time.Second); err != nil {
			c.Close()
			return err
		}
		conn = c
		return nil
	})
	t.Cleanup(func() { conn.Close() })
	return conn
}

// mustNotConnect checks that ns cannot open a TCP connection to addr. A
// listener exists there, so failure means the packets were dropped or refused
// by policy, never that nothing listened.
func mustNotConnect(t testing.TB, ns, addr string) {
	t.Helper()
	c, err := dialIn(ns, addr, time.Second)
	if err == nil {
		c.Close()
		t.Errorf("%s reached %s, want it blocked", ns, addr)
	}
}

// leftovers lists what a prefix left behind: namespaces and host links.
func leftovers(t testing.TB, prefix, hostNS string, hostLinks ...string) []string {
	t.Helper()
	var out []string
	ents, _ := os.ReadDir(netnsx.Dir)
	for _, e := range ents {
		if strings.HasPrefix(e.Name(), prefix) {
			out = append(out, "netns "+e.Name())
		}
	}
	h, err := openNS(hostNS)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	links, err := h.h.LinkList()
	if err != nil {
		t.Fatal(err)
	}
	allowed := map[string]bool{"lo": true}
	for _, l := range hostLinks {
		allowed[l] = true
	}
	for _, l := range links {
		if !allowed[l.Attrs().Name] {
			out = append(out, "link "+l.Attrs().Name)
		}
	}
	for _, tbl := range []string{tableHost, tableWall} {
		if ok, _ := hasTable(h.ns, tbl); ok {
			out = append(out, "nft table "+tbl)
		}
	}
	routes, _ := h.h.RouteList(nil, netlink.FAMILY_V4)
	for _, r := range routes {
		if r.Protocol == routeProto {
			out = append(out, "route "+r.String())
		}
	}
	return out
}
