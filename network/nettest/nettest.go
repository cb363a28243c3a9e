package nettest

import (
	"errors"
	"fmt"
	"io"
	"net"
	"time"

	"github.com/vishvananda/netlink"

	"github.com/zosgrid/zos/network/internal/netnsx"
)

// Add creates the named network namespace (as `ip netns add` does, so `ip
// -n NAME …` reaches it) with its loopback up. It returns a function that
// deletes the namespace.
func Add(name string) (del func() error, err error) {
	path, err := netnsx.Create(name)
	if err != nil {
		return nil, err
	}
	del = func() error { return netnsx.Delete(name) }
	h, err := netnsx.Open(path)
	if err != nil {
		return nil, errors.Join(err, del())
	}
	defer h.Close()
	nl, err := netlink.NewHandleAt(h)
	if err != nil {
		return nil, errors.Join(fmt.Errorf("netlink in %s: %w", name, err), del())
	}
	defer nl.Close()
	lo, err := nl.LinkByName("lo")
	if err == nil {
		err = nl.LinkSetUp(lo)
	}
	if err != nil {
		return nil, errors.Join(fmt.Errorf("loopback up in %s: %w", name, err), del())
	}
	return del, nil
}

// Do runs fn on a thread inside the named namespace. Sockets fn opens
// belong to that namespace; fn must not start goroutines that expect to
// inherit it.
func Do(name string, fn func() error) error {
	return netnsx.Do(netnsx.Path(name), fn)
}

// RoundTrip sends msg over c, which must lead to an echo server, and
// checks that the same bytes come back within timeout.
func RoundTrip(c net.Conn, msg string, timeout time.Duration) error {
	c.SetDeadline(time.Now().Add(timeout))
	if _, err := io.WriteString(c, msg); err != nil {
		return err
	}
	buf := make([]byte, len(msg))
	if _, err := io.ReadFull(c, buf); err != nil {
		return err
	}
	if string(buf) != msg {
		return fmt.Errorf("echo: sent %q, got %q back", msg, buf)
	}
	return nil
}
