package network

import (
	"context"
	"errors"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/network/internal/netnsx"
	"github.com/zosgrid/zos/network/nettest"
	"github.com/zosgrid/zos/network/wg"
)

type testNode struct {
	host string // host namespace path
	m    *Manager
	spec Spec
}

// twoNodes builds two nodes on one wire: A at 192.0.2.1 and B at 192.0.2.2,
// each with network "net1" applied and peered with the other.
func twoNodes(t *testing.T) (prefix string, a, b *testNode) {
	zostest.RequiresNetns(t)
	zostest.CheckLeaks(t)
	prefix = "zt" + randSuffix(t) + "-"
	ctx := context.Background()
	a, b = &testNode{}, &testNode{}
	a.host = testNS(t, prefix+"hosta")
	b.host = testNS(t, prefix+"hostb")
	wire(t, a.host, b.host, netip.MustParsePrefix("192.0.2.1/24"), netip.MustParsePrefix("192.0.2.2/24"))
	for i, n := range []*testNode{a, b} {
		runner := &InProcess{}
		m, err := New(Config{HostNS: n.host, Prefix: prefix + string(rune('a'+i)) + "-", StateDir: t.TempDir(), Devices: runner})
		if err != nil {
			t.Fatal(err)
		}
		n.m = m
		t.Cleanup(func() {
			m.Remove(ctx, "net1")
			m.Remove(ctx, "other")
			runner.Close()
		})
	}
	ka, kb := testKey(t), testKey(t)
	rng := netip.MustParsePrefix("10.20.0.0/16")
	sa, sb := netip.MustParsePrefix("10.20.1.0/24"), netip.MustParsePrefix("10.20.2.0/24")
	a.spec = Spec{Name: "net1", IPRange: rng, Subnet: sa, WGPrivateKey: ka, WGListenPort: 51820, Peers: []Peer{
		{Subnet: sb, WGPublicKey: kb.Public(), AllowedIPs: []netip.Prefix{sb}, Endpoint: netip.MustParseAddrPort("192.0.2.2:51821")}}}
	b.spec = Spec{Name: "net1", IPRange: rng, Subnet: sb, WGPrivateKey: kb, WGListenPort: 51821, Peers: []Peer{
		{Subnet: sa, WGPublicKey: ka.Public(), AllowedIPs: []netip.Prefix{sa}, Endpoint: netip.MustParseAddrPort("192.0.2.1:51820")}}}
	for _, n := range []*testNode{a, b} {
		if err := n.m.Apply(ctx, n.spec); err != nil {
			t.Fatal(err)
		}
		// Applying twice changes nothing and does not fail.
		if err := n.m.Apply(ctx, n.spec); err != nil {
			t.Fatalf("second apply: %v", err)
		}
	}
	return prefix, a, b
}

func TestPrivateNetworkAcrossNodes(t *testing.T) {
	prefix, a, b := twoNodes(t)
	ctx := context.Background()
	wa := testNS(t, prefix+"wla")
	wb := testNS(t, prefix+"wlb")
	addrA, err := a.m.Attach(ctx, "net1", wa, "")
	if err != nil {
		t.Fatal(err)
	}
	addrB, err := b.m.Attach(ctx, "net1", wb, "eth0")
	if err != nil {
		t.Fatal(err)
	}
	if again, err := b.m.Attach(ctx, "net1", wb, "eth0"); err != nil || again != addrB {
		t.Fatalf("re-attach gave %s, %v; want %s", again, err, addrB)
	}
	if addrA.String() != "10.20.1.2/24" || addrB.String() != "10.20.2.2/24" {
		t.Fatalf("addresses %s %s", addrA, addrB)
	}
	echoServer(t, wb, addrB.Addr().String()+":7000")
	conn := waitEcho(t, wa, addrB.Addr().String()+":7000")

	st, err := a.m.Status(ctx, "net1")
	if err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 1 || st.Peers[0].LastHandshake.IsZero() || st.Peers[0].RxBytes == 0 {
		t.Fatalf("status shows no handshake or traffic: %+v", st.Peers)
	}
	hs := st.Peers[0].LastHandshake

	// A bad spec is refused and changes nothing.
	bad := a.spec
	bad.Subnet = netip.MustParsePrefix("10.21.1.0/24")
	if err := a.m.Apply(ctx, bad); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("bad spec: got %v, want ErrInvalidSpec", err)
	}
	clash := Spec{Name: "clash", IPRange: netip.MustParsePrefix("10.40.0.0/16"), Subnet: netip.MustParsePrefix("10.40.1.0/24"),
		WGPrivateKey: testKey(t), WGListenPort: a.spec.WGListenPort}
	if err := a.m.Apply(ctx, clash); !errors.Is(err, ErrInvalidSpec) {
		t.Fatalf("second network on a used port: got %v, want ErrInvalidSpec", err)
	}
	// A network whose port is taken on the host fails to come up and leaves
	// nothing behind.
	var busy net.PacketConn
	if err := netnsx.Do(a.host, func() (err error) { busy, err = net.ListenPacket("udp", ":51950"); return }); err != nil {
		t.Fatal(err)
	}
	failing := Spec{Name: "failing", IPRange: netip.MustParsePrefix("10.41.0.0/16"), Subnet: netip.MustParsePrefix("10.41.1.0/24"),
		WGPrivateKey: testKey(t), WGListenPort: 51950}
	if err := a.m.Apply(ctx, failing); err == nil {
		t.Fatal("apply on a taken port succeeded")
	}
	busy.Close()
	if netnsx.Exists(a.m.Namespace("failing")) {
		t.Error("failed apply left its namespace")
	}
	if err := nettest.RoundTrip(conn, "after refused specs", 10*time.Second); err != nil {
		t.Fatalf("refused spec disturbed the network: %v", err)
	}
	if ls, _ := a.m.List(ctx); len(ls) != 1 {
		t.Fatalf("refused spec left a network behind: %+v", ls)
	}

	// A third node joins A's peer list: the flow to B is not disturbed.
	kc := testKey(t)
	sc := netip.MustParsePrefix("10.20.3.0/24")
	a.spec.Peers = append(a.spec.Peers, Peer{Subnet: sc, WGPublicKey: kc.Public(), AllowedIPs: []netip.Prefix{sc}})
	if err := a.m.Apply(ctx, a.spec); err != nil {
		t.Fatal(err)
	}
	if err := nettest.RoundTrip(conn, "after update", 10*time.Second); err != nil {
		t.Fatalf("existing flow broken by a peer update: %v", err)
	}
	st, _ = a.m.Status(ctx, "net1")
	if len(st.Peers) != 2 {
		t.Fatalf("want 2 peers, got %d", len(st.Peers))
	}
	for _, p := range st.Peers {
		if p.PublicKey == b.spec.WGPrivateKey.Public() && !p.LastHandshake.Equal(hs) {
			t.Errorf("session with B was redone by the update (handshake %v -> %v)", hs, p.LastHandshake)
		}
	}
	// ...and leaves again.
	a.spec.Peers = a.spec.Peers[:1]
	if err := a.m.Apply(ctx, a.spec); err != nil {
		t.Fatal(err)
	}
	if err := nettest.RoundTrip(conn, "after leave", 10*time.Second); err != nil {
		t.Fatalf("existing flow broken by a peer leaving: %v", err)
	}

	// Outbound to the "internet" (B's host) goes through the DMZ NAT.
	echoServer(t, b.host, "192.0.2.2:7100")
	c, err := dialIn(wa, "192.0.2.2:7100", 5*time.Second)
	if err != nil {
		t.Fatalf("workload cannot reach the internet through the DMZ: %v", err)
	}
	if err := nettest.RoundTrip(c, "out", 10*time.Second); err != nil {
		t.Fatal(err)
	}
	c.Close()
	ls, err := a.m.List(ctx)
	if err != nil || len(ls) != 1 || ls[0].Name != "net1" {
		t.Fatalf("List = %+v, %v", ls, err)
	}

	// rm leaves nothing behind.
	for _, n := range []*testNode{a, b} {
		if err := n.m.Remove(ctx, "net1"); err != nil {
			t.Fatal(err)
		}
		if err := n.m.Remove(ctx, "net1"); err != nil {
			t.Fatalf("second remove: %v", err)
		}
		if left := leftovers(t, n.m.cfg.Prefix, n.host, "eth0"); len(left) != 0 {
			t.Errorf("remove left behind: %v", left)
		}
		if ents, _ := os.ReadDir(n.m.cfg.StateDir); len(ents) > 1 {
			names := []string{}
			for _, e := range ents {
				names = append(names, e.Name())
			}
			t.Errorf("state left behind: %v", names)
		}
	}
	if _, err := os.Stat(filepath.Join(netnsx.Dir, a.m.Namespace("net1"))); err == nil {
		t.Error("network namespace still exists")
	}
	if _, err := a.m.Status(ctx, "net1"); err == nil {
		t.Error("status of a removed network succeeded")
	}
}

func TestWallAndIsolation(t *testing.T) {
	prefix, a, b := twoNodes(t)
	ctx := context.Background()
	wa := testNS(t, prefix+"wla")
	wb := testNS(t, prefix+"wlb")
	wo := testNS(t, prefix+"wlo")
	if _, err := a.m.Attach(ctx, "net1", wa, ""); err != nil {
		t.Fatal(err)
	}
	addrB, err := b.m.Attach(ctx, "net1", wb, "")
	if err != nil {
		t.Fatal(err)
	}
	// Another tenant on node B.
	other := Spec{Name: "other", IPRange: netip.MustParsePrefix("10.30.0.0/16"), Subnet: netip.MustParsePrefix("10.30.1.0/24"),
		WGPrivateKey: testKey(t), WGListenPort: 51900}
	if err := b.m.Apply(ctx, other); err != nil {
		t.Fatal(err)
	}
	addrO, err := b.m.Attach(ctx, "other", wo, "")
	if err != nil {
		t.Fatal(err)
	}
	otherStatus, _ := b.m.List(ctx)
	if len(otherStatus) != 2 {
		t.Fatalf("want 2 networks on B, got %+v", otherStatus)
	}
	var stO state
	if stO, err = b.m.load("other"); err != nil {
		t.Fatal(err)
	}

	for _, srv := range []struct{ ns, addr string }{
		{b.host, "192.0.2.2:7200"}, {b.host, "100.126.0.1:7200"}, {wb, addrB.Addr().String() + ":7200"},
		{wo, addrO.Addr().String() + ":7200"}, {netnsx.Path(b.m.DMZNamespace()), "100.127.0.1:7200"},
		{netnsx.Path(b.m.Namespace("other")), stO.Public.Addr().String() + ":7200"},
	} {
		echoServer(t, srv.ns, srv.addr)
	}
	if err := b.m.ApplyWall(ctx, Wall{Outward: "eth0", TCP: []uint16{9943}}); err != nil {
		t.Fatal(err)
	}
	echoServer(t, b.host, "192.0.2.2:9943")

	// Through the wall: WireGuard still carries the network; the allowed
	// port answers; any other port is dropped.
	waitEcho(t, wa, addrB.Addr().String()+":7200")
	waitEcho(t, a.host, "192.0.2.2:9943")
	mustNotConnect(t, a.host, "192.0.2.2:7200")

	// A workload reaches neither another tenant, nor the host, nor the DMZ.
	for _, target := range []string{
		addrO.Addr().String() + ":7200",      // other tenant's workload
		stO.Public.Addr().String() + ":7200", // other tenant's network namespace
		"100.127.0.1:7200",                   // the DMZ itself
		"100.126.0.1:7200",                   // the host's DMZ uplink
		"192.0.2.2:7200",                     // the host's outward address
	} {
		mustNotConnect(t, wb, target)
	}
	// New networks open their port in the wall; removing them closes it.
	if err := b.m.Remove(ctx, "other"); err != nil {
		t.Fatal(err)
	}
	if err := b.m.RemoveWall(ctx); err != nil {
		t.Fatal(err)
	}
	c, err := dialIn(a.host, "192.0.2.2:7200", 5*time.Second)
	if err != nil {
		t.Fatalf("without the wall the port should answer: %v", err)
	}
	c.Close()
	_ = wg.DefaultMTU
}
