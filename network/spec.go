package network

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/netip"
	"regexp"
	"sync"

	"github.com/zosgrid/zos/network/wg"
)

// ErrInvalidSpec is returned for a network spec that cannot be applied.
var ErrInvalidSpec = errors.New("network: invalid spec")

// ErrNotFound is returned for a network that is not applied on this host.
var ErrNotFound = errors.New("network: not found")

// internalRange holds every address zos uses inside a node: the WireGuard
// interface addresses, the DMZ bridge and the DMZ uplink.
var internalRange = netip.MustParsePrefix("100.64.0.0/10")

// wgRange holds the WireGuard interface addresses: 100.64.a.b for the node
// whose subnet is x.a.b.0/24.
var wgRange = netip.MustParsePrefix("100.64.0.0/16")

// nameRE is compiled on first use: package init runs in every start of the
// zos binary (each container start runs it three times), and the bounded
// repetition makes a large program.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[a-z0-9][a-z0-9-]{0,30}$`) })

// Spec is the network workload: what a deployment carries for one node.
type Spec struct {
	// Name of the network, unique per host: [a-z0-9-], at most 31 bytes.
	Name string `json:"name"`
	// IPRange is the network's IPv4 /16.
	IPRange netip.Prefix `json:"ip_range"`
	// Subnet is this node's /24 inside IPRange.
	Subnet netip.Prefix `json:"subnet"`
	// WGPrivateKey is this node's WireGuard key for the network.
	WGPrivateKey wg.PrivateKey `json:"wireguard_private_key"`
	// WGListenPort is the UDP port on the host's outward interface.
	WGListenPort uint16 `json:"wireguard_listen_port"`
	// Peers are the other members this node talks to directly.
	Peers []Peer `json:"peers"`
}

// Peer is another member of the network.
type Peer struct {
	// Subnet is the peer's /24 (or, for an access client, its range).
	Subnet netip.Prefix `json:"subnet"`
	// WGPublicKey is the peer's WireGuard public key.
	WGPublicKey wg.PublicKey `json:"wireguard_public_key"`
	// AllowedIPs are routed to this peer; they must include Subnet. An access
	// node lists here the subnets of hidden nodes it forwards to.
	AllowedIPs []netip.Prefix `json:"allowed_ips"`
	// Endpoint is ip:port of the peer; empty for a hidden peer that dials us.
	Endpoint netip.AddrPort `json:"endpoint,omitzero"`
}

// ParseSpec decodes and validates a JSON spec. Unknown fields are errors,
// so a typo never silently drops a setting.
func ParseSpec(b []byte) (Spec, error) {
	var s Spec
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&s); err != nil {
		return Spec{}, fmt.Errorf("%w: %w", ErrInvalidSpec, err)
	}
	if dec.More() {
		return Spec{}, fmt.Errorf("%w: trailing data after the spec", ErrInvalidSpec)
	}
	if err := s.Validate(); err != nil {
		return Spec{}, err
	}
	return s, nil
}

// ValidateName checks a network name.
func ValidateName(name string) error {
	if !nameRE().MatchString(name) {
		return fmt.Errorf("%w: name %q: use 1-31 of [a-z0-9-], starting with a letter or digit", ErrInvalidSpec, name)
	}
	return nil
}

// Validate checks the spec without side effects.
func (s Spec) Validate() error {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: "+format, append([]any{ErrInvalidSpec}, args...)...)
	}
	if err := ValidateName(s.Name); err != nil {
		return err
	}
	if !s.IPRange.IsValid() || !s.IPRange.Addr().Is4() || s.IPRange.Bits() != 16 || s.IPRange.Masked() != s.IPRange {
		return bad("ip_range %s: want an IPv4 /16 such as 10.20.0.0/16", s.IPRange)
	}
	if !s.Subnet.IsValid() || !s.Subnet.Addr().Is4() || s.Subnet.Bits() != 24 || s.Subnet.Masked() != s.Subnet {
		return bad("subnet %s: want an IPv4 /24 such as 10.20.1.0/24", s.Subnet)
	}
	if !s.IPRange.Contains(s.Subnet.Addr()) {
		return bad("subnet %s is outside ip_range %s", s.Subnet, s.IPRange)
	}
	if s.IPRange.Overlaps(internalRange) {
		return bad("ip_range %s overlaps addresses zos uses internally (100.64.0.0/10)", s.IPRange)
	}
	if s.WGPrivateKey.IsZero() {
		return bad("wireguard_private_key is missing")
	}
	if s.WGListenPort == 0 {
		return bad("wireguard_listen_port is missing")
	}
	own := s.WGPrivateKey.Public()
	keys := map[wg.PublicKey]bool{}
	var allowed []netip.Prefix
	for i, p := range s.Peers {
		if p.WGPublicKey.IsZero() {
			return bad("peer %d: wireguard_public_key is missing", i)
		}
		if p.WGPublicKey == own {
			return bad("peer %d: has this node's own public key", i)
		}
		if keys[p.WGPublicKey] {
			return bad("peer %d: public key %s listed twice", i, p.WGPublicKey)
		}
		keys[p.WGPublicKey] = true
		if !p.Subnet.IsValid() || !p.Subnet.Addr().Is4() || p.Subnet.Masked() != p.Subnet || !s.IPRange.Contains(p.Subnet.Addr()) || p.Subnet.Bits() < 16 {
			return bad("peer %d: subnet %s must be a prefix inside ip_range %s", i, p.Subnet, s.IPRange)
		}
		if p.Subnet.Overlaps(s.Subnet) {
			return bad("peer %d: subnet %s overlaps this node's subnet %s", i, p.Subnet, s.Subnet)
		}
		hasSubnet := false
		for _, a := range p.AllowedIPs {
			if !a.IsValid() || !a.Addr().Is4() || a.Masked() != a {
				return bad("peer %d: allowed ip %s is not a masked IPv4 prefix", i, a)
			}
			if !(s.IPRange.Contains(a.Addr()) && a.Bits() >= 16) && !(wgRange.Contains(a.Addr()) && a.Bits() >= 16) {
				return bad("peer %d: allowed ip %s is outside ip_range %s and %s", i, a, s.IPRange, wgRange)
			}
			if a.Overlaps(s.Subnet) {
				return bad("peer %d: allowed ip %s overlaps this node's subnet", i, a)
			}
			for _, o := range allowed {
				if o.Overlaps(a) {
					return bad("peer %d: allowed ip %s overlaps another peer's %s", i, a, o)
				}
			}
			if a == p.Subnet {
				hasSubnet = true
			}
		}
		if !hasSubnet {
			return bad("peer %d: allowed_ips must include its subnet %s", i, p.Subnet)
		}
		allowed = append(allowed, p.AllowedIPs...)
		if p.Endpoint.IsValid() && p.Endpoint.Port() == 0 {
			return bad("peer %d: endpoint %s has no port", i, p.Endpoint)
		}
	}
	return nil
}

// ID is the short stable identifier of a network on a host; it names the
// namespace and the links of the network.
func ID(name string) string {
	h := sha256.Sum256([]byte(name))
	return hex.EncodeToString(h[:4])
}

// WGAddress is the address of a node's WireGuard interface: 100.64.a.b
// for subnet x.a.b.0/24.
func WGAddress(subnet netip.Prefix) netip.Prefix {
	b := subnet.Addr().As4()
	return netip.PrefixFrom(netip.AddrFrom4([4]byte{100, 64, b[1], b[2]}), 16)
}

// Gateway is the address of the network bridge inside subnet: x.y.z.1.
func Gateway(subnet netip.Prefix) netip.Addr {
	return subnet.Addr().Next()
}

// wgConfig turns the spec into the device configuration.
func (s Spec) wgConfig() wg.Config {
	c := wg.Config{PrivateKey: s.WGPrivateKey, ListenPort: s.WGListenPort}
	for _, p := range s.Peers {
		wp := wg.Peer{PublicKey: p.WGPublicKey, Endpoint: p.Endpoint, AllowedIPs: p.AllowedIPs}
		if p.Endpoint.IsValid() {
			// Keeps NAT mappings open so peers behind NAT stay reachable.
			wp.Keepalive = 20
		}
		c.Peers = append(c.Peers, wp)
	}
	return c
}
