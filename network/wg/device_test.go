package wg

import (
	"fmt"
	"os"
	"testing"

	"golang.zx2c4.com/wireguard/tun"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/network/internal/netnsx"
)

// A TUN created in another namespace reports its own MTU, not an error or
// the MTU of a same-named interface in this process's namespace.
func TestNSTUNMTU(t *testing.T) {
	zostest.RequiresNetns(t)
	name := fmt.Sprintf("zwgmtu%d", os.Getpid())
	nsPath, err := netnsx.Create(name)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { netnsx.Delete(name) })

	var dev tun.Device
	if err := netnsx.Do(nsPath, func() (err error) { dev, err = tun.CreateTUN("wgmtu0", 1380); return }); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { dev.Close() })

	// The bare device looks the name up here, where it does not exist.
	if mtu, err := dev.MTU(); err == nil {
		t.Fatalf("bare TUN MTU from the wrong namespace: got %d, want an error (test premise broken)", mtu)
	}
	mtu, err := (nsTUN{Device: dev, ns: nsPath}).MTU()
	if err != nil {
		t.Fatal(err)
	}
	if mtu != 1380 {
		t.Fatalf("MTU %d, want 1380", mtu)
	}
}
