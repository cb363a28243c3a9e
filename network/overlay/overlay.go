package overlay

import (
	"crypto/ed25519"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/hex"
	"errors"
	"fmt"
	"log/slog"
	"math/big"
	"net/netip"
	"net/url"
	"regexp"
	"time"

	"github.com/yggdrasil-network/yggdrasil-go/src/address"
	"github.com/yggdrasil-network/yggdrasil-go/src/core"
	"github.com/yggdrasil-network/yggdrasil-go/src/ipv6rwc"
	"github.com/yggdrasil-network/yggdrasil-go/src/multicast"
	"github.com/yggdrasil-network/yggdrasil-go/src/tun"

	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/network/internal/netnsx"
)

// DefaultTun is the name of the overlay interface in the host namespace.
const DefaultTun = "zygg0"

// Prefix is the overlay's address range.
var Prefix = netip.MustParsePrefix("200::/7")

// Config of an overlay node.
type Config struct {
	// Key is the node identity; the overlay address derives from it.
	Key key.Private
	// HostNS is the namespace path for the TUN and listeners ("" = ours).
	HostNS string
	// Listen are URIs to accept peerings on, e.g. tcp://0.0.0.0:9943.
	Listen []string
	// Peers are URIs to peer with (tcp://, tls://, quic://, unix://).
	Peers []string
	// Discover lists regular expressions of interface names on which to find
	// peers on the local link (multicast beacons to ff02::114, UDP 9001) and
	// accept them on DiscoverPort (0 = any port).
	Discover     []string
	DiscoverPort uint16
	// TunName defaults to DefaultTun; MTU to 65535.
	TunName string
	MTU     uint64
	Logger  *slog.Logger
}

// Node is a running overlay node.
type Node struct {
	core      *core.Core
	multicast *multicast.Multicast
	tun       *tun.TunAdapter
	listeners []*core.Listener
}

// AddressForKey is the overlay address of a node key.
func AddressForKey(pub key.Public) netip.Addr {
	a := address.AddrForKey(ed25519.PublicKey(pub[:]))
	return netip.AddrFrom16(*a)
}

// SubnetForKey is the /64 routed to a node key.
func SubnetForKey(pub key.Public) netip.Prefix {
	s := address.SubnetForKey(ed25519.PublicKey(pub[:]))
	var b [16]byte
	copy(b[:], s[:])
	return netip.PrefixFrom(netip.AddrFrom16(b), 64)
}

// Start runs an overlay node.
func Start(cfg Config) (*Node, error) {
	if cfg.Key.IsZero() {
		return nil, errors.New("overlay: no node key")
	}
	if cfg.TunName == "" {
		cfg.TunName = DefaultTun
	}
	if cfg.MTU == 0 {
		cfg.MTU = 65535
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	cert, err := certificate(cfg.Key)
	if err != nil {
		return nil, err
	}
	var mopts []multicast.SetupOption
	for _, d := range cfg.Discover {
		re, err := regexp.Compile(d)
		if err != nil {
			return nil, fmt.Errorf("overlay: discover %q: %w", d, err)
		}
		mopts = append(mopts, multicast.MulticastInterface{Regex: re, Beacon: true, Listen: true, Port: cfg.DiscoverPort})
	}
	opts := []core.SetupOption{
		// Never peer over the overlay itself.
		core.PeerFilter(func(ip netIP) bool { return !Prefix.Contains(addrOf(ip)) }),
	}
	for _, p := range cfg.Peers {
		if _, err := url.Parse(p); err != nil {
			return nil, fmt.Errorf("overlay: peer %q: %w", p, err)
		}
		opts = append(opts, core.Peer{URI: p})
	}
	c, err := core.New(cert, logger{log.With("component", "overlay")}, opts...)
	if err != nil {
		return nil, fmt.Errorf("overlay: start core: %w", err)
	}
	n := &Node{core: c}
	err = netnsx.Do(cfg.HostNS, func() error {
		for _, l := range cfg.Listen {
			u, err := url.Parse(l)
			if err != nil {
				return fmt.Errorf("overlay: listen %q: %w", l, err)
			}
			li, err := c.Listen(u, "")
			if err != nil {
				return fmt.Errorf("overlay: listen %s: %w", l, err)
			}
			n.listeners = append(n.listeners, li)
		}
		rwc := ipv6rwc.NewReadWriteCloser(c)
		t, err := tun.New(rwc, logger{log.With("component", "overlay-tun")}, tun.InterfaceName(cfg.TunName), tun.InterfaceMTU(cfg.MTU))
		if err != nil {
			return fmt.Errorf("overlay: tun %s: %w", cfg.TunName, err)
		}
		n.tun = t
		return nil
	})
	if err == nil && len(mopts) > 0 {
		n.multicast, err = multicast.New(c, logger{log.With("component", "overlay-discovery")}, mopts...)
		if err != nil {
			err = fmt.Errorf("overlay: link-local discovery: %w", err)
		}
	}
	if err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// Address is the node's overlay address.
func (n *Node) Address() netip.Addr { return addrOf(n.core.Address()) }

// Subnet is the /64 routed to the node.
func (n *Node) Subnet() netip.Prefix {
	s := n.core.Subnet()
	ones, _ := s.Mask.Size()
	return netip.PrefixFrom(addrOf(s.IP), ones)
}

// MTU is the overlay interface's MTU.
func (n *Node) MTU() int { return int(n.tun.MTU()) }

// PublicKey is the node's key, in hex as Yggdrasil shows it.
func (n *Node) PublicKey() string { return hex.EncodeToString(n.core.PublicKey()) }

// ListenAddrs are the actual addresses of the listeners (ports resolved).
func (n *Node) ListenAddrs() []string {
	var out []string
	for _, l := range n.listeners {
		out = append(out, l.Addr().String())
	}
	return out
}

// Peer is a peering as the node sees it.
type Peer struct {
	URI     string        `json:"uri"`
	Up      bool          `json:"up"`
	Inbound bool          `json:"inbound"`
	Key     string        `json:"key"`
	RxBytes uint64        `json:"rx_bytes"`
	TxBytes uint64        `json:"tx_bytes"`
	Latency time.Duration `json:"latency"`
}

// Peers returns the node's peerings.
func (n *Node) Peers() []Peer {
	var out []Peer
	for _, p := range n.core.GetPeers() {
		out = append(out, Peer{URI: p.URI, Up: p.Up, Inbound: p.Inbound, Key: hex.EncodeToString(p.Key),
			RxBytes: p.RXBytes, TxBytes: p.TXBytes, Latency: p.Latency})
	}
	return out
}

// Close stops the node and removes its TUN.
func (n *Node) Close() error {
	if n.multicast != nil {
		n.multicast.Stop()
	}
	if n.tun != nil {
		n.tun.Stop()
	}
	for _, l := range n.listeners {
		l.Cancel()
	}
	n.core.Stop()
	return nil
}

// certificate wraps the node key in the self-signed certificate the core
// takes its identity from.
func certificate(k key.Private) (*tls.Certificate, error) {
	priv := ed25519.NewKeyFromSeed(k.Seed())
	pub := priv.Public().(ed25519.PublicKey)
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1),
		Subject:      pkix.Name{CommonName: hex.EncodeToString(pub)},
		NotBefore:    time.Unix(0, 0),
		NotAfter:     time.Unix(0, 0).AddDate(200, 0, 0),
		KeyUsage:     x509.KeyUsageKeyEncipherment | x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, pub, priv)
	if err != nil {
		return nil, fmt.Errorf("overlay: certificate: %w", err)
	}
	leaf, err := x509.ParseCertificate(der)
	if err != nil {
		return nil, fmt.Errorf("overlay: certificate: %w", err)
	}
	return &tls.Certificate{Certificate: [][]byte{der}, PrivateKey: priv, Leaf: leaf}, nil
}
