package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"net/netip"
	"path/filepath"
	"slices"

	"github.com/vishvananda/netlink"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/network/internal/netnsx"
)

// linkOverlayBridge is the host bridge the overlay workloads hang off; it
// holds <subnet>::1/64 and the host routes the overlay /64 to it.
const linkOverlayBridge = "br-ygg"

// overlayRange is the planetary overlay's address range (Yggdrasil).
var overlayRange = netip.MustParsePrefix("200::/7")

func (m *Manager) overlayStatePath() string {
	return filepath.Join(m.cfg.StateDir, "overlay-attachments.json")
}

// AttachOverlay gives the workload namespace wlNS an address from the
// node's overlay /64 (subnet): a veth on the host's overlay bridge, the
// address <subnet>::N and a route to the overlay (200::/7) through the host.
// The overlay node itself must run in the host namespace. Attaching again
// returns the same address. mtu is the overlay interface's MTU (0 = 1500):
// the workload's link matches it so large segments cross in one piece.
func (m *Manager) AttachOverlay(ctx context.Context, subnet netip.Prefix, wlNS, ifname string, mtu int) (netip.Prefix, error) {
	if !subnet.IsValid() || subnet.Bits() != 64 || !overlayRange.Contains(subnet.Addr()) || subnet.Masked() != subnet {
		return netip.Prefix{}, fmt.Errorf("network: overlay subnet %s: want a /64 in %s", subnet, overlayRange)
	}
	if ifname == "" {
		ifname = "ygg0"
	}
	unlock, err := m.lock()
	if err != nil {
		return netip.Prefix{}, err
	}
	defer unlock()
	var atts []Attachment
	if err := readJSON(m.overlayStatePath(), &atts); err != nil && !errors.Is(err, errNotExist) {
		return netip.Prefix{}, err
	}
	idx := slices.IndexFunc(atts, func(a Attachment) bool { return a.Netns == wlNS })
	var a Attachment
	if idx >= 0 {
		a = atts[idx]
	} else {
		used := map[netip.Addr]bool{}
		for _, o := range atts {
			used[o.Address.Addr()] = true
		}
		addr := subnet.Addr().Next().Next()
		for used[addr] {
			addr = addr.Next()
		}
		h := sha256.Sum256([]byte(wlNS))
		a = Attachment{Netns: wlNS, Interface: ifname, Address: netip.PrefixFrom(addr, 64), HostLink: "y-" + hex.EncodeToString(h[:5])}
	}
	host, err := openNS(m.cfg.HostNS)
	if err != nil {
		return netip.Prefix{}, err
	}
	defer host.Close()
	wl, err := openNS(wlNS)
	if err != nil {
		return netip.Prefix{}, err
	}
	defer wl.Close()
	br, err := ensureBridge(host.h, linkOverlayBridge)
	if err != nil {
		return netip.Prefix{}, err
	}
	if err := addr6(host.h, br, netip.PrefixFrom(subnet.Addr().Next(), 64)); err != nil {
		return netip.Prefix{}, err
	}
	if err := writeTable(host.ns, tableYgg, overlayRules()); err != nil {
		return netip.Prefix{}, err
	}
	if err := netnsx.SetSysctl(m.cfg.HostNS, "net/ipv6/conf/all/forwarding", "1"); err != nil {
		return netip.Prefix{}, err
	}
	hl, err := ensureVeth(host.h, a.HostLink, a.Interface, int(wl.ns))
	if err != nil {
		return netip.Prefix{}, err
	}
	if err := setMTU(host.h, hl, mtu); err != nil {
		return netip.Prefix{}, err
	}
	if err := host.h.LinkSetMaster(hl, br); err != nil {
		return netip.Prefix{}, fmt.Errorf("network: overlay bridge: %w", err)
	}
	if err := up(host.h, hl, netip.Prefix{}); err != nil {
		return netip.Prefix{}, err
	}
	wll, err := wl.h.LinkByName(a.Interface)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network: workload overlay link: %w", err)
	}
	if err := setMTU(wl.h, wll, mtu); err != nil {
		return netip.Prefix{}, err
	}
	if err := addr6(wl.h, wll, a.Address); err != nil {
		return netip.Prefix{}, err
	}
	r := &netlink.Route{Dst: ipnet(overlayRange), Gw: subnet.Addr().Next().AsSlice(), LinkIndex: wll.Attrs().Index, Protocol: routeProto}
	if err := wl.h.RouteReplace(r); err != nil {
		return netip.Prefix{}, fmt.Errorf("network: overlay route: %w", err)
	}
	if idx < 0 {
		atts = append(atts, a)
		if err := writeJSON(m.overlayStatePath(), atts); err != nil {
			return netip.Prefix{}, err
		}
	}
	return a.Address, nil
}

// DetachOverlay removes a workload from the overlay; the bridge goes with
// the last workload.
func (m *Manager) DetachOverlay(ctx context.Context, wlNS string) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	var atts []Attachment
	if err := readJSON(m.overlayStatePath(), &atts); err != nil && !errors.Is(err, errNotExist) {
		return err
	}
	idx := slices.IndexFunc(atts, func(a Attachment) bool { return a.Netns == wlNS })
	if idx < 0 {
		return fmt.Errorf("%w: %s is not attached to the overlay", ErrNotFound, wlNS)
	}
	host, err := openNS(m.cfg.HostNS)
	if err != nil {
		return err
	}
	defer host.Close()
	if err := deleteLink(host.h, atts[idx].HostLink); err != nil {
		return err
	}
	atts = slices.Delete(atts, idx, idx+1)
	if len(atts) == 0 {
		if err := deleteLink(host.h, linkOverlayBridge); err != nil {
			return err
		}
		if err := deleteTable(host.ns, tableYgg); err != nil {
			return err
		}
		return removeFile(m.overlayStatePath())
	}
	return writeJSON(m.overlayStatePath(), atts)
}

// addr6 sets an IPv6 address without duplicate address detection (the
// addresses are unique by construction, and DAD would delay their use) and
// brings the link up.
func addr6(h *netlink.Handle, l netlink.Link, p netip.Prefix) error {
	if err := h.AddrReplace(l, &netlink.Addr{IPNet: ipnet(p), Flags: unix.IFA_F_NODAD}); err != nil {
		return fmt.Errorf("network: address %s on %s: %w", p, l.Attrs().Name, err)
	}
	if err := h.LinkSetUp(l); err != nil {
		return fmt.Errorf("network: up %s: %w", l.Attrs().Name, err)
	}
	return nil
}
