package wg

import (
	"errors"
	"net/netip"
	"strings"
	"testing"
	"time"
)

func genKey(t testing.TB) PrivateKey {
	t.Helper()
	k, err := GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func TestKeyText(t *testing.T) {
	k := genKey(t)
	txt, _ := k.MarshalText()
	var back PrivateKey
	if err := back.UnmarshalText(txt); err != nil {
		t.Fatal(err)
	}
	if back.Public() != k.Public() {
		t.Fatal("private key text round trip changed the key")
	}
	pub, err := ParsePublicKey(k.Public().String())
	if err != nil || pub != k.Public() {
		t.Fatalf("public key round trip: %v", err)
	}
	for _, bad := range []string{"", "abc", strings.Repeat("A", 43) + "=x"} {
		if _, err := ParsePublicKey(bad); !errors.Is(err, ErrKey) {
			t.Errorf("ParsePublicKey(%q) = %v, want ErrKey", bad, err)
		}
	}
}

func TestParseStatus(t *testing.T) {
	k := genKey(t)
	p := genKey(t).Public()
	in := "private_key=" + k.hex() + "\nlisten_port=51820\npublic_key=" + p.hex() +
		"\nendpoint=192.0.2.1:51820\nlast_handshake_time_sec=1700000000\nlast_handshake_time_nsec=5\n" +
		"tx_bytes=10\nrx_bytes=20\npersistent_keepalive_interval=20\nallowed_ip=10.1.2.0/24\nallowed_ip=10.1.3.0/24\nprotocol_version=1\nerrno=0\n"
	st, err := ParseStatus(in)
	if err != nil {
		t.Fatal(err)
	}
	if st.PublicKey != k.Public() || st.ListenPort != 51820 || len(st.Peers) != 1 {
		t.Fatalf("status = %+v", st)
	}
	ps := st.Peers[0]
	if ps.PublicKey != p || ps.RxBytes != 20 || ps.TxBytes != 10 || ps.Keepalive != 20 || len(ps.AllowedIPs) != 2 ||
		!ps.LastHandshake.Equal(time.Unix(1700000000, 5)) || ps.Endpoint.String() != "192.0.2.1:51820" {
		t.Fatalf("peer = %+v", ps)
	}
	for _, bad := range []string{"listen_port=x", "endpoint=1.2.3.4:5", "public_key=zz", "errno=22", "junk"} {
		if _, err := ParseStatus(bad); !errors.Is(err, ErrUAPI) && !errors.Is(err, ErrKey) {
			t.Errorf("ParseStatus(%q) = %v, want an error", bad, err)
		}
	}
}

func TestDiffTouchesOnlyChanges(t *testing.T) {
	k := genKey(t)
	a, b, c := genKey(t).Public(), genKey(t).Public(), genKey(t).Public()
	pa := Peer{PublicKey: a, Endpoint: netip.MustParseAddrPort("192.0.2.1:1"), AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.1.0/24")}, Keepalive: 20}
	pb := Peer{PublicKey: b, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.2.0/24")}}
	cur := Status{privateKey: k, ListenPort: 1, Peers: []PeerStatus{
		{PublicKey: a, Endpoint: pa.Endpoint, AllowedIPs: pa.AllowedIPs, Keepalive: 20},
		{PublicKey: b, AllowedIPs: pb.AllowedIPs, Endpoint: netip.MustParseAddrPort("198.51.100.7:9")}, // roamed
	}}
	// Same config: nothing to send, even though b roamed.
	if lines := diff(cur, Config{PrivateKey: k, ListenPort: 1, Peers: []Peer{pa, pb}}); len(lines) != 0 {
		t.Fatalf("unchanged config produced %q", lines)
	}
	// b leaves, c joins: a is not mentioned.
	pc := Peer{PublicKey: c, AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.0.3.0/24")}}
	lines := strings.Join(diff(cur, Config{PrivateKey: k, ListenPort: 1, Peers: []Peer{pa, pc}}), "\n")
	if strings.Contains(lines, a.hex()) {
		t.Errorf("unchanged peer a touched:\n%s", lines)
	}
	if !strings.Contains(lines, "public_key="+b.hex()+"\nremove=true") {
		t.Errorf("peer b not removed:\n%s", lines)
	}
	if !strings.Contains(lines, "public_key="+c.hex()) || !strings.Contains(lines, "allowed_ip=10.0.3.0/24") {
		t.Errorf("peer c not added:\n%s", lines)
	}
	if strings.Contains(lines, "private_key") || strings.Contains(lines, "listen_port") {
		t.Errorf("device fields touched:\n%s", lines)
	}
}

func FuzzParseStatus(f *testing.F) {
	f.Add("private_key=" + strings.Repeat("ab", 32) + "\nlisten_port=1\npublic_key=" + strings.Repeat("cd", 32) + "\nallowed_ip=10.0.0.0/8\nerrno=0\n")
	f.Add("errno=0\n")
	f.Add("public_key=00\n")
	f.Fuzz(func(t *testing.T, s string) {
		st, err := ParseStatus(s)
		if err != nil {
			return
		}
		for _, p := range st.Peers {
			for _, a := range p.AllowedIPs {
				if !a.IsValid() {
					t.Fatalf("invalid allowed ip accepted from %q", s)
				}
			}
		}
	})
}
