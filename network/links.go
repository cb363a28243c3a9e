package network

import (
	"errors"
	"fmt"
	"net"
	"net/netip"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"
)

// Link and address names; each namespace is private to one role, so only
// links in the host namespace need names unique on the machine.
const (
	linkHostDMZ   = "zdmz"    // host end of the DMZ uplink
	linkUplink    = "uplink"  // DMZ end of the uplink
	linkDMZBridge = "br-ndmz" // DMZ bridge the networks hang off
	linkPublic    = "public"  // network end of its DMZ link
	linkBridge    = "br0"     // network bridge for local workloads
	linkWG        = "wg0"     // network WireGuard TUN
)

var (
	uplinkHost = netip.MustParsePrefix("100.126.0.1/30")
	uplinkDMZ  = netip.MustParsePrefix("100.126.0.2/30")
	dmzGateway = netip.MustParsePrefix("100.127.0.1/16")
	dmzRange   = netip.MustParsePrefix("100.127.0.0/16")
)

// routeProto marks the routes this package manages.
const routeProto = netlink.RouteProtocol(unix.RTPROT_STATIC)

func ipnet(p netip.Prefix) *net.IPNet {
	return &net.IPNet{IP: p.Addr().AsSlice(), Mask: net.CIDRMask(p.Bits(), p.Addr().BitLen())}
}

func isNotFound(err error) bool {
	var nf netlink.LinkNotFoundError
	return errors.As(err, &nf)
}

// linkByName returns the link or nil when it does not exist.
func linkByName(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := h.LinkByName(name)
	if isNotFound(err) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("network: link %s: %w", name, err)
	}
	return l, nil
}

// ensureBridge creates a bridge if needed and brings it up.
func ensureBridge(h *netlink.Handle, name string) (netlink.Link, error) {
	l, err := linkByName(h, name)
	if err != nil {
		return nil, err
	}
	if l == nil {
		br := &netlink.Bridge{LinkAttrs: netlink.LinkAttrs{Name: name}}
		if err := h.LinkAdd(br); err != nil {
			return nil, fmt.Errorf("network: add bridge %s: %w", name, err)
		}
		if l, err = h.LinkByName(name); err != nil {
			return nil, fmt.Errorf("network: bridge %s: %w", name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return nil, fmt.Errorf("network: up %s: %w", name, err)
	}
	return l, nil
}

// ensureVeth creates a veth pair with one end (name) in h's namespace and
// the other (peer) in the namespace peerNS, unless name already exists.
func ensureVeth(h *netlink.Handle, name, peer string, peerNS int) (netlink.Link, error) {
	l, err := linkByName(h, name)
	if err != nil || l != nil {
		return l, err
	}
	v := &netlink.Veth{
		LinkAttrs:     netlink.LinkAttrs{Name: name},
		PeerName:      peer,
		PeerNamespace: netlink.NsFd(peerNS),
	}
	if err := h.LinkAdd(v); err != nil {
		return nil, fmt.Errorf("network: add veth %s/%s: %w", name, peer, err)
	}
	l, err = h.LinkByName(name)
	if err != nil {
		return nil, fmt.Errorf("network: veth %s: %w", name, err)
	}
	return l, nil
}

// setMTU sets a link's MTU if it differs.
func setMTU(h *netlink.Handle, l netlink.Link, mtu int) error {
	if mtu <= 0 || l.Attrs().MTU == mtu {
		return nil
	}
	if err := h.LinkSetMTU(l, mtu); err != nil {
		return fmt.Errorf("network: mtu %d on %s: %w", mtu, l.Attrs().Name, err)
	}
	return nil
}

// up sets the link's address and brings it up. An IPv4 address replaces
// any other IPv4 address of the link (these links are ours alone), so a
// changed spec leaves no stale address behind.
func up(h *netlink.Handle, l netlink.Link, addr netip.Prefix) error {
	if addr.IsValid() && addr.Addr().Is4() {
		have, err := h.AddrList(l, netlink.FAMILY_V4)
		if err != nil {
			return fmt.Errorf("network: addresses of %s: %w", l.Attrs().Name, err)
		}
		for _, a := range have {
			ones, _ := a.Mask.Size()
			ip, _ := netip.AddrFromSlice(a.IP)
			if netip.PrefixFrom(ip.Unmap(), ones) == addr {
				continue
			}
			if err := h.AddrDel(l, &a); err != nil {
				return fmt.Errorf("network: remove %s from %s: %w", a.IPNet, l.Attrs().Name, err)
			}
		}
	}
	if addr.IsValid() {
		if err := h.AddrReplace(l, &netlink.Addr{IPNet: ipnet(addr)}); err != nil {
			return fmt.Errorf("network: address %s on %s: %w", addr, l.Attrs().Name, err)
		}
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("network: up %s: %w", l.Attrs().Name, err)
	}
	return nil
}

// defaultRoute replaces the IPv4 default route with one via gw.
func defaultRoute(h *netlink.Handle, gw netip.Addr) error {
	r := &netlink.Route{Dst: ipnet(netip.MustParsePrefix("0.0.0.0/0")), Gw: gw.AsSlice(), Protocol: routeProto}
	if err := h.RouteReplace(r); err != nil {
		return fmt.Errorf("network: default route via %s: %w", gw, err)
	}
	return nil
}

// deleteLink removes a link if it exists.
func deleteLink(h *netlink.Handle, name string) error {
	l, err := linkByName(h, name)
	if err != nil || l == nil {
		return err
	}
	if err := h.LinkDel(l); err != nil {
		return fmt.Errorf("network: delete %s: %w", name, err)
	}
	return nil
}

// syncRoutes makes the managed routes through link exactly want.
func syncRoutes(h *netlink.Handle, l netlink.Link, want []netip.Prefix) error {
	have, err := h.RouteList(l, netlink.FAMILY_V4)
	if err != nil {
		return fmt.Errorf("network: routes on %s: %w", l.Attrs().Name, err)
	}
	wanted := map[netip.Prefix]bool{}
	for _, p := range want {
		wanted[p] = true
	}
	present := map[netip.Prefix]bool{}
	for _, r := range have {
		if r.Protocol != routeProto || r.Dst == nil {
			continue
		}
		ones, _ := r.Dst.Mask.Size()
		a, _ := netip.AddrFromSlice(r.Dst.IP)
		p := netip.PrefixFrom(a.Unmap(), ones)
		if wanted[p] {
			present[p] = true
			continue
		}
		if err := h.RouteDel(&r); err != nil {
			return fmt.Errorf("network: delete route %s: %w", p, err)
		}
	}
	for _, p := range want {
		if present[p] {
			continue
		}
		r := &netlink.Route{LinkIndex: l.Attrs().Index, Dst: ipnet(p), Protocol: routeProto, Scope: netlink.SCOPE_LINK}
		if err := h.RouteReplace(r); err != nil {
			return fmt.Errorf("network: route %s via %s: %w", p, l.Attrs().Name, err)
		}
	}
	return nil
}
