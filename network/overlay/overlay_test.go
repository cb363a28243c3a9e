package overlay_test

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"io"
	"net"
	"path/filepath"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/network"
	"github.com/zosgrid/zos/network/internal/netnsx"
	"github.com/zosgrid/zos/network/overlay"
)

func TestAddressFromKey(t *testing.T) {
	k, _ := key.FromSeed(make([]byte, 32))
	a := overlay.AddressForKey(k.Public())
	s := overlay.SubnetForKey(k.Public())
	if !overlay.Prefix.Contains(a) || !overlay.Prefix.Contains(s.Addr()) || s.Bits() != 64 {
		t.Fatalf("address %s / subnet %s not in 200::/7", a, s)
	}
	if a.As16()[0] != 0x02 || s.Addr().As16()[0] != 0x03 {
		t.Fatalf("address %s should start 02, subnet %s 03", a, s)
	}
	k2, _ := key.FromSeed(append(make([]byte, 31), 1))
	if overlay.AddressForKey(k2.Public()) == a {
		t.Fatal("two keys share an address")
	}
}

func suffix() string {
	b := make([]byte, 3)
	rand.Read(b)
	return hex.EncodeToString(b)
}

func newNS(t *testing.T, name string) string {
	t.Helper()
	p, err := netnsx.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsx.Delete(name) })
	if err := netnsx.Do(p, func() error { return nil }); err != nil {
		t.Fatal(err)
	}
	return p
}

// Two nodes (namespaces) peer over a unix socket; a workload on each gets
// an address from its node's /64 and they talk TCP across the overlay.
func TestWorkloadsAcrossOverlay(t *testing.T) {
	zostest.RequiresNetns(t)
	p := "zo" + suffix() + "-"
	ctx := context.Background()
	type node struct {
		host, wl string
		n        *overlay.Node
		m        *network.Manager
	}
	sock := filepath.Join(t.TempDir(), "ygg.sock")
	var nodes [2]*node
	for i := range nodes {
		k, err := key.New()
		if err != nil {
			t.Fatal(err)
		}
		nd := &node{host: newNS(t, p+"host"+string(rune('a'+i))), wl: newNS(t, p+"wl"+string(rune('a'+i)))}
		cfg := overlay.Config{Key: k, HostNS: nd.host}
		if i == 0 {
			cfg.Listen = []string{"unix://" + sock}
		} else {
			cfg.Peers = []string{"unix://" + sock}
		}
		if nd.n, err = overlay.Start(cfg); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { nd.n.Close() })
		if nd.n.Address() != overlay.AddressForKey(k.Public()) || nd.n.Subnet() != overlay.SubnetForKey(k.Public()) {
			t.Fatalf("node address %s/%s does not follow its key", nd.n.Address(), nd.n.Subnet())
		}
		nd.m, err = network.New(network.Config{HostNS: nd.host, Prefix: p, StateDir: t.TempDir(), Devices: &network.InProcess{}})
		if err != nil {
			t.Fatal(err)
		}
		nodes[i] = nd
	}
	var addrs [2]string
	for i, nd := range nodes {
		a, err := nd.m.AttachOverlay(ctx, nd.n.Subnet(), nd.wl, "", nd.n.MTU())
		if err != nil {
			t.Fatal(err)
		}
		if !nd.n.Subnet().Contains(a.Addr()) {
			t.Fatalf("workload address %s outside node subnet %s", a, nd.n.Subnet())
		}
		addrs[i] = a.Addr().String()
	}
	var ln net.Listener
	if err := netnsx.Do(nodes[1].wl, func() (err error) { ln, err = net.Listen("tcp", "["+addrs[1]+"]:7000"); return }); err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	zostest.WaitFor(t, 60*time.Second, func() error {
		var c net.Conn
		err := netnsx.Do(nodes[0].wl, func() (err error) {
			c, err = net.DialTimeout("tcp", "["+addrs[1]+"]:7000", 2*time.Second)
			return
		})
		if err != nil {
			return err
		}
		defer c.Close()
		c.SetDeadline(time.Now().Add(5 * time.Second))
		if _, err := io.WriteString(c, "over the overlay"); err != nil {
			return err
		}
		buf := make([]byte, 16)
		_, err = io.ReadFull(c, buf)
		return err
	})
	// The overlay workload reaches neither its host nor anything but the overlay.
	var hostLn net.Listener
	if err := netnsx.Do(nodes[0].host, func() (err error) { hostLn, err = net.Listen("tcp", "[::]:7300"); return }); err != nil {
		t.Fatal(err)
	}
	defer hostLn.Close()
	gw := nodes[0].n.Subnet().Addr().Next().String()
	for _, target := range []string{"[" + gw + "]:7300", "[" + nodes[0].n.Address().String() + "]:7300"} {
		err := netnsx.Do(nodes[0].wl, func() error {
			c, err := net.DialTimeout("tcp", target, time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
		if err == nil {
			t.Errorf("overlay workload reached its host at %s", target)
		}
	}
	if len(nodes[0].n.Peers()) != 1 || !nodes[0].n.Peers()[0].Up {
		t.Errorf("peers: %+v", nodes[0].n.Peers())
	}
	for _, nd := range nodes {
		if err := nd.m.DetachOverlay(ctx, nd.wl); err != nil {
			t.Fatal(err)
		}
		// Detaching the last workload leaves no bridge and no rules.
		h, err := netns.GetFromPath(nd.host)
		if err != nil {
			t.Fatal(err)
		}
		nl, _ := netlink.NewHandleAt(h)
		if _, err := nl.LinkByName("br-ygg"); err == nil {
			t.Error("overlay bridge left behind")
		}
		nl.Close()
		c, _ := nftables.New(nftables.WithNetNSFd(int(h)))
		if tables, _ := c.ListTables(); len(tables) != 0 {
			t.Errorf("%d nftables tables left behind", len(tables))
		}
		h.Close()
	}
}
