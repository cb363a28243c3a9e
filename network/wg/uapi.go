package wg

import (
	"bufio"
	"context"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"net"
	"net/netip"
	"slices"
	"strconv"
	"strings"
	"time"
)

// ErrUAPI is returned when a device's UAPI answer is malformed or reports an error.
var ErrUAPI = errors.New("wg: uapi")

// Peer is the wanted configuration of one peer.
type Peer struct {
	PublicKey  PublicKey
	Endpoint   netip.AddrPort // zero: the peer has no known endpoint (it dials us)
	AllowedIPs []netip.Prefix
	Keepalive  int // persistent keepalive in seconds, 0 = off
}

// Config is the wanted configuration of a device.
type Config struct {
	PrivateKey PrivateKey
	ListenPort uint16
	Peers      []Peer
}

// PeerStatus is what a device reports about one peer.
type PeerStatus struct {
	PublicKey     PublicKey      `json:"public_key"`
	Endpoint      netip.AddrPort `json:"endpoint"`
	AllowedIPs    []netip.Prefix `json:"allowed_ips"`
	Keepalive     int            `json:"keepalive"`
	LastHandshake time.Time      `json:"last_handshake"`
	RxBytes       uint64         `json:"rx_bytes"`
	TxBytes       uint64         `json:"tx_bytes"`
}

// Status is what a device reports.
type Status struct {
	PublicKey  PublicKey    `json:"public_key"`
	ListenPort uint16       `json:"listen_port"`
	Peers      []PeerStatus `json:"peers"`

	privateKey PrivateKey
}

// Client talks to a device's UAPI socket.
type Client struct{ Socket string }

func (c Client) roundTrip(ctx context.Context, req string) (string, error) {
	var d net.Dialer
	conn, err := d.DialContext(ctx, "unix", c.Socket)
	if err != nil {
		return "", fmt.Errorf("%w: dial %s: %w", ErrUAPI, c.Socket, err)
	}
	defer conn.Close()
	if dl, ok := ctx.Deadline(); ok {
		conn.SetDeadline(dl)
	} else {
		conn.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if _, err := io.WriteString(conn, req); err != nil {
		return "", fmt.Errorf("%w: write: %w", ErrUAPI, err)
	}
	var b strings.Builder
	r := bufio.NewReader(conn)
	for {
		line, err := r.ReadString('\n')
		if err != nil {
			return "", fmt.Errorf("%w: read: %w", ErrUAPI, err)
		}
		if line == "\n" {
			return b.String(), nil
		}
		b.WriteString(line)
	}
}

// Get reads the device's state.
func (c Client) Get(ctx context.Context) (Status, error) {
	out, err := c.roundTrip(ctx, "get=1\n\n")
	if err != nil {
		return Status{}, err
	}
	return ParseStatus(out)
}

// set sends a set operation made of the given lines.
func (c Client) set(ctx context.Context, lines []string) error {
	if len(lines) == 0 {
		return nil
	}
	out, err := c.roundTrip(ctx, "set=1\n"+strings.Join(lines, "\n")+"\n\n")
	if err != nil {
		return err
	}
	if strings.TrimSpace(out) != "errno=0" {
		return fmt.Errorf("%w: set: %s", ErrUAPI, strings.TrimSpace(out))
	}
	return nil
}

// Configure brings the device to cfg, touching only what differs: peers that
// are unchanged keep their sessions, removed peers are removed, changed
// peers are updated in place.
func (c Client) Configure(ctx context.Context, cfg Config) error {
	cur, err := c.Get(ctx)
	if err != nil {
		return err
	}
	return c.set(ctx, diff(cur, cfg))
}

// diff returns the UAPI set lines that turn cur into want.
func diff(cur Status, want Config) []string {
	var lines []string
	if cur.privateKey.k != want.PrivateKey.k {
		lines = append(lines, "private_key="+want.PrivateKey.hex())
	}
	if cur.ListenPort != want.ListenPort {
		lines = append(lines, "listen_port="+strconv.Itoa(int(want.ListenPort)))
	}
	have := map[PublicKey]PeerStatus{}
	for _, p := range cur.Peers {
		have[p.PublicKey] = p
	}
	wanted := map[PublicKey]bool{}
	for _, p := range want.Peers {
		wanted[p.PublicKey] = true
	}
	for _, p := range cur.Peers {
		if !wanted[p.PublicKey] {
			lines = append(lines, "public_key="+p.PublicKey.hex(), "remove=true")
		}
	}
	for _, p := range want.Peers {
		old, exists := have[p.PublicKey]
		if exists && samePeer(old, p) {
			continue
		}
		lines = append(lines, "public_key="+p.PublicKey.hex())
		if p.Endpoint.IsValid() {
			lines = append(lines, "endpoint="+p.Endpoint.String())
		}
		lines = append(lines, "persistent_keepalive_interval="+strconv.Itoa(p.Keepalive))
		lines = append(lines, "replace_allowed_ips=true")
		for _, a := range p.AllowedIPs {
			lines = append(lines, "allowed_ip="+a.String())
		}
	}
	return lines
}

func samePeer(old PeerStatus, p Peer) bool {
	if p.Endpoint.IsValid() && old.Endpoint != p.Endpoint {
		return false
	}
	if old.Keepalive != p.Keepalive {
		return false
	}
	a := slices.Clone(old.AllowedIPs)
	b := slices.Clone(p.AllowedIPs)
	cmp := func(x, y netip.Prefix) int { return strings.Compare(x.String(), y.String()) }
	slices.SortFunc(a, cmp)
	slices.SortFunc(b, cmp)
	return slices.Equal(a, b)
}

// ParseStatus parses the answer to a UAPI get. The device is a separate
// process, so its answer is checked rather than trusted.
func ParseStatus(s string) (Status, error) {
	var st Status
	var peer *PeerStatus
	var hsSec, hsNsec int64
	flush := func() {
		if peer != nil {
			if hsSec != 0 || hsNsec != 0 {
				peer.LastHandshake = time.Unix(hsSec, hsNsec)
			}
			st.Peers = append(st.Peers, *peer)
		}
		peer, hsSec, hsNsec = nil, 0, 0
	}
	for n, line := range strings.Split(s, "\n") {
		if line == "" {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok {
			return Status{}, fmt.Errorf("%w: line %d: no '='", ErrUAPI, n+1)
		}
		bad := func(err error) (Status, error) {
			return Status{}, fmt.Errorf("%w: line %d (%s): %w", ErrUAPI, n+1, k, err)
		}
		switch k {
		case "errno":
			if v != "0" {
				return Status{}, fmt.Errorf("%w: errno %s", ErrUAPI, v)
			}
		case "private_key":
			b, err := hexKey(v)
			if err != nil {
				return bad(err)
			}
			st.privateKey.k = b
			st.PublicKey = st.privateKey.Public()
		case "listen_port":
			p, err := strconv.ParseUint(v, 10, 16)
			if err != nil {
				return bad(err)
			}
			st.ListenPort = uint16(p)
		case "fwmark":
		case "public_key":
			flush()
			b, err := hexKey(v)
			if err != nil {
				return bad(err)
			}
			peer = &PeerStatus{PublicKey: b}
		default:
			if peer == nil {
				return bad(errors.New("peer field before public_key"))
			}
			var err error
			switch k {
			case "endpoint":
				peer.Endpoint, err = netip.ParseAddrPort(v)
			case "allowed_ip":
				var p netip.Prefix
				p, err = netip.ParsePrefix(v)
				peer.AllowedIPs = append(peer.AllowedIPs, p)
			case "persistent_keepalive_interval":
				peer.Keepalive, err = strconv.Atoi(v)
			case "last_handshake_time_sec":
				hsSec, err = strconv.ParseInt(v, 10, 64)
			case "last_handshake_time_nsec":
				hsNsec, err = strconv.ParseInt(v, 10, 64)
			case "rx_bytes":
				peer.RxBytes, err = strconv.ParseUint(v, 10, 64)
			case "tx_bytes":
				peer.TxBytes, err = strconv.ParseUint(v, 10, 64)
			case "preshared_key", "protocol_version":
			default:
				// Newer devices may add fields; ignore them.
			}
			if err != nil {
				return bad(err)
			}
		}
	}
	flush()
	return st, nil
}

func hexKey(v string) ([KeySize]byte, error) {
	var k [KeySize]byte
	b, err := hex.DecodeString(v)
	if err != nil || len(b) != KeySize {
		return k, fmt.Errorf("%w: bad hex key", ErrKey)
	}
	copy(k[:], b)
	return k, nil
}
