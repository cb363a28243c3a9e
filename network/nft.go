package network

import (
	"encoding/binary"
	"fmt"
	"net/netip"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Table names this package owns in the namespaces it touches.
const (
	tableNet  = "zos"      // per-network namespace and DMZ: NAT and the diode
	tableHost = "zos-dmz"  // host: NAT of the DMZ and no way from the DMZ to the host
	tableWall = "zos-wall" // host: the network wall on the outward interface
	tableYgg  = "zos-ygg"  // host: overlay workloads reach the overlay and nothing else
)

// rule is a list of expressions ending in a verdict.
type rule []expr.Any

// chainSpec is a base chain and its rules.
type chainSpec struct {
	name  string
	typ   nftables.ChainType
	hook  *nftables.ChainHook
	prio  *nftables.ChainPriority
	rules []rule
}

// writeTable atomically replaces the inet table name in ns with chains.
func writeTable(ns netns.NsHandle, name string, chains []chainSpec) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("network: nftables: %w", err)
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: name}
	// Add then delete: the delete cannot fail on a missing table, and the
	// whole batch applies atomically.
	c.AddTable(t)
	c.DelTable(t)
	c.AddTable(t)
	for _, cs := range chains {
		policy := nftables.ChainPolicyAccept
		ch := c.AddChain(&nftables.Chain{Name: cs.name, Table: t, Type: cs.typ, Hooknum: cs.hook, Priority: cs.prio, Policy: &policy})
		for _, r := range cs.rules {
			c.AddRule(&nftables.Rule{Table: t, Chain: ch, Exprs: r})
		}
	}
	if err := c.Flush(); err != nil {
		return fmt.Errorf("network: nftables table %s: %w", name, err)
	}
	return nil
}

// deleteTable removes the inet table name from ns if it exists.
func deleteTable(ns netns.NsHandle, name string) error {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return fmt.Errorf("network: nftables: %w", err)
	}
	defer c.CloseLasting()
	t := &nftables.Table{Family: nftables.TableFamilyINet, Name: name}
	c.AddTable(t)
	c.DelTable(t)
	if err := c.Flush(); err != nil {
		return fmt.Errorf("network: nftables delete %s: %w", name, err)
	}
	return nil
}

// hasTable reports whether the inet table name exists in ns.
func hasTable(ns netns.NsHandle, name string) (bool, error) {
	c, err := nftables.New(nftables.WithNetNSFd(int(ns)))
	if err != nil {
		return false, fmt.Errorf("network: nftables: %w", err)
	}
	defer c.CloseLasting()
	ts, err := c.ListTablesOfFamily(nftables.TableFamilyINet)
	if err != nil {
		return false, fmt.Errorf("network: nftables list: %w", err)
	}
	for _, t := range ts {
		if t.Name == name {
			return true, nil
		}
	}
	return false, nil
}

func ifnameData(name string) []byte {
	b := make([]byte, unix.IFNAMSIZ)
	copy(b, name)
	return b
}

func iif(name string) rule {
	return rule{
		&expr.Meta{Key: expr.MetaKeyIIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(name)},
	}
}

func oif(name string) rule {
	return rule{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: ifnameData(name)},
	}
}

func ctEstablished() rule {
	mask := make([]byte, 4)
	binary.NativeEndian.PutUint32(mask, expr.CtStateBitESTABLISHED|expr.CtStateBitRELATED)
	return rule{
		&expr.Ct{Register: 1, Key: expr.CtKeySTATE},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 4, Mask: mask, Xor: []byte{0, 0, 0, 0}},
		&expr.Cmp{Op: expr.CmpOpNeq, Register: 1, Data: []byte{0, 0, 0, 0}},
	}
}

func dport(proto byte, port uint16) rule {
	p := make([]byte, 2)
	binary.BigEndian.PutUint16(p, port)
	return rule{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{proto}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseTransportHeader, Offset: 2, Len: 2},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: p},
	}
}

func saddr4(a netip.Addr) rule {
	b := a.As4()
	return rule{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV4}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 12, Len: 4},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: b[:]},
	}
}

var (
	accept = &expr.Verdict{Kind: expr.VerdictAccept}
	drop   = &expr.Verdict{Kind: expr.VerdictDrop}
	masq   = &expr.Masq{}
)

func join(parts ...any) rule {
	var r rule
	for _, p := range parts {
		switch v := p.(type) {
		case rule:
			r = append(r, v...)
		case expr.Any:
			r = append(r, v)
		}
	}
	return r
}

func natChain(rules ...rule) chainSpec {
	return chainSpec{name: "postrouting", typ: nftables.ChainTypeNAT, hook: nftables.ChainHookPostrouting, prio: nftables.ChainPriorityNATSource, rules: rules}
}

func filterChain(name string, hook *nftables.ChainHook, rules ...rule) chainSpec {
	return chainSpec{name: name, typ: nftables.ChainTypeFilter, hook: hook, prio: nftables.ChainPriorityFilter, rules: rules}
}

// diode lets traffic out of iface and only answers back in: nothing new
// enters through iface, neither to this namespace nor through it.
func diode(iface string) []chainSpec {
	return []chainSpec{
		filterChain("input", nftables.ChainHookInput, join(iif(iface), ctEstablished(), accept), join(iif(iface), drop)),
		filterChain("forward", nftables.ChainHookForward, join(iif(iface), ctEstablished(), accept), join(iif(iface), drop)),
	}
}

// netRules are the rules of a network namespace: masquerade out of its DMZ
// link and accept nothing new from it.
func netRules() []chainSpec {
	return append(diode(linkPublic), natChain(join(oif(linkPublic), masq)))
}

// dmzRules are the rules of the DMZ: masquerade out of the uplink; nothing
// new from the networks reaches the DMZ itself, and nothing new from the
// host side reaches the networks.
func dmzRules() []chainSpec {
	return []chainSpec{
		filterChain("input", nftables.ChainHookInput, join(iif(linkDMZBridge), ctEstablished(), accept), join(iif(linkDMZBridge), drop)),
		filterChain("forward", nftables.ChainHookForward, join(iif(linkUplink), ctEstablished(), accept), join(iif(linkUplink), drop)),
		natChain(join(oif(linkUplink), masq)),
	}
}

// hostRules are the host's rules for the DMZ: masquerade what comes from it,
// and let nothing from it reach the host's own addresses.
func hostRules() []chainSpec {
	return []chainSpec{
		filterChain("input", nftables.ChainHookInput, join(iif(linkHostDMZ), ctEstablished(), accept), join(iif(linkHostDMZ), drop)),
		filterChain("forward", nftables.ChainHookForward, join(oif(linkHostDMZ), ctEstablished(), accept), join(oif(linkHostDMZ), drop)),
		natChain(join(saddr4(uplinkDMZ.Addr()), masq)),
	}
}

// icmpv6 matches ICMPv6: IPv6 needs neighbour discovery to work at all,
// and conntrack does not see those messages as part of a connection.
func icmpv6() rule {
	return rule{
		&expr.Meta{Key: expr.MetaKeyL4PROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.IPPROTO_ICMPV6}},
	}
}

// wallRules drop every new inbound connection on the outward interface
// except the given UDP and TCP ports (and ICMPv6, which IPv6 needs).
func wallRules(outward string, udp, tcp []uint16) []chainSpec {
	in := []rule{join(iif(outward), ctEstablished(), accept), join(iif(outward), icmpv6(), accept)}
	for _, p := range udp {
		in = append(in, join(iif(outward), dport(unix.IPPROTO_UDP, p), accept))
	}
	for _, p := range tcp {
		in = append(in, join(iif(outward), dport(unix.IPPROTO_TCP, p), accept))
	}
	in = append(in, join(iif(outward), drop))
	return []chainSpec{
		filterChain("input", nftables.ChainHookInput, in...),
		filterChain("forward", nftables.ChainHookForward, join(iif(outward), ctEstablished(), accept), join(iif(outward), drop)),
	}
}

// daddrInOverlay matches IPv6 packets to 200::/7.
func daddrInOverlay() rule {
	return rule{
		&expr.Meta{Key: expr.MetaKeyNFPROTO, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{unix.NFPROTO_IPV6}},
		&expr.Payload{DestRegister: 1, Base: expr.PayloadBaseNetworkHeader, Offset: 24, Len: 1},
		&expr.Bitwise{SourceRegister: 1, DestRegister: 1, Len: 1, Mask: []byte{0xfe}, Xor: []byte{0}},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: []byte{0x02}},
	}
}

// overlayRules confine workloads on the overlay bridge: they may talk to
// the overlay (forwarded to the overlay TUN) and answer, nothing else; in
// particular nothing new reaches the host itself.
func overlayRules() []chainSpec {
	return []chainSpec{
		filterChain("input", nftables.ChainHookInput,
			join(iif(linkOverlayBridge), ctEstablished(), accept),
			join(iif(linkOverlayBridge), icmpv6(), accept),
			join(iif(linkOverlayBridge), drop)),
		filterChain("forward", nftables.ChainHookForward,
			join(iif(linkOverlayBridge), daddrInOverlay(), accept),
			join(iif(linkOverlayBridge), drop)),
	}
}
