package network

import (
	"encoding/json"
	"errors"
	"net/netip"
	"strings"
	"testing"

	"github.com/zosgrid/zos/network/wg"
)

func testKey(t testing.TB) wg.PrivateKey {
	t.Helper()
	k, err := wg.GeneratePrivateKey()
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func validSpec(t testing.TB) Spec {
	peer := testKey(t).Public()
	return Spec{
		Name:         "net1",
		IPRange:      netip.MustParsePrefix("10.20.0.0/16"),
		Subnet:       netip.MustParsePrefix("10.20.1.0/24"),
		WGPrivateKey: testKey(t),
		WGListenPort: 51820,
		Peers: []Peer{{
			Subnet:      netip.MustParsePrefix("10.20.2.0/24"),
			WGPublicKey: peer,
			AllowedIPs:  []netip.Prefix{netip.MustParsePrefix("10.20.2.0/24"), netip.MustParsePrefix("100.64.20.2/32")},
			Endpoint:    netip.MustParseAddrPort("192.0.2.1:51820"),
		}},
	}
}

func TestSpecRoundTrip(t *testing.T) {
	s := validSpec(t)
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	for _, field := range []string{`"ip_range":"10.20.0.0/16"`, `"wireguard_listen_port":51820`, `"endpoint":"192.0.2.1:51820"`} {
		if !strings.Contains(string(b), field) {
			t.Errorf("JSON lacks %s: %s", field, b)
		}
	}
	got, err := ParseSpec(b)
	if err != nil {
		t.Fatal(err)
	}
	if got.WGPrivateKey.Public() != s.WGPrivateKey.Public() || got.Subnet != s.Subnet || len(got.Peers) != 1 || got.Peers[0].Endpoint != s.Peers[0].Endpoint {
		t.Fatalf("round trip changed the spec: %+v", got)
	}
	// A hidden peer has no endpoint and the field is left out.
	s.Peers[0].Endpoint = netip.AddrPort{}
	b, _ = json.Marshal(s)
	if strings.Contains(string(b), "endpoint") {
		t.Errorf("empty endpoint written: %s", b)
	}
	if _, err := ParseSpec(b); err != nil {
		t.Fatal(err)
	}
}

func TestSpecValidate(t *testing.T) {
	own := func(s *Spec) wg.PublicKey { return s.WGPrivateKey.Public() }
	cases := map[string]func(s *Spec){
		"bad name":             func(s *Spec) { s.Name = "Net_1" },
		"empty name":           func(s *Spec) { s.Name = "" },
		"range not /16":        func(s *Spec) { s.IPRange = netip.MustParsePrefix("10.20.0.0/15") },
		"range not masked":     func(s *Spec) { s.IPRange = netip.MustParsePrefix("10.20.1.0/16") },
		"range ipv6":           func(s *Spec) { s.IPRange = netip.MustParsePrefix("fd00::/16") },
		"range internal":       func(s *Spec) { s.IPRange = netip.MustParsePrefix("100.127.0.0/16") },
		"subnet outside range": func(s *Spec) { s.Subnet = netip.MustParsePrefix("10.21.1.0/24") },
		"subnet not /24":       func(s *Spec) { s.Subnet = netip.MustParsePrefix("10.20.1.0/25") },
		"no key":               func(s *Spec) { s.WGPrivateKey = wg.PrivateKey{} },
		"no port":              func(s *Spec) { s.WGListenPort = 0 },
		"peer own key":         func(s *Spec) { s.Peers[0].WGPublicKey = own(s) },
		"peer no key":          func(s *Spec) { s.Peers[0].WGPublicKey = wg.PublicKey{} },
		"peer overlaps us":     func(s *Spec) { s.Peers[0].Subnet = s.Subnet; s.Peers[0].AllowedIPs = []netip.Prefix{s.Subnet} },
		"peer allowed outside": func(s *Spec) {
			s.Peers[0].AllowedIPs = append(s.Peers[0].AllowedIPs, netip.MustParsePrefix("0.0.0.0/0"))
		},
		"peer lacks subnet":    func(s *Spec) { s.Peers[0].AllowedIPs = s.Peers[0].AllowedIPs[1:] },
		"peer endpoint port 0": func(s *Spec) { s.Peers[0].Endpoint = netip.MustParseAddrPort("192.0.2.1:0") },
		"duplicate peer": func(s *Spec) {
			p := s.Peers[0]
			p.Subnet = netip.MustParsePrefix("10.20.3.0/24")
			p.AllowedIPs = []netip.Prefix{p.Subnet}
			s.Peers = append(s.Peers, p)
		},
		"overlapping peers": func(s *Spec) {
			s.Peers = append(s.Peers, Peer{Subnet: netip.MustParsePrefix("10.20.2.0/24"), WGPublicKey: testKey(t).Public(),
				AllowedIPs: []netip.Prefix{netip.MustParsePrefix("10.20.2.0/24")}})
		},
	}
	if err := validSpec(t).Validate(); err != nil {
		t.Fatalf("valid spec rejected: %v", err)
	}
	for name, mutate := range cases {
		t.Run(name, func(t *testing.T) {
			s := validSpec(t)
			mutate(&s)
			err := s.Validate()
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("got %v, want ErrInvalidSpec", err)
			}
		})
	}
}

func TestParseSpecRejects(t *testing.T) {
	good, _ := json.Marshal(validSpec(t))
	for name, in := range map[string]string{
		"unknown field": strings.Replace(string(good), `"name"`, `"nmae":"x","name"`, 1),
		"trailing":      string(good) + `{}`,
		"bad key":       strings.Replace(string(good), `"wireguard_private_key":"`, `"wireguard_private_key":"!!`, 1),
		"not json":      "name: x",
	} {
		if _, err := ParseSpec([]byte(in)); !errors.Is(err, ErrInvalidSpec) {
			t.Errorf("%s: got %v, want ErrInvalidSpec", name, err)
		}
	}
}

func TestAddresses(t *testing.T) {
	sub := netip.MustParsePrefix("10.20.7.0/24")
	if got := WGAddress(sub).String(); got != "100.64.20.7/16" {
		t.Errorf("WGAddress = %s", got)
	}
	if got := Gateway(sub).String(); got != "10.20.7.1" {
		t.Errorf("Gateway = %s", got)
	}
	if ID("a") == ID("b") || len(ID("a")) != 8 {
		t.Errorf("ID not distinct or not 8 hex digits: %s %s", ID("a"), ID("b"))
	}
}

func FuzzParseSpec(f *testing.F) {
	good, _ := json.Marshal(validSpec(f))
	f.Add(good)
	f.Add([]byte(`{"name":"x"}`))
	f.Add([]byte(`{"name":"n","ip_range":"10.0.0.0/16","subnet":"10.0.1.0/24","peers":[{"subnet":"10.0.2.0/24"}]}`))
	f.Fuzz(func(t *testing.T, b []byte) {
		s, err := ParseSpec(b)
		if err != nil {
			if !errors.Is(err, ErrInvalidSpec) {
				t.Fatalf("error not ErrInvalidSpec: %v", err)
			}
			return
		}
		// Whatever parses must validate and survive a round trip.
		out, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := ParseSpec(out); err != nil {
			t.Fatalf("re-parse of %s: %v", out, err)
		}
	})
}
