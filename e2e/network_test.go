//go:build e2e

package e2e

import (
	"bytes"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/nftables"
	"github.com/google/nftables/expr"
	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/network/nettest"
)

// A small internet inside the machine: an "internet" namespace with a
// bridge, nodes A (access, public) and B (public) on it, and node C hidden
// behind a NAT router R. All names carry a random prefix and everything is
// removed when the test ends.

type networkWorld struct {
	t      *testing.T
	prefix string
	dir    string
}

func networkIP(t *testing.T, args ...string) string {
	t.Helper()
	out, err := exec.Command("ip", args...).CombinedOutput()
	if err != nil {
		t.Fatalf("ip %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

func (w *networkWorld) ns(name string) string {
	full := w.prefix + name
	del, err := nettest.Add(full)
	if err != nil {
		w.t.Fatal(err)
	}
	w.t.Cleanup(func() { del() })
	return full
}

// link connects ns a (interface an, address aa) with ns b (bn, ba); an
// empty address leaves that end without one.
func (w *networkWorld) link(a, an, aa, b, bn, ba string) {
	networkIP(w.t, "-n", a, "link", "add", an, "type", "veth", "peer", "name", bn, "netns", b)
	for _, e := range [][3]string{{a, an, aa}, {b, bn, ba}} {
		if e[2] != "" {
			networkIP(w.t, "-n", e[0], "addr", "add", e[2], "dev", e[1])
		}
		networkIP(w.t, "-n", e[0], "link", "set", e[1], "up")
	}
}

// networkEcho serves TCP and UDP echo on addr inside ns.
func networkEcho(t *testing.T, ns, addr string) {
	t.Helper()
	var ln net.Listener
	var pc net.PacketConn
	if err := nettest.Do(ns, func() (err error) {
		if ln, err = net.Listen("tcp", addr); err != nil {
			return err
		}
		pc, err = net.ListenPacket("udp", addr)
		return err
	}); err != nil {
		t.Fatal(err)
	}
	var wg sync.WaitGroup
	wg.Add(2)
	t.Cleanup(func() { ln.Close(); pc.Close(); wg.Wait() })
	go func() {
		defer wg.Done()
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(c, c); c.Close() }()
		}
	}()
	go func() {
		defer wg.Done()
		buf := make([]byte, 65536)
		for {
			n, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			pc.WriteTo(buf[:n], from)
		}
	}()
}

func networkDial(t *testing.T, ns, network, addr string, timeout time.Duration) (net.Conn, error) {
	var c net.Conn
	err := nettest.Do(ns, func() (err error) { c, err = net.DialTimeout(network, addr, timeout); return })
	return c, err
}

// networkWaitEcho waits until ns can echo msg through addr over TCP or UDP.
func networkWaitEcho(t *testing.T, ns, network, addr, msg string) {
	t.Helper()
	zostest.WaitFor(t, 40*time.Second, func() error {
		c, err := networkDial(t, ns, network, addr, 2*time.Second)
		if err != nil {
			return err
		}
		defer c.Close()
		return nettest.RoundTrip(c, msg, 3*time.Second)
	})
}

func networkBlocked(t *testing.T, ns, addr string) {
	t.Helper()
	if c, err := networkDial(t, ns, "tcp", addr, time.Second); err == nil {
		c.Close()
		t.Errorf("%s reached %s; the wall or isolation should have stopped it", ns, addr)
	}
}

// networkCapture records every frame seen in ns (on all its interfaces)
// with an AF_PACKET socket until stop is called.
func networkCapture(t *testing.T, ns string) (stop func() []byte) {
	t.Helper()
	var fd int
	if err := nettest.Do(ns, func() (err error) {
		fd, err = unix.Socket(unix.AF_PACKET, unix.SOCK_RAW, int(htons(unix.ETH_P_ALL)))
		return err
	}); err != nil {
		t.Fatal(err)
	}
	tv := unix.Timeval{Usec: 100000}
	unix.SetsockoptTimeval(fd, unix.SOL_SOCKET, unix.SO_RCVTIMEO, &tv)
	var mu sync.Mutex
	var buf bytes.Buffer
	quit := make(chan struct{})
	done := make(chan struct{})
	go func() {
		defer close(done)
		frame := make([]byte, 65536)
		for {
			flags := 0
			select {
			case <-quit:
				// Drain what the kernel already queued: frames seen before
				// stop belong to the capture even if not read yet.
				flags = unix.MSG_DONTWAIT
			default:
			}
			n, _, err := unix.Recvfrom(fd, frame, flags)
			if flags != 0 && (err != nil || n <= 0) {
				return
			}
			if err != nil || n <= 0 {
				continue
			}
			mu.Lock()
			buf.Write(frame[:n])
			mu.Unlock()
		}
	}()
	var once sync.Once
	stop = func() []byte {
		once.Do(func() { close(quit); <-done; unix.Close(fd) })
		mu.Lock()
		defer mu.Unlock()
		return bytes.Clone(buf.Bytes())
	}
	t.Cleanup(func() { stop() })
	return stop
}

func htons(v uint16) uint16 { return v<<8 | v>>8 }

// networkMasquerade makes ns a NAT router out of iface (nftables).
func networkMasquerade(t *testing.T, ns, iface string) {
	t.Helper()
	h, err := netns.GetFromName(ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	tbl := c.AddTable(&nftables.Table{Family: nftables.TableFamilyIPv4, Name: "nat"})
	ch := c.AddChain(&nftables.Chain{Name: "post", Table: tbl, Type: nftables.ChainTypeNAT,
		Hooknum: nftables.ChainHookPostrouting, Priority: nftables.ChainPriorityNATSource})
	name := make([]byte, 16)
	copy(name, iface)
	c.AddRule(&nftables.Rule{Table: tbl, Chain: ch, Exprs: []expr.Any{
		&expr.Meta{Key: expr.MetaKeyOIFNAME, Register: 1},
		&expr.Cmp{Op: expr.CmpOpEq, Register: 1, Data: name},
		&expr.Masq{},
	}})
	if err := c.Flush(); err != nil {
		t.Fatal(err)
	}
	networkIP(t, "netns", "exec", ns, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward")
}

type networkNode struct {
	name, ns, state, pub, priv string
	port                       int
	subnet                     string
}

func (n *networkNode) zos(t *testing.T, args ...string) string {
	t.Helper()
	return mustZos(t, append([]string{"network", "--host-ns", n.ns, "--prefix", n.ns + "-", "--state", n.state}, args...)...)
}

func (n *networkNode) apply(t *testing.T, spec map[string]any) {
	t.Helper()
	b, _ := json.Marshal(spec)
	f := filepath.Join(t.TempDir(), "spec.json")
	if err := os.WriteFile(f, b, 0o600); err != nil {
		t.Fatal(err)
	}
	n.zos(t, "apply", "-f", f)
}

func networkPeer(n *networkNode, endpoint bool, allowed ...string) map[string]any {
	p := map[string]any{"subnet": n.subnet, "wireguard_public_key": n.pub, "allowed_ips": append([]string{n.subnet}, allowed...)}
	if endpoint {
		p["endpoint"] = fmt.Sprintf("198.51.100.%d:%d", map[string]int{"a": 1, "b": 2}[n.name], n.port)
	}
	return p
}

func networkSpec(n *networkNode, peers ...map[string]any) map[string]any {
	return map[string]any{"name": "net1", "ip_range": "10.50.0.0/16", "subnet": n.subnet,
		"wireguard_private_key": n.priv, "wireguard_listen_port": n.port, "peers": peers}
}

func TestNetworkInternet(t *testing.T) {
	zostest.RequiresNetns(t)
	suffix := make([]byte, 3)
	rand.Read(suffix)
	w := &networkWorld{t: t, prefix: "ze" + hex.EncodeToString(suffix) + "-", dir: t.TempDir()}

	inet := w.ns("inet")
	networkIP(t, "-n", inet, "link", "add", "br0", "type", "bridge")
	networkIP(t, "-n", inet, "addr", "add", "198.51.100.254/24", "dev", "br0")
	networkIP(t, "-n", inet, "link", "set", "br0", "up")
	nodes := map[string]*networkNode{}
	for i, name := range []string{"a", "b", "c"} {
		n := &networkNode{name: name, ns: w.ns("node" + name), state: filepath.Join(w.dir, name), port: 51820 + i,
			subnet: fmt.Sprintf("10.50.%d.0/24", i+1)}
		var keys map[string]string
		if err := json.Unmarshal([]byte(mustZos(t, "network", "genkey")), &keys); err != nil {
			t.Fatal(err)
		}
		n.priv, n.pub = keys["private_key"], keys["public_key"]
		nodes[name] = n
	}
	a, b, c := nodes["a"], nodes["b"], nodes["c"]
	w.link(a.ns, "eth0", "198.51.100.1/24", inet, "pa", "")
	w.link(b.ns, "eth0", "198.51.100.2/24", inet, "pb", "")
	router := w.ns("router")
	w.link(router, "eth0", "198.51.100.3/24", inet, "pr", "")
	w.link(c.ns, "eth0", "192.168.77.2/24", router, "lan0", "192.168.77.1/24")
	for _, p := range []string{"pa", "pb", "pr"} {
		networkIP(t, "-n", inet, "link", "set", p, "master", "br0")
	}
	for _, n := range []string{a.ns, b.ns, router} {
		networkIP(t, "-n", n, "route", "add", "default", "via", "198.51.100.254")
	}
	networkIP(t, "-n", c.ns, "route", "add", "default", "via", "192.168.77.1")
	networkMasquerade(t, router, "eth0")
	t.Cleanup(func() {
		for _, n := range nodes {
			zos(t, "network", "--host-ns", n.ns, "--prefix", n.ns+"-", "--state", n.state, "rm", "net1")
			zos(t, "network", "--host-ns", n.ns, "--prefix", n.ns+"-", "--state", n.state, "rm", "other")
		}
	})

	// A is the access node: it knows B's endpoint and lets hidden C dial in.
	a.apply(t, networkSpec(a, networkPeer(b, true), networkPeer(c, false)))
	b.apply(t, networkSpec(b, networkPeer(a, true, c.subnet)))
	c.apply(t, networkSpec(c, networkPeer(a, true, b.subnet)))
	// Applying again changes nothing.
	a.apply(t, networkSpec(a, networkPeer(b, true), networkPeer(c, false)))

	// Bad input: a clear error, and the applied network is untouched.
	badSpec := networkSpec(a, networkPeer(b, true))
	badSpec["subnet"] = "10.51.1.0/24"
	bf := filepath.Join(t.TempDir(), "bad.json")
	bj, _ := json.Marshal(badSpec)
	os.WriteFile(bf, bj, 0o600)
	_, errOut, code := zos(t, "network", "--host-ns", a.ns, "--prefix", a.ns+"-", "--state", a.state, "apply", "-f", bf)
	if code == 0 || !strings.Contains(errOut, "outside ip_range") {
		t.Fatalf("bad spec: exit %d, stderr %q", code, errOut)
	}
	if !strings.Contains(a.zos(t, "ls"), "10.50.1.0/24") {
		t.Fatal("a refused spec changed the applied network")
	}

	wl := map[string]string{}
	addr := map[string]string{}
	for _, n := range []*networkNode{a, b, c} {
		wl[n.name] = w.ns("wl" + n.name)
		out := strings.TrimSpace(n.zos(t, "attach", "net1", wl[n.name]))
		addr[n.name] = strings.Split(out, "/")[0]
		networkEcho(t, wl[n.name], addr[n.name]+":7000")
	}
	if addr["c"] != "10.50.3.2" {
		t.Fatalf("workload on C got %s", addr["c"])
	}

	marker := "ZOS-PLAINTEXT-" + hex.EncodeToString(suffix)
	stop := networkCapture(t, inet)
	for _, pair := range [][2]string{{"a", "b"}, {"b", "a"}, {"c", "b"}, {"b", "c"}, {"c", "a"}} {
		for _, proto := range []string{"tcp", "udp"} {
			networkWaitEcho(t, wl[pair[0]], proto, addr[pair[1]]+":7000", marker+"-"+proto)
		}
	}
	captured := stop()
	if bytes.Contains(captured, []byte(marker)) {
		t.Fatal("the plaintext marker crossed the internet bridge: traffic is not encrypted")
	}
	if len(captured) < 1000 {
		t.Fatalf("capture saw only %d bytes; it cannot be trusted", len(captured))
	}
	// Control: the same capture does see plaintext sent outside the networks.
	networkEcho(t, b.ns, "198.51.100.2:7300")
	stop = networkCapture(t, inet)
	networkWaitEcho(t, a.ns, "tcp", "198.51.100.2:7300", marker)
	if !bytes.Contains(stop(), []byte(marker)) {
		t.Fatal("control failed: capture does not see plaintext between hosts")
	}

	var st struct {
		Peers []struct {
			LastHandshake time.Time `json:"last_handshake"`
			RxBytes       uint64    `json:"rx_bytes"`
		} `json:"peers"`
	}
	if err := json.Unmarshal([]byte(a.zos(t, "status", "net1", "--json")), &st); err != nil {
		t.Fatal(err)
	}
	if len(st.Peers) != 2 || st.Peers[0].RxBytes == 0 || st.Peers[1].RxBytes == 0 {
		t.Fatalf("status of access node: %+v", st)
	}
	if !strings.Contains(a.zos(t, "ls"), "net1") {
		t.Fatal("ls does not list net1")
	}
	acc := a.zos(t, "access-config", "net1", "--subnet", "10.50.200.0/24", "--endpoint", "198.51.100.1:51820")
	for _, want := range []string{"[Interface]", "PrivateKey = ", "Endpoint = 198.51.100.1:51820", "AllowedIPs = 10.50.0.0/16", "PublicKey = " + a.pub} {
		if !strings.Contains(acc, want) {
			t.Errorf("access-config lacks %q:\n%s", want, acc)
		}
	}

	// A long-lived flow B->C survives a peer joining and leaving B's list.
	flow, err := networkDial(t, wl["b"], "tcp", addr["c"]+":7000", 5*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer flow.Close()
	if err := nettest.RoundTrip(flow, "before", 3*time.Second); err != nil {
		t.Fatal(err)
	}
	var d struct {
		PublicKey string `json:"public_key"`
	}
	json.Unmarshal([]byte(mustZos(t, "network", "genkey")), &d)
	joiner := map[string]any{"subnet": "10.50.9.0/24", "wireguard_public_key": d.PublicKey, "allowed_ips": []string{"10.50.9.0/24"}}
	b.apply(t, networkSpec(b, networkPeer(a, true, c.subnet), joiner))
	if err := nettest.RoundTrip(flow, "joined", 3*time.Second); err != nil {
		t.Fatalf("flow broken when a peer joined: %v", err)
	}
	b.apply(t, networkSpec(b, networkPeer(a, true, c.subnet)))
	if err := nettest.RoundTrip(flow, "left", 3*time.Second); err != nil {
		t.Fatalf("flow broken when a peer left: %v", err)
	}

	// The wall on the access node: a host on the internet reaches nothing
	// but the overlay port, while the networks keep working.
	networkEcho(t, a.ns, "198.51.100.1:7300")
	networkWaitEcho(t, b.ns, "tcp", "198.51.100.1:7300", "before the wall")
	a.zos(t, "wall", "--outward", "eth0", "--tcp", "9943")
	t.Cleanup(func() { a.zos(t, "wall", "--remove") })
	networkBlocked(t, b.ns, "198.51.100.1:7300")
	networkBlocked(t, router, "198.51.100.1:22")
	if err := nettest.RoundTrip(flow, "through the wall", 3*time.Second); err != nil {
		t.Fatalf("flow through the access node broken by the wall: %v", err)
	}
	networkWaitEcho(t, wl["c"], "udp", addr["a"]+":7000", "udp through the wall")

	// Another tenant on B: unreachable from net1's workload, as is B itself.
	var o struct {
		PrivateKey string `json:"private_key"`
	}
	json.Unmarshal([]byte(mustZos(t, "network", "genkey")), &o)
	b.apply(t, map[string]any{"name": "other", "ip_range": "10.60.0.0/16", "subnet": "10.60.1.0/24",
		"wireguard_private_key": o.PrivateKey, "wireguard_listen_port": 51900, "peers": []any{}})
	wlo := w.ns("wlo")
	oaddr := strings.Split(strings.TrimSpace(b.zos(t, "attach", "other", wlo)), "/")[0]
	networkEcho(t, wlo, oaddr+":7000")
	networkBlocked(t, wl["b"], oaddr+":7000")
	networkBlocked(t, wl["b"], "198.51.100.2:7300")
	networkEcho(t, inet, "198.51.100.254:7400")
	networkWaitEcho(t, wl["b"], "tcp", "198.51.100.254:7400", "internet") // outbound NAT still works

	// rm leaves nothing behind.
	b.zos(t, "rm", "other")
	a.zos(t, "wall", "--remove")
	for _, n := range []*networkNode{a, b, c} {
		n.zos(t, "rm", "net1")
		if left := networkLeftovers(t, n); len(left) > 0 {
			t.Errorf("node %s: rm left %v", n.name, left)
		}
	}
}

// networkLeftovers lists namespaces, links and rules a node's networks left.
func networkLeftovers(t *testing.T, n *networkNode) []string {
	var left []string
	for _, l := range strings.Split(networkIP(t, "netns", "list"), "\n") {
		if strings.HasPrefix(l, n.ns+"-") {
			left = append(left, "netns "+strings.Fields(l)[0])
		}
	}
	for _, l := range strings.Split(networkIP(t, "-n", n.ns, "-o", "link"), "\n") {
		f := strings.Fields(l)
		if len(f) < 2 {
			continue
		}
		name := strings.Split(strings.TrimSuffix(f[1], ":"), "@")[0]
		if name != "lo" && name != "eth0" {
			left = append(left, "link "+name)
		}
	}
	if r := networkIP(t, "-n", n.ns, "route", "show", "proto", "static"); strings.TrimSpace(r) != "" {
		left = append(left, "routes "+r)
	}
	h, err := netns.GetFromName(n.ns)
	if err != nil {
		t.Fatal(err)
	}
	defer h.Close()
	c, err := nftables.New(nftables.WithNetNSFd(int(h)))
	if err != nil {
		t.Fatal(err)
	}
	tables, _ := c.ListTables()
	for _, tb := range tables {
		left = append(left, "nft table "+tb.Name)
	}
	ents, _ := os.ReadDir(n.state)
	for _, e := range ents {
		if e.Name() != ".lock" {
			left = append(left, "state "+e.Name())
		}
	}
	return left
}

// networkOverlay runs `zos network overlay run` inside node ns until the
// test ends.
func networkOverlay(t *testing.T, n *networkNode, args ...string) {
	t.Helper()
	keyFile := filepath.Join(t.TempDir(), "node.key")
	mustZos(t, "key", "new", "-o", keyFile)
	cmd := exec.Command("ip", append([]string{"netns", "exec", n.ns, zosBin(t), "network", "--state", n.state,
		"overlay", "run", "--key", keyFile}, args...)...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	t.Cleanup(func() {
		cmd.Process.Signal(unix.SIGTERM)
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		if t.Failed() {
			t.Logf("overlay on %s:\n%s", n.name, logs.String())
		}
	})
	zostest.WaitFor(t, 20*time.Second, func() error {
		select {
		case err := <-done:
			done <- err
			t.Fatalf("overlay exited: %v\n%s", err, logs.String())
		default:
		}
		_, err := os.Stat(filepath.Join(n.state, "overlay.json"))
		return err
	})
}

func TestNetworkOverlay(t *testing.T) {
	zostest.RequiresNetns(t)
	suffix := make([]byte, 3)
	rand.Read(suffix)
	w := &networkWorld{t: t, prefix: "zo" + hex.EncodeToString(suffix) + "-", dir: t.TempDir()}
	inet := w.ns("inet")
	networkIP(t, "-n", inet, "link", "add", "br0", "type", "bridge")
	networkIP(t, "-n", inet, "link", "set", "br0", "up")
	var nodes []*networkNode
	for i, name := range []string{"a", "b", "c"} {
		n := &networkNode{name: name, ns: w.ns("node" + name), state: filepath.Join(w.dir, name)}
		w.link(n.ns, "eth0", fmt.Sprintf("198.51.100.%d/24", i+1), inet, "p"+name, "")
		networkIP(t, "-n", inet, "link", "set", "p"+name, "master", "br0")
		nodes = append(nodes, n)
	}
	a, b, c := nodes[0], nodes[1], nodes[2]
	for _, n := range nodes {
		// Link-local discovery needs the link-local address, usable once
		// duplicate address detection is over.
		zostest.WaitFor(t, 10*time.Second, func() error {
			if out := networkIP(t, "-n", n.ns, "-6", "addr", "show", "dev", "eth0", "tentative"); strings.TrimSpace(out) != "" {
				return fmt.Errorf("eth0 on %s still tentative", n.name)
			}
			return nil
		})
	}
	// The wall on A lets the overlay peering ports through (configured and
	// link-local discovery), nothing else.
	a.zos(t, "wall", "--outward", "eth0", "--tcp", "9943,9944,9945", "--udp", "9001,9946")
	t.Cleanup(func() { zos(t, "network", "--host-ns", a.ns, "--state", a.state, "wall", "--remove") })
	networkOverlay(t, a, "--listen", "tcp://198.51.100.1:9943", "--listen", "tls://198.51.100.1:9944",
		"--listen", "quic://198.51.100.1:9946", "--discover", "eth0", "--discover-port", "9945")
	// B peers over QUIC (through the wall's UDP port); C's link-local
	// discovery peers over TLS.
	networkOverlay(t, b, "--peer", "quic://198.51.100.1:9946")
	// C has no configured peer: it finds A on the local link.
	networkOverlay(t, c, "--discover", "eth0")

	var infoA, infoB struct {
		Address string `json:"address"`
		Subnet  string `json:"subnet"`
	}
	json.Unmarshal([]byte(a.zos(t, "overlay", "status")), &infoA)
	json.Unmarshal([]byte(b.zos(t, "overlay", "status")), &infoB)
	if !strings.HasPrefix(infoA.Address, "2") || !strings.HasPrefix(infoA.Subnet, "3") || !strings.HasSuffix(infoA.Subnet, "/64") {
		t.Fatalf("overlay address %s subnet %s not in 200::/7", infoA.Address, infoA.Subnet)
	}
	wa, wb := w.ns("wla"), w.ns("wlb")
	addrA := strings.TrimSpace(a.zos(t, "overlay", "attach", wa))
	addrB := strings.TrimSpace(b.zos(t, "overlay", "attach", wb))
	t.Cleanup(func() {
		zos(t, "network", "--host-ns", a.ns, "--state", a.state, "overlay", "detach", wa)
		zos(t, "network", "--host-ns", b.ns, "--state", b.state, "overlay", "detach", wb)
	})
	if !strings.HasPrefix(addrB, strings.TrimSuffix(infoB.Subnet, "::/64")) {
		t.Fatalf("workload address %s not in node subnet %s", addrB, infoB.Subnet)
	}
	networkEcho(t, wb, "["+addrB+"]:7000")
	marker := "ZOS-OVERLAY-" + hex.EncodeToString(suffix)
	stop := networkCapture(t, inet)
	networkWaitEcho(t, wa, "tcp", "["+addrB+"]:7000", marker)
	networkEcho(t, wa, "["+addrA+"]:7000")
	networkWaitEcho(t, wb, "tcp", "["+addrA+"]:7000", marker)
	if bytes.Contains(stop(), []byte(marker)) {
		t.Fatal("overlay traffic crossed the internet bridge in plaintext")
	}
	networkEcho(t, a.ns, "198.51.100.1:7000")
	networkBlocked(t, b.ns, "198.51.100.1:7000")

	wc := w.ns("wlc")
	c.zos(t, "overlay", "attach", wc)
	t.Cleanup(func() { zos(t, "network", "--host-ns", c.ns, "--state", c.state, "overlay", "detach", wc) })
	networkWaitEcho(t, wc, "tcp", "["+addrB+"]:7000", "found by link-local discovery")
}
