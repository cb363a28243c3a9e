package network

import (
	"context"
	"fmt"
	"net/netip"
	"strings"

	"github.com/zosgrid/zos/network/wg"
)

// Access is a WireGuard client configuration for a user's machine (a
// laptop) that joins a network through this node, and the peer entry that
// the network's spec on this node needs to let it in.
type Access struct {
	// Config is a wg-quick configuration file for the client. It holds the
	// client's new private key.
	Config string `json:"config"`
	// Peer is the entry to add to this node's spec (other nodes route the
	// client's subnet through this node).
	Peer Peer `json:"peer"`
}

// AccessConfig makes a client configuration for the applied network name:
// the client gets subnet (a /24 of the network no node uses) and reaches the
// whole network through this node at endpoint, its public address.
func (m *Manager) AccessConfig(ctx context.Context, name string, subnet netip.Prefix, endpoint netip.AddrPort) (Access, error) {
	st, err := m.load(name)
	if err != nil {
		return Access{}, err
	}
	s := st.Spec
	if !endpoint.IsValid() || endpoint.Port() == 0 {
		return Access{}, fmt.Errorf("%w: endpoint %s: want the node's public ip:port", ErrInvalidSpec, endpoint)
	}
	if endpoint.Port() != s.WGListenPort {
		return Access{}, fmt.Errorf("%w: endpoint port %d is not the network's port %d", ErrInvalidSpec, endpoint.Port(), s.WGListenPort)
	}
	key, err := wg.GeneratePrivateKey()
	if err != nil {
		return Access{}, err
	}
	peer := Peer{Subnet: subnet, WGPublicKey: key.Public(), AllowedIPs: []netip.Prefix{subnet}}
	// The new peer must fit the spec: reuse its validation.
	s.Peers = append(append([]Peer{}, s.Peers...), peer)
	if err := s.Validate(); err != nil {
		return Access{}, fmt.Errorf("client subnet %s: %w", subnet, err)
	}
	keyText, _ := key.MarshalText()
	var b strings.Builder
	fmt.Fprintf(&b, "[Interface]\n")
	fmt.Fprintf(&b, "PrivateKey = %s\n", keyText)
	fmt.Fprintf(&b, "Address = %s/32\n", Gateway(subnet))
	fmt.Fprintf(&b, "\n[Peer]\n")
	fmt.Fprintf(&b, "PublicKey = %s\n", st.Spec.WGPrivateKey.Public())
	fmt.Fprintf(&b, "AllowedIPs = %s, %s\n", s.IPRange, WGAddress(s.Subnet).Addr())
	fmt.Fprintf(&b, "Endpoint = %s\n", endpoint)
	fmt.Fprintf(&b, "PersistentKeepalive = 25\n")
	return Access{Config: b.String(), Peer: peer}, nil
}
