package netnsx

import (
	"crypto/rand"
	"encoding/hex"
	"errors"
	"os"
	"testing"

	"github.com/vishvananda/netns"

	"github.com/zosgrid/zos/internal/zostest"
)

func TestCreateDoDelete(t *testing.T) {
	zostest.RequiresNetns(t)
	b := make([]byte, 3)
	rand.Read(b)
	name := "zx" + hex.EncodeToString(b)
	t.Cleanup(func() { Delete(name) })

	before, err := netns.Get()
	if err != nil {
		t.Fatal(err)
	}
	defer before.Close()
	p, err := Create(name)
	if err != nil {
		t.Fatal(err)
	}
	if p2, err := Create(name); err != nil || p2 != p {
		t.Fatalf("second Create = %s, %v", p2, err)
	}
	target, err := netns.GetFromPath(p)
	if err != nil {
		t.Fatal(err)
	}
	defer target.Close()
	if target.Equal(before) {
		t.Fatal("the new namespace is the caller's")
	}

	// Do runs inside, and the caller's thread is back where it was.
	var inside netns.NsHandle
	if err := Do(p, func() (err error) { inside, err = netns.Get(); return }); err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	if !inside.Equal(target) {
		t.Fatal("Do did not run inside the namespace")
	}
	after, _ := netns.Get()
	defer after.Close()
	if !after.Equal(before) {
		t.Fatal("Do left the thread in another namespace")
	}
	sentinel := errors.New("boom")
	if err := Do(p, func() error { return sentinel }); !errors.Is(err, sentinel) {
		t.Fatalf("Do lost fn's error: %v", err)
	}
	const fwd = "/proc/sys/net/ipv4/ip_forward"
	hostBefore, _ := os.ReadFile(fwd)
	if err := SetSysctl(p, "net/ipv4/ip_forward", "1"); err != nil {
		t.Fatal(err)
	}
	var in []byte
	Do(p, func() (err error) { in, err = os.ReadFile(fwd); return })
	if string(in) != "1\n" {
		t.Fatalf("sysctl inside = %q, want 1", in)
	}
	if hostAfter, _ := os.ReadFile(fwd); string(hostAfter) != string(hostBefore) {
		t.Fatal("sysctl changed the caller's namespace")
	}
	if err := Do("/nonexistent/ns", func() error { return nil }); err == nil {
		t.Fatal("Do into a missing namespace succeeded")
	}

	if err := Delete(name); err != nil {
		t.Fatal(err)
	}
	if Exists(name) {
		t.Fatal("namespace still exists")
	}
	if err := Delete(name); err != nil {
		t.Fatalf("second Delete: %v", err)
	}
}
