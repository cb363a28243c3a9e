package network

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"slices"
	"time"

	"github.com/vishvananda/netlink"
	"github.com/vishvananda/netns"

	"github.com/zosgrid/zos/network/internal/netnsx"
	"github.com/zosgrid/zos/network/wg"
)

// DefaultStateDir is where a node keeps its network state cache.
const DefaultStateDir = "/run/zos/network"

// DeviceRunner starts and stops the wireguard-go devices of networks. The
// manager only talks to a device through its UAPI socket, so a device may
// run in this process (InProcess) or in a helper process (Exec), which is
// what a short-lived CLI needs.
type DeviceRunner interface {
	// StartDevice starts a device and returns once its UAPI socket answers.
	StartDevice(ctx context.Context, cfg wg.DeviceConfig) error
	// StopDevice stops the device serving socket; a missing one is no error.
	StopDevice(ctx context.Context, socket string) error
}

// Config of a Manager.
type Config struct {
	// HostNS is the path of the namespace the node's outward interface and
	// WireGuard sockets live in; "" is this process's namespace.
	HostNS string
	// Prefix is prepended to the names of the namespaces created, so several
	// simulated nodes can share one machine. Empty on a real node.
	Prefix string
	// StateDir keeps the state cache and the UAPI sockets (DefaultStateDir).
	StateDir string
	// Devices runs the WireGuard devices.
	Devices DeviceRunner
	Logger  *slog.Logger
}

// Manager applies network specs on one host.
type Manager struct {
	cfg Config
	log *slog.Logger
}

// New returns a manager. It touches nothing until a method is called.
func New(cfg Config) (*Manager, error) {
	if cfg.StateDir == "" {
		cfg.StateDir = DefaultStateDir
	}
	if cfg.Devices == nil {
		return nil, errors.New("network: Config.Devices is required")
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Manager{cfg: cfg, log: log.With("component", "network")}, nil
}

// Namespace returns the name of the namespace of the named network.
func (m *Manager) Namespace(name string) string { return m.cfg.Prefix + "n-" + ID(name) }

// DMZNamespace returns the name of the node's DMZ namespace.
func (m *Manager) DMZNamespace() string { return m.cfg.Prefix + "ndmz" }

// handles opens netlink handles on the host and another namespace.
type nsh struct {
	ns netns.NsHandle
	h  *netlink.Handle
}

func openNS(path string) (nsh, error) {
	ns, err := netnsx.Open(path)
	if err != nil {
		return nsh{}, err
	}
	h, err := netlink.NewHandleAt(ns)
	if err != nil {
		ns.Close()
		return nsh{}, fmt.Errorf("network: netlink in %s: %w", path, err)
	}
	return nsh{ns: ns, h: h}, nil
}

func (n nsh) Close() {
	n.h.Close()
	n.ns.Close()
}

// Apply brings the network to spec on this host. It is idempotent: applying
// the same spec again changes nothing, and a changed peer list touches only
// the peers and routes that changed.
func (m *Manager) Apply(ctx context.Context, spec Spec) error {
	if err := spec.Validate(); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()

	id := ID(spec.Name)
	st, err := m.load(spec.Name)
	fresh := errors.Is(err, ErrNotFound)
	if err != nil && !fresh {
		return err
	}
	if !fresh && st.Spec.Subnet != spec.Subnet && len(st.Attachments) > 0 {
		return fmt.Errorf("%w: subnet changes from %s to %s while workloads are attached; detach them first", ErrInvalidSpec, st.Spec.Subnet, spec.Subnet)
	}
	others, err := m.states()
	if err != nil {
		return err
	}
	for _, o := range others {
		if o.Spec.Name != spec.Name && o.Spec.WGListenPort == spec.WGListenPort {
			return fmt.Errorf("%w: wireguard_listen_port %d is used by network %s", ErrInvalidSpec, spec.WGListenPort, o.Spec.Name)
		}
	}
	if fresh {
		st.Public = allocPublic(id, others)
	}
	st.Spec = spec
	err = m.apply(ctx, st)
	if err != nil && fresh {
		// A network that never came up leaves nothing behind.
		if rerr := m.remove(ctx, spec.Name); rerr != nil {
			m.log.Warn("cleanup after failed apply", "network", spec.Name, "err", rerr)
		}
	}
	return err
}

// apply does the work of Apply with the lock held.
func (m *Manager) apply(ctx context.Context, st state) error {
	spec := st.Spec
	id := ID(spec.Name)
	log := m.log.With("network", spec.Name, "id", id)

	host, err := openNS(m.cfg.HostNS)
	if err != nil {
		return err
	}
	defer host.Close()
	dmz, err := m.ensureDMZ(host)
	if err != nil {
		return err
	}
	defer dmz.Close()

	nsName := m.Namespace(spec.Name)
	nsPath, err := netnsx.Create(nsName)
	if err != nil {
		return err
	}
	nr, err := openNS(nsPath)
	if err != nil {
		return err
	}
	defer nr.Close()
	if lo, err := nr.h.LinkByName("lo"); err == nil {
		nr.h.LinkSetUp(lo)
	}
	br, err := ensureBridge(nr.h, linkBridge)
	if err != nil {
		return err
	}
	if err := up(nr.h, br, netip.PrefixFrom(Gateway(spec.Subnet), 24)); err != nil {
		return err
	}
	dmzEnd := "d-" + id
	dl, err := ensureVeth(dmz.h, dmzEnd, linkPublic, int(nr.ns))
	if err != nil {
		return err
	}
	dbr, err := dmz.h.LinkByName(linkDMZBridge)
	if err != nil {
		return fmt.Errorf("network: dmz bridge: %w", err)
	}
	if err := dmz.h.LinkSetMaster(dl, dbr); err != nil {
		return fmt.Errorf("network: attach %s to dmz: %w", dmzEnd, err)
	}
	if err := up(dmz.h, dl, netip.Prefix{}); err != nil {
		return err
	}
	pub, err := nr.h.LinkByName(linkPublic)
	if err != nil {
		return fmt.Errorf("network: public link: %w", err)
	}
	if err := up(nr.h, pub, st.Public); err != nil {
		return err
	}
	if err := defaultRoute(nr.h, dmzGateway.Addr()); err != nil {
		return err
	}
	if err := netnsx.SetSysctl(nsPath, "net/ipv4/ip_forward", "1"); err != nil {
		return err
	}
	if err := netnsx.NoBridgeFilter(nsPath); err != nil {
		return err
	}
	if err := writeTable(nr.ns, tableNet, netRules()); err != nil {
		return err
	}

	sock := m.socketPath(id)
	client := wg.Client{Socket: sock}
	if _, err := client.Get(ctx); err != nil {
		log.Info("starting wireguard device")
		if err := m.cfg.Devices.StartDevice(ctx, wg.DeviceConfig{TunName: linkWG, TunNS: nsPath, SocketNS: m.cfg.HostNS, Socket: sock}); err != nil {
			return err
		}
	}
	if err := client.Configure(ctx, spec.wgConfig()); err != nil {
		return err
	}
	wgl, err := nr.h.LinkByName(linkWG)
	if err != nil {
		return fmt.Errorf("network: wireguard link: %w", err)
	}
	if err := up(nr.h, wgl, WGAddress(spec.Subnet)); err != nil {
		return err
	}
	var routes []netip.Prefix
	for _, p := range spec.Peers {
		routes = append(routes, p.AllowedIPs...)
	}
	if err := syncRoutes(nr.h, wgl, routes); err != nil {
		return err
	}
	if err := m.save(st); err != nil {
		return err
	}
	log.Info("network applied", "peers", len(spec.Peers))
	return m.refreshWall(host)
}

// allocPublic picks the network's address on the DMZ bridge from its id,
// moving on if another network has it.
func allocPublic(id string, others []state) netip.Prefix {
	h := sha256.Sum256([]byte(id))
	n := int(h[0])<<8 | int(h[1])
	used := map[netip.Addr]bool{}
	for _, o := range others {
		used[o.Public.Addr()] = true
	}
	for {
		a := netip.AddrFrom4([4]byte{100, 127, byte(n >> 8), byte(n)})
		if n&0xff != 0 && n&0xff != 255 && n > 1 && !used[a] {
			return netip.PrefixFrom(a, 16)
		}
		n = (n + 1) % 65536
	}
}

// ensureDMZ builds the DMZ namespace and its uplink to the host.
func (m *Manager) ensureDMZ(host nsh) (nsh, error) {
	dmzPath, err := netnsx.Create(m.DMZNamespace())
	if err != nil {
		return nsh{}, err
	}
	dmz, err := openNS(dmzPath)
	if err != nil {
		return nsh{}, err
	}
	fail := func(err error) (nsh, error) { dmz.Close(); return nsh{}, err }
	if lo, err := dmz.h.LinkByName("lo"); err == nil {
		dmz.h.LinkSetUp(lo)
	}
	hl, err := ensureVeth(host.h, linkHostDMZ, linkUplink, int(dmz.ns))
	if err != nil {
		return fail(err)
	}
	if err := up(host.h, hl, uplinkHost); err != nil {
		return fail(err)
	}
	ul, err := dmz.h.LinkByName(linkUplink)
	if err != nil {
		return fail(fmt.Errorf("network: dmz uplink: %w", err))
	}
	if err := up(dmz.h, ul, uplinkDMZ); err != nil {
		return fail(err)
	}
	br, err := ensureBridge(dmz.h, linkDMZBridge)
	if err != nil {
		return fail(err)
	}
	if err := up(dmz.h, br, dmzGateway); err != nil {
		return fail(err)
	}
	if err := defaultRoute(dmz.h, uplinkHost.Addr()); err != nil {
		return fail(err)
	}
	for _, p := range []string{m.cfg.HostNS, dmzPath} {
		if err := netnsx.SetSysctl(p, "net/ipv4/ip_forward", "1"); err != nil {
			return fail(err)
		}
	}
	if err := netnsx.NoBridgeFilter(dmzPath); err != nil {
		return fail(err)
	}
	if err := writeTable(dmz.ns, tableNet, dmzRules()); err != nil {
		return fail(err)
	}
	if err := writeTable(host.ns, tableHost, hostRules()); err != nil {
		return fail(err)
	}
	return dmz, nil
}

// Remove tears the named network down: its device, links, namespace and
// state. When it was the last network, the DMZ goes too.
func (m *Manager) Remove(ctx context.Context, name string) error {
	if err := ValidateName(name); err != nil {
		return err
	}
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	return m.remove(ctx, name)
}

// remove does the work of Remove with the lock held.
func (m *Manager) remove(ctx context.Context, name string) error {
	st, err := m.load(name)
	if err != nil && !errors.Is(err, ErrNotFound) {
		return err
	}
	id := ID(name)
	if err := m.cfg.Devices.StopDevice(ctx, m.socketPath(id)); err != nil {
		return err
	}
	for _, a := range st.Attachments {
		if err := detachLinks(a); err != nil {
			return err
		}
	}
	nsName := m.Namespace(name)
	if netnsx.Exists(nsName) {
		nr, err := openNS(netnsx.Path(nsName))
		if err != nil {
			return err
		}
		for _, l := range []string{linkPublic, linkBridge, linkWG} {
			if err := deleteLink(nr.h, l); err != nil {
				nr.Close()
				return err
			}
		}
		nr.Close()
		if err := netnsx.Delete(nsName); err != nil {
			return err
		}
	}
	if err := removeFile(m.statePath(id)); err != nil {
		return err
	}
	rest, err := m.states()
	if err != nil {
		return err
	}
	host, err := openNS(m.cfg.HostNS)
	if err != nil {
		return err
	}
	defer host.Close()
	if len(rest) == 0 {
		if err := m.removeDMZ(host); err != nil {
			return err
		}
	}
	m.log.Info("network removed", "network", name, "id", id)
	return m.refreshWall(host)
}

func (m *Manager) removeDMZ(host nsh) error {
	if err := deleteLink(host.h, linkHostDMZ); err != nil {
		return err
	}
	if err := deleteTable(host.ns, tableHost); err != nil {
		return err
	}
	return netnsx.Delete(m.DMZNamespace())
}

// Info describes an applied network.
type Info struct {
	Name      string       `json:"name"`
	ID        string       `json:"id"`
	Namespace string       `json:"namespace"`
	IPRange   netip.Prefix `json:"ip_range"`
	Subnet    netip.Prefix `json:"subnet"`
	Peers     int          `json:"peers"`
}

// List returns the networks applied on this host, sorted by name.
func (m *Manager) List(ctx context.Context) ([]Info, error) {
	sts, err := m.states()
	if err != nil {
		return nil, err
	}
	out := []Info{}
	for _, st := range sts {
		out = append(out, Info{Name: st.Spec.Name, ID: ID(st.Spec.Name), Namespace: m.Namespace(st.Spec.Name),
			IPRange: st.Spec.IPRange, Subnet: st.Spec.Subnet, Peers: len(st.Spec.Peers)})
	}
	return out, nil
}

// Status is the live state of one network.
type Status struct {
	Info
	PublicKey   wg.PublicKey    `json:"public_key"`
	ListenPort  uint16          `json:"listen_port"`
	WGAddress   netip.Prefix    `json:"wg_address"`
	Peers       []wg.PeerStatus `json:"peers"`
	Attachments []Attachment    `json:"attachments"`
}

// Status reports the device's peers, handshakes and byte counters.
func (m *Manager) Status(ctx context.Context, name string) (Status, error) {
	if err := ValidateName(name); err != nil {
		return Status{}, err
	}
	st, err := m.load(name)
	if err != nil {
		return Status{}, err
	}
	ds, err := wg.Client{Socket: m.socketPath(ID(name))}.Get(ctx)
	if err != nil {
		return Status{}, fmt.Errorf("network: %s: device not running: %w", name, err)
	}
	return Status{
		Info: Info{Name: name, ID: ID(name), Namespace: m.Namespace(name), IPRange: st.Spec.IPRange,
			Subnet: st.Spec.Subnet, Peers: len(st.Spec.Peers)},
		PublicKey: ds.PublicKey, ListenPort: ds.ListenPort, WGAddress: WGAddress(st.Spec.Subnet),
		Peers: ds.Peers, Attachments: st.Attachments,
	}, nil
}

// Attach connects the workload namespace at wlNS to the network with a veth
// pair: ifname inside the workload, with the next free address of the
// node's subnet and a default route through the network. Attaching the same
// namespace again returns its address.
func (m *Manager) Attach(ctx context.Context, name, wlNS, ifname string) (netip.Prefix, error) {
	if err := ValidateName(name); err != nil {
		return netip.Prefix{}, err
	}
	if ifname == "" {
		ifname = "n-" + ID(name)
	}
	if len(ifname) > 15 {
		return netip.Prefix{}, fmt.Errorf("network: interface name %q longer than 15 bytes", ifname)
	}
	unlock, err := m.lock()
	if err != nil {
		return netip.Prefix{}, err
	}
	defer unlock()
	st, err := m.load(name)
	if err != nil {
		return netip.Prefix{}, err
	}
	idx := slices.IndexFunc(st.Attachments, func(a Attachment) bool { return a.Netns == wlNS })
	var a Attachment
	if idx >= 0 {
		a = st.Attachments[idx]
	} else {
		addr, err := nextFree(st)
		if err != nil {
			return netip.Prefix{}, err
		}
		h := sha256.Sum256([]byte(wlNS))
		a = Attachment{Netns: wlNS, Interface: ifname, Address: addr, HostLink: "a-" + hex.EncodeToString(h[:5])}
	}
	nr, err := openNS(netnsx.Path(m.Namespace(name)))
	if err != nil {
		return netip.Prefix{}, err
	}
	defer nr.Close()
	wl, err := openNS(wlNS)
	if err != nil {
		return netip.Prefix{}, err
	}
	defer wl.Close()
	hl, err := ensureVeth(nr.h, a.HostLink, a.Interface, int(wl.ns))
	if err != nil {
		return netip.Prefix{}, err
	}
	br, err := nr.h.LinkByName(linkBridge)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network: bridge: %w", err)
	}
	// The workload's link carries no more than WireGuard does, so its TCP
	// picks the right segment size from the start.
	if err := setMTU(nr.h, hl, wg.DefaultMTU); err != nil {
		return netip.Prefix{}, err
	}
	if err := nr.h.LinkSetMaster(hl, br); err != nil {
		return netip.Prefix{}, fmt.Errorf("network: attach to bridge: %w", err)
	}
	if err := up(nr.h, hl, netip.Prefix{}); err != nil {
		return netip.Prefix{}, err
	}
	if lo, err := wl.h.LinkByName("lo"); err == nil {
		wl.h.LinkSetUp(lo)
	}
	wll, err := wl.h.LinkByName(a.Interface)
	if err != nil {
		return netip.Prefix{}, fmt.Errorf("network: workload link: %w", err)
	}
	if err := setMTU(wl.h, wll, wg.DefaultMTU); err != nil {
		return netip.Prefix{}, err
	}
	if err := up(wl.h, wll, a.Address); err != nil {
		return netip.Prefix{}, err
	}
	if err := defaultRoute(wl.h, Gateway(st.Spec.Subnet)); err != nil {
		return netip.Prefix{}, err
	}
	if idx < 0 {
		st.Attachments = append(st.Attachments, a)
		if err := m.save(st); err != nil {
			return netip.Prefix{}, err
		}
	}
	return a.Address, nil
}

// Detach removes a workload namespace from the network.
func (m *Manager) Detach(ctx context.Context, name, wlNS string) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	st, err := m.load(name)
	if err != nil {
		return err
	}
	idx := slices.IndexFunc(st.Attachments, func(a Attachment) bool { return a.Netns == wlNS })
	if idx < 0 {
		return fmt.Errorf("%w: %s is not attached to %s", ErrNotFound, wlNS, name)
	}
	if err := detachLinks(st.Attachments[idx]); err != nil {
		return err
	}
	st.Attachments = slices.Delete(st.Attachments, idx, idx+1)
	return m.save(st)
}

// detachLinks deletes the workload's end of the veth (the kernel deletes
// the pair); a workload namespace that is gone already is fine.
func detachLinks(a Attachment) error {
	wl, err := openNS(a.Netns)
	if err != nil {
		return nil
	}
	defer wl.Close()
	return deleteLink(wl.h, a.Interface)
}

func nextFree(st state) (netip.Prefix, error) {
	used := map[netip.Addr]bool{}
	for _, a := range st.Attachments {
		used[a.Address.Addr()] = true
	}
	a := Gateway(st.Spec.Subnet).Next()
	for st.Spec.Subnet.Contains(a) {
		b := a.As4()
		if b[3] != 255 && !used[a] {
			return netip.PrefixFrom(a, 24), nil
		}
		a = a.Next()
	}
	return netip.Prefix{}, fmt.Errorf("network: subnet %s is full", st.Spec.Subnet)
}

// Wall configures the network wall on the host's outward interface.
type Wall struct {
	// Outward is the interface facing the internet; "" picks the interface
	// of the IPv4 default route.
	Outward string `json:"outward"`
	// TCP and UDP ports to accept new connections on (the overlay peering
	// ports); the WireGuard ports of every network are always added.
	TCP []uint16 `json:"tcp"`
	UDP []uint16 `json:"udp"`
}

// ApplyWall installs (or updates) the wall. It is kept up to date as
// networks come and go.
func (m *Manager) ApplyWall(ctx context.Context, w Wall) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	host, err := openNS(m.cfg.HostNS)
	if err != nil {
		return err
	}
	defer host.Close()
	if w.Outward == "" {
		if w.Outward, err = defaultInterface(host.h); err != nil {
			return err
		}
	}
	if err := writeJSON(m.wallPath(), wallState(w)); err != nil {
		return err
	}
	return m.refreshWall(host)
}

// RemoveWall removes the wall.
func (m *Manager) RemoveWall(ctx context.Context) error {
	unlock, err := m.lock()
	if err != nil {
		return err
	}
	defer unlock()
	host, err := openNS(m.cfg.HostNS)
	if err != nil {
		return err
	}
	defer host.Close()
	if err := removeFile(m.wallPath()); err != nil {
		return err
	}
	return deleteTable(host.ns, tableWall)
}

func (m *Manager) refreshWall(host nsh) error {
	var w wallState
	if err := readJSON(m.wallPath(), &w); err != nil {
		if errors.Is(err, errNotExist) {
			return nil
		}
		return err
	}
	sts, err := m.states()
	if err != nil {
		return err
	}
	udp := slices.Clone(w.UDP)
	for _, st := range sts {
		udp = append(udp, st.Spec.WGListenPort)
	}
	return writeTable(host.ns, tableWall, wallRules(w.Outward, udp, w.TCP))
}

func defaultInterface(h *netlink.Handle) (string, error) {
	routes, err := h.RouteList(nil, netlink.FAMILY_V4)
	if err != nil {
		return "", fmt.Errorf("network: routes: %w", err)
	}
	for _, r := range routes {
		if r.Dst == nil || r.Dst.IP.IsUnspecified() {
			l, err := h.LinkByIndex(r.LinkIndex)
			if err != nil {
				return "", fmt.Errorf("network: default route link: %w", err)
			}
			return l.Attrs().Name, nil
		}
	}
	return "", errors.New("network: no default route: name the outward interface")
}

// waitGone polls until check reports true or ctx ends.
func waitGone(ctx context.Context, check func() bool) error {
	t := time.NewTicker(20 * time.Millisecond)
	defer t.Stop()
	for !check() {
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-t.C:
		}
	}
	return nil
}
