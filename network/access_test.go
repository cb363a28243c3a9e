package network

import (
	"context"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zosgrid/zos/network/wg"
)

// parseQuick reads the fields of a wg-quick file the test needs.
func parseQuick(t *testing.T, s string) (priv wg.PrivateKey, addr netip.Prefix, peer wg.Peer) {
	t.Helper()
	for _, line := range strings.Split(s, "\n") {
		k, v, ok := strings.Cut(line, " = ")
		if !ok {
			continue
		}
		var err error
		switch k {
		case "PrivateKey":
			err = priv.UnmarshalText([]byte(v))
		case "Address":
			addr, err = netip.ParsePrefix(v)
		case "PublicKey":
			peer.PublicKey, err = wg.ParsePublicKey(v)
		case "Endpoint":
			peer.Endpoint, err = netip.ParseAddrPort(v)
		case "AllowedIPs":
			for _, a := range strings.Split(v, ", ") {
				p, perr := netip.ParsePrefix(a)
				if perr != nil {
					var ip netip.Addr
					ip, perr = netip.ParseAddr(a)
					p = netip.PrefixFrom(ip, 32)
				}
				if perr != nil {
					t.Fatalf("AllowedIPs %q: %v", a, perr)
				}
				peer.AllowedIPs = append(peer.AllowedIPs, p)
			}
		case "PersistentKeepalive":
			peer.Keepalive = 25
		}
		if err != nil {
			t.Fatalf("%s: %v", k, err)
		}
	}
	return priv, addr, peer
}

// A laptop joins through access node A with the generated config and
// reaches a workload on B.
func TestAccessConfigLaptop(t *testing.T) {
	prefix, a, b := twoNodes(t)
	ctx := context.Background()
	wb := testNS(t, prefix+"wlb")
	addrB, err := b.m.Attach(ctx, "net1", wb, "")
	if err != nil {
		t.Fatal(err)
	}
	echoServer(t, wb, addrB.Addr().String()+":7000")

	laptopSubnet := netip.MustParsePrefix("10.20.200.0/24")
	if _, err := a.m.AccessConfig(ctx, "net1", laptopSubnet, netip.MustParseAddrPort("192.0.2.1:1")); err == nil {
		t.Error("access config accepted an endpoint on the wrong port")
	}
	if _, err := a.m.AccessConfig(ctx, "net1", netip.MustParsePrefix("10.20.2.0/24"), netip.MustParseAddrPort("192.0.2.1:51820")); err == nil {
		t.Error("access config accepted a subnet that a node uses")
	}
	acc, err := a.m.AccessConfig(ctx, "net1", laptopSubnet, netip.MustParseAddrPort("192.0.2.1:51820"))
	if err != nil {
		t.Fatal(err)
	}
	// A lets the laptop in; B routes the laptop's subnet through A.
	a.spec.Peers = append(a.spec.Peers, acc.Peer)
	if err := a.m.Apply(ctx, a.spec); err != nil {
		t.Fatal(err)
	}
	b.spec.Peers[0].AllowedIPs = append(b.spec.Peers[0].AllowedIPs, laptopSubnet)
	if err := b.m.Apply(ctx, b.spec); err != nil {
		t.Fatal(err)
	}

	// The laptop is a namespace behind A's host, running wireguard-go with
	// exactly the generated configuration.
	laptop := testNS(t, prefix+"laptop")
	wireNamed(t, laptop, "eth0", a.host, "lan0", netip.MustParsePrefix("192.0.3.2/24"), netip.MustParsePrefix("192.0.3.1/24"))
	lh, err := openNS(laptop)
	if err != nil {
		t.Fatal(err)
	}
	defer lh.Close()
	if err := defaultRoute(lh.h, netip.MustParseAddr("192.0.3.1")); err != nil {
		t.Fatal(err)
	}
	priv, addr, peer := parseQuick(t, acc.Config)
	dev, err := wg.Start(wg.DeviceConfig{TunName: "wg0", TunNS: laptop, SocketNS: laptop, Socket: filepath.Join(t.TempDir(), "l.sock")})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })
	if err := (wg.Client{Socket: dev.Socket()}).Configure(ctx, wg.Config{PrivateKey: priv, Peers: []wg.Peer{peer}}); err != nil {
		t.Fatal(err)
	}
	l, err := lh.h.LinkByName("wg0")
	if err != nil {
		t.Fatal(err)
	}
	if err := up(lh.h, l, addr); err != nil {
		t.Fatal(err)
	}
	if err := syncRoutes(lh.h, l, peer.AllowedIPs); err != nil {
		t.Fatal(err)
	}
	waitEcho(t, laptop, addrB.Addr().String()+":7000")
}
