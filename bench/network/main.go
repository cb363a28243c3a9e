package main

import (
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/zosgrid/zos/network/nettest"
	"github.com/zosgrid/zos/network/wg"
)

var (
	seconds = flag.Int("t", 10, "seconds per iperf3 run")
	rtts    = flag.Int("rtt", 2000, "request/response round trips per latency measurement")
	keep    = flag.Bool("keep", false, "leave the namespaces for inspection (debugging)")
	rounds  = flag.Int("rounds", 3, "interleaved rounds over all paths")
)

type bench struct {
	prefix  string
	dir     string
	zos     string
	cleanup []func()
	// tunnels holds the pids of the processes carrying each kind of
	// tunnel ("wg", "zos-wg", "ygg", "zos-overlay"), whose CPU time per
	// GB moved is measured next to the throughput.
	tunnels map[string][]int
}

func main() {
	flag.Parse()
	if os.Geteuid() != 0 {
		fail(errors.New("needs root (namespaces, TUN, nftables)"))
	}
	if _, err := exec.LookPath("iperf3"); err != nil {
		fail(errors.New("needs iperf3 (make deps installs it)"))
	}
	b := &bench{prefix: "zb" + randHex(3) + "-", tunnels: map[string][]int{}}
	var err error
	if b.dir, err = os.MkdirTemp("", "zos-bench-network-"); err != nil {
		fail(err)
	}
	defer b.close()
	if err := b.run(); err != nil {
		b.close()
		fail(err)
	}
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "bench/network:", err)
	os.Exit(1)
}

func (b *bench) close() {
	if *keep {
		return
	}
	for i := len(b.cleanup) - 1; i >= 0; i-- {
		b.cleanup[i]()
	}
	b.cleanup = nil
	os.RemoveAll(b.dir)
}

func randHex(n int) string {
	x := make([]byte, n)
	rand.Read(x)
	return hex.EncodeToString(x)
}

func run(name string, args ...string) (string, error) {
	out, err := exec.Command(name, args...).CombinedOutput()
	if err != nil {
		return string(out), fmt.Errorf("%s %s: %w: %s", name, strings.Join(args, " "), err, out)
	}
	return string(out), nil
}

func must(out string, err error) string {
	if err != nil {
		panic(err)
	}
	return out
}

// start runs a long-lived process and stops it at cleanup.
func (b *bench) start(name string, args ...string) (*exec.Cmd, error) {
	return b.startAttr(nil, name, args...)
}

// startAttr is start with process attributes.
func (b *bench) startAttr(attr *syscall.SysProcAttr, name string, args ...string) (*exec.Cmd, error) {
	cmd := exec.Command(name, args...)
	cmd.SysProcAttr = attr
	logf, err := os.Create(filepath.Join(b.dir, fmt.Sprintf("proc-%d.log", len(b.cleanup))))
	if err != nil {
		return nil, err
	}
	cmd.Stdout, cmd.Stderr = logf, logf
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	b.cleanup = append(b.cleanup, func() {
		cmd.Process.Signal(os.Interrupt)
		done := make(chan struct{})
		go func() { cmd.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			cmd.Process.Kill()
			<-done
		}
		logf.Close()
	})
	return cmd, nil
}

func (b *bench) ns(name string) string {
	full := b.prefix + name
	del, err := nettest.Add(full)
	if err != nil {
		panic(err) // as must does: main's deferred close removes what was made
	}
	b.cleanup = append(b.cleanup, func() { del() })
	return full
}

// waitFor polls cond for up to d.
func waitFor(d time.Duration, cond func() error) error {
	deadline := time.Now().Add(d)
	for {
		err := cond()
		if err == nil || time.Now().After(deadline) {
			return err
		}
		time.Sleep(50 * time.Millisecond)
	}
}

type result struct {
	path   string
	gbps   float64
	rttMed time.Duration
	peer   string  // the standalone path this one is compared with
	tunCPU float64 // CPU-seconds of the tunnel processes per GB received (0: no tunnel)
	ipCPU  float64 // CPU-seconds of both iperf3 ends per GB received
}

func (b *bench) run() error {
	b.zos = os.Getenv("ZOS_BIN")
	if b.zos == "" {
		b.zos = filepath.Join(b.dir, "zos")
		fmt.Fprintln(os.Stderr, "building zos...")
		if _, err := run("go", "build", "-o", b.zos, "./cmd/zos"); err != nil {
			return err
		}
	}
	fmt.Fprintln(os.Stderr, "building standalone wireguard-go and yggdrasil from the required module versions...")
	wgBin, err := b.install("golang.zx2c4.com/wireguard", "golang.zx2c4.com/wireguard", "wireguard")
	if err != nil {
		return err
	}
	yggBin, err := b.buildYggdrasil()
	if err != nil {
		return err
	}

	// Two nodes on one veth.
	na, nb := b.ns("nodea"), b.ns("nodeb")
	must(run("ip", "-n", na, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", nb))
	must(run("ip", "-n", na, "addr", "add", "10.99.0.1/24", "dev", "eth0"))
	must(run("ip", "-n", nb, "addr", "add", "10.99.0.2/24", "dev", "eth0"))
	must(run("ip", "-n", na, "link", "set", "eth0", "up"))
	must(run("ip", "-n", nb, "link", "set", "eth0", "up"))
	wa, wb := b.ns("wla"), b.ns("wlb")

	type path struct {
		name, peer, client, server, addr string
		tunnel                           string // key into b.tunnels
		port                             int
		gbps, tunCPU, ipCPU              []float64
		rtt                              []time.Duration
	}
	var paths []*path
	add := func(name, peer, tunnel, client, server, addr string) error {
		p := &path{name: name, peer: peer, tunnel: tunnel, client: client, server: server, addr: addr}
		var err error
		if p.port, err = b.iperfServer(client, server, addr); err != nil {
			return fmt.Errorf("%s: %w", name, err)
		}
		paths = append(paths, p)
		return nil
	}
	if err := add("raw veth (node to node)", "", "", na, nb, "10.99.0.2"); err != nil {
		return err
	}
	// Standalone wireguard-go between the node namespaces.
	wsa, wsb := b.ns("wsa"), b.ns("wsb")
	if err := b.standaloneWG(wgBin, na, nb, wsa, wsb, wgPair{tag: "s", tunnel: "wg", net: 98, port: 51830}); err != nil {
		return err
	}
	if err := add("wireguard-go standalone", "", "wg", na, nb, "10.98.0.2"); err != nil {
		return err
	}
	if err := add("wireguard-go standalone, routed workloads", "", "wg", wsa, wsb, "10.95.2.2"); err != nil {
		return err
	}
	// The same daemons, each started in a session of its own (setsid), as
	// the zos device helper once was: the kernel then schedules each in an
	// autogroup of its own, apart from the iperf3 it serves.
	if err := b.standaloneWG(wgBin, na, nb, "", "", wgPair{tag: "x", tunnel: "wg-setsid", net: 94, port: 51831, setsid: true}); err != nil {
		return err
	}
	if err := add("wireguard-go standalone, daemons in own sessions (setsid)", "wireguard-go standalone", "wg-setsid", na, nb, "10.94.0.2"); err != nil {
		return err
	}
	// The zos private network between workloads.
	wbAddr, err := b.zosNetwork(na, nb, wa, wb, zosNet{name: "bench", net: 97, port: 51840, tunnel: "zos-wg"})
	if err != nil {
		return err
	}
	if err := add("zos private network (workload to workload)", "wireguard-go standalone", "zos-wg", wa, wb, wbAddr); err != nil {
		return err
	}
	if err := add("zos private network, again (vs routed workloads)", "wireguard-go standalone, routed workloads", "zos-wg", wa, wb, wbAddr); err != nil {
		return err
	}
	// Before the session fix: the same, with each device helper in a
	// session (so a scheduling autogroup) of its own.
	ssAddr, err := b.zosNetwork(na, nb, wa, wb, zosNet{name: "benchss", net: 96, port: 51841, tunnel: "zos-wg-setsid", setsid: true})
	if err != nil {
		return err
	}
	if err := add("zos private network, helpers in own sessions (before the fix)", "wireguard-go standalone, routed workloads", "zos-wg-setsid", wa, wb, ssAddr); err != nil {
		return err
	}
	// Standalone yggdrasil between its own pair of namespaces, wired the same
	// way: two overlays in one namespace would fight over the 200::/7 route.
	ya, yb := b.ns("ygga"), b.ns("yggb")
	must(run("ip", "-n", ya, "link", "add", "eth0", "type", "veth", "peer", "name", "eth0", "netns", yb))
	must(run("ip", "-n", ya, "addr", "add", "10.99.0.1/24", "dev", "eth0"))
	must(run("ip", "-n", yb, "addr", "add", "10.99.0.2/24", "dev", "eth0"))
	must(run("ip", "-n", ya, "link", "set", "eth0", "up"))
	must(run("ip", "-n", yb, "link", "set", "eth0", "up"))
	yggAddr, err := b.standaloneYgg(yggBin, ya, yb)
	if err != nil {
		return err
	}
	if err := add("yggdrasil standalone", "", "ygg", ya, yb, yggAddr); err != nil {
		return err
	}
	// The zos overlay between workloads.
	ovAddr, err := b.zosOverlay(na, nb, wa, wb)
	if err != nil {
		return err
	}
	if err := add("zos overlay (workload to workload)", "yggdrasil standalone", "zos-overlay", wa, wb, ovAddr); err != nil {
		return err
	}

	// Rounds interleave the paths, so a load change on a shared machine
	// hits all of them alike; each figure is the median over the rounds.
	for round := 0; round < *rounds; round++ {
		for _, p := range paths {
			fmt.Fprintf(os.Stderr, "round %d: %s\n", round+1, p.name)
			before, err := cpuTicks(b.tunnels[p.tunnel])
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			ir, err := iperf(p.client, p.addr, p.port)
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			after, err := cpuTicks(b.tunnels[p.tunnel])
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			g, gb := ir.gbps, ir.bytes/1e9
			p.tunCPU = append(p.tunCPU, float64(after-before)/clockTicks/gb)
			p.ipCPU = append(p.ipCPU, ir.cpuSeconds/gb)
			r, err := latency(p.client, p.server, hostPort(p.addr))
			if err != nil {
				return fmt.Errorf("%s: %w", p.name, err)
			}
			p.gbps, p.rtt = append(p.gbps, g), append(p.rtt, r)
			fmt.Fprintf(os.Stderr, "  %.2f Gbit/s, RTT %v, tunnel %.2f CPU-s/GB, iperf3 %.2f CPU-s/GB\n", g, r, p.tunCPU[len(p.tunCPU)-1], p.ipCPU[len(p.ipCPU)-1])
		}
	}
	var results []result
	for _, p := range paths {
		results = append(results, result{path: p.name, peer: p.peer, gbps: median(p.gbps), rttMed: median(p.rtt),
			tunCPU: median(p.tunCPU), ipCPU: median(p.ipCPU)})
	}
	raw := results[0]
	fmt.Printf("### network: TCP between two namespaces (iperf3 -t %d, single stream; RTT = median of %d 1-byte round trips; median of %d interleaved rounds)\n\n", *seconds, *rtts, *rounds)
	fmt.Println("| path | Gbit/s | RTT µs | tunnel CPU-s/GB | iperf3 CPU-s/GB | × raw veth | × standalone peer |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- |")
	for _, r := range results {
		peer := "—"
		if r.peer != "" {
			i := slices.IndexFunc(results, func(x result) bool { return x.path == r.peer })
			peer = fmt.Sprintf("%.2f (RTT %.2f, CPU/GB %.2f)", r.gbps/results[i].gbps, float64(results[i].rttMed)/float64(r.rttMed),
				results[i].tunCPU/r.tunCPU)
		}
		tun := "—"
		if r.tunCPU > 0 {
			tun = fmt.Sprintf("%.2f", r.tunCPU)
		}
		fmt.Printf("| %s | %.2f | %.0f | %s | %.2f | %.3f | %s |\n", r.path, r.gbps, float64(r.rttMed)/1e3, tun, r.ipCPU, r.gbps/raw.gbps, peer)
	}
	fmt.Println("\nRatios > 1 mean zos is better (faster, or fewer CPU-seconds per GB). Tunnel CPU-s/GB is the user+system")
	fmt.Println("time of both tunnel processes per GB received (/proc/<pid>/stat), iperf3 CPU-s/GB that of both iperf3 ends")
	fmt.Println("(kernel work done on their behalf included): on a busy machine these are steadier than Gbit/s.")
	fmt.Println("Both ends and the load generator share this machine's CPUs.")
	return nil
}

// install builds pkg at the version of module mod that this repository
// requires, into the bench directory.
func (b *bench) install(mod, pkg, bin string) (string, error) {
	v, err := run("go", "list", "-m", "-f", "{{.Version}}", mod)
	if err != nil {
		return "", err
	}
	gobin := filepath.Join(b.dir, "bin")
	cmd := exec.Command("go", "install", pkg+"@"+strings.TrimSpace(v))
	cmd.Env = append(os.Environ(), "GOBIN="+gobin, "GOFLAGS=-buildvcs=false")
	if out, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go install %s: %w: %s", pkg, err, out)
	}
	return filepath.Join(gobin, bin), nil
}

// buildYggdrasil builds the yggdrasil daemon at the version this repository
// requires, in a throwaway module. The module proxy refuses suah.dev/protect
// (OpenBSD pledge, a no-op on Linux), so that one import is replaced by a
// generated no-op package; everything else is the daemon's own code.
func (b *bench) buildYggdrasil() (string, error) {
	v, err := run("go", "list", "-m", "-f", "{{.Version}}", "github.com/yggdrasil-network/yggdrasil-go")
	if err != nil {
		return "", err
	}
	mod := filepath.Join(b.dir, "yggbuild")
	files := map[string]string{
		"go.mod": "module yggbench\n\ngo 1.25\n\nrequire github.com/yggdrasil-network/yggdrasil-go " + strings.TrimSpace(v) +
			"\n\nreplace suah.dev/protect => ./protect\n",
		"tools.go":           "//go:build tools\n\npackage tools\n\nimport _ \"github.com/yggdrasil-network/yggdrasil-go/cmd/yggdrasil\"\n",
		"protect/go.mod":     "module suah.dev/protect\n\ngo 1.20\n",
		"protect/protect.go": "package protect\n\nfunc Pledge(string) error { return nil }\n\nfunc Unveil(string, string) error { return nil }\n\nfunc UnveilBlock() error { return nil }\n",
	}
	for name, body := range files {
		p := filepath.Join(mod, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			return "", err
		}
		if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
			return "", err
		}
	}
	out := filepath.Join(b.dir, "bin", "yggdrasil")
	for _, args := range [][]string{{"mod", "tidy"}, {"build", "-o", out, "github.com/yggdrasil-network/yggdrasil-go/cmd/yggdrasil"}} {
		cmd := exec.Command("go", args...)
		cmd.Dir = mod
		cmd.Env = append(os.Environ(), "GOFLAGS=-buildvcs=false", "GOWORK=off")
		if o, err := cmd.CombinedOutput(); err != nil {
			return "", fmt.Errorf("build yggdrasil (go %s): %w: %s", strings.Join(args, " "), err, o)
		}
	}
	return out, nil
}

func hostPort(addr string) string {
	if strings.Contains(addr, ":") {
		return "[" + addr + "]"
	}
	return addr
}

func median[T float64 | time.Duration](v []T) T {
	s := slices.Clone(v)
	slices.Sort(s)
	return s[len(s)/2]
}

// iperfServer starts iperf3 in server and waits until client reaches it at
// addr (handshakes and overlay paths settle on the way).
func (b *bench) iperfServer(client, server, addr string) (int, error) {
	port := 5201 + len(b.cleanup)
	if _, err := b.start("ip", "netns", "exec", server, "iperf3", "-s", "-p", fmt.Sprint(port)); err != nil {
		return 0, err
	}
	if err := waitFor(60*time.Second, func() error {
		return nettest.Do(client, func() error {
			c, err := net.DialTimeout("tcp", fmt.Sprintf("%s:%d", hostPort(addr), port), 2*time.Second)
			if err == nil {
				c.Close()
			}
			return err
		})
	}); err != nil {
		return 0, fmt.Errorf("path to %s not ready: %w", addr, err)
	}
	return port, nil
}

type iperfResult struct {
	gbps, bytes float64
	// cpuSeconds is the CPU time of both iperf3 ends over the test.
	cpuSeconds float64
}

// iperf runs one iperf3 client and returns what the receiver got.
func iperf(client, addr string, port int) (iperfResult, error) {
	var out string
	var err error
	// iperf3 -s may still be finishing the previous test; retry a little.
	for i := 0; i < 3; i++ {
		out, err = run("ip", "netns", "exec", client, "iperf3", "-c", addr, "-p", fmt.Sprint(port), "-t", fmt.Sprint(*seconds), "-J")
		if err == nil {
			break
		}
		time.Sleep(500 * time.Millisecond)
	}
	if err != nil {
		return iperfResult{}, err
	}
	var j struct {
		End struct {
			SumReceived struct {
				Seconds       float64 `json:"seconds"`
				Bytes         float64 `json:"bytes"`
				BitsPerSecond float64 `json:"bits_per_second"`
			} `json:"sum_received"`
			CPU struct {
				Host   float64 `json:"host_total"`
				Remote float64 `json:"remote_total"`
			} `json:"cpu_utilization_percent"`
		} `json:"end"`
	}
	if err := json.Unmarshal([]byte(out), &j); err != nil {
		return iperfResult{}, fmt.Errorf("iperf3 output: %w", err)
	}
	r := j.End.SumReceived
	if r.BitsPerSecond == 0 || r.Bytes == 0 {
		return iperfResult{}, fmt.Errorf("iperf3 moved no data: %.300s", out)
	}
	return iperfResult{gbps: r.BitsPerSecond / 1e9, bytes: r.Bytes,
		cpuSeconds: (j.End.CPU.Host + j.End.CPU.Remote) / 100 * r.Seconds}, nil
}

// clockTicks is USER_HZ, the unit of /proc/<pid>/stat times (100 on every
// Linux architecture the kernel exposes it on).
const clockTicks = 100

// cpuTicks sums user and system time of pids from /proc/<pid>/stat.
func cpuTicks(pids []int) (int64, error) {
	var sum int64
	for _, pid := range pids {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil {
			return 0, fmt.Errorf("tunnel process %d: %w", pid, err)
		}
		// Fields after the parenthesised command name, which may hold
		// spaces: state is field 3, utime 14, stime 15.
		i := strings.LastIndexByte(string(st), ')')
		f := strings.Fields(string(st[i+1:]))
		if i < 0 || len(f) < 13 {
			return 0, fmt.Errorf("tunnel process %d: odd stat %q", pid, st)
		}
		for _, s := range f[11:13] {
			n, err := strconv.ParseInt(s, 10, 64)
			if err != nil {
				return 0, fmt.Errorf("tunnel process %d: %w", pid, err)
			}
			sum += n
		}
	}
	return sum, nil
}

// latency measures the median TCP request/response round trip.
func latency(client, server, host string) (time.Duration, error) {
	var ln net.Listener
	if err := nettest.Do(server, func() (err error) { ln, err = net.Listen("tcp", host+":0"); return }); err != nil {
		return 0, err
	}
	defer ln.Close()
	go func() {
		c, err := ln.Accept()
		if err != nil {
			return
		}
		io.Copy(c, c)
		c.Close()
	}()
	var c net.Conn
	if err := nettest.Do(client, func() (err error) { c, err = net.DialTimeout("tcp", ln.Addr().String(), 5*time.Second); return }); err != nil {
		return 0, err
	}
	defer c.Close()
	c.(*net.TCPConn).SetNoDelay(true)
	d := make([]time.Duration, *rtts)
	buf := []byte{1}
	for i := range d {
		t0 := time.Now()
		if _, err := c.Write(buf); err != nil {
			return 0, err
		}
		if _, err := io.ReadFull(c, buf); err != nil {
			return 0, err
		}
		d[i] = time.Since(t0)
	}
	slices.Sort(d)
	return d[len(d)/2], nil
}

// wgPair says how to run one pair of standalone wireguard-go daemons.
type wgPair struct {
	tag    string // in the interface names
	tunnel string // key into bench.tunnels
	net    int    // tunnel addresses 10.<net>.0.1/.2
	port   int
	setsid bool // each daemon in a session of its own
}

// standaloneWG runs wireguard-go between na and nb (10.<net>.0.1/.2) and, for
// a like-for-like comparison with zos, routes a workload namespace behind
// each (wsa 10.95.1.2, wsb 10.95.2.2; none when wsa is "") through the tunnel.
func (b *bench) standaloneWG(bin, na, nb, wsa, wsb string, pair wgPair) error {
	ka, _ := wg.GeneratePrivateKey()
	kb, _ := wg.GeneratePrivateKey()
	for i, n := range []string{na, nb} {
		name := fmt.Sprintf("wg%s%d%s", pair.tag, i, b.prefix[2:6])
		cmd, err := b.startAttr(&syscall.SysProcAttr{Setsid: pair.setsid}, "ip", "netns", "exec", n, bin, "-f", name)
		if err != nil {
			return err
		}
		// ip netns exec execs the program, so the pid is the daemon's.
		b.tunnels[pair.tunnel] = append(b.tunnels[pair.tunnel], cmd.Process.Pid)
		sock := "/var/run/wireguard/" + name + ".sock"
		if err := waitFor(10*time.Second, func() error { _, err := os.Stat(sock); return err }); err != nil {
			return fmt.Errorf("wireguard-go did not start: %w", err)
		}
		self, other, peerIP := ka, kb, "10.99.0.2"
		if i == 1 {
			self, other, peerIP = kb, ka, "10.99.0.1"
		}
		allowed := []netipPrefix{mustPrefix(fmt.Sprintf("10.%d.0.%d/32", pair.net, 2-i))}
		if wsa != "" {
			allowed = append(allowed, mustPrefix(fmt.Sprintf("10.95.%d.0/24", 2-i)))
		}
		if err := (wg.Client{Socket: sock}).Configure(contextTODO(), wg.Config{PrivateKey: self, ListenPort: uint16(pair.port),
			Peers: []wg.Peer{{PublicKey: other.Public(), Endpoint: mustAddrPort(fmt.Sprintf("%s:%d", peerIP, pair.port)),
				AllowedIPs: allowed}}}); err != nil {
			return err
		}
		if _, err := run("ip", "-n", n, "addr", "add", fmt.Sprintf("10.%d.0.%d/24", pair.net, i+1), "dev", name); err != nil {
			return err
		}
		if _, err := run("ip", "-n", n, "link", "set", name, "up"); err != nil {
			return err
		}
		if wsa == "" {
			continue
		}
		ws := []string{wsa, wsb}[i]
		for _, c := range [][]string{
			{"-n", n, "link", "add", "wsl", "mtu", "1420", "type", "veth", "peer", "name", "eth0", "netns", ws},
			{"-n", ws, "link", "set", "eth0", "mtu", "1420", "up"},
			{"-n", n, "link", "set", "wsl", "up"},
			{"-n", n, "addr", "add", fmt.Sprintf("10.95.%d.1/24", i+1), "dev", "wsl"},
			{"-n", ws, "addr", "add", fmt.Sprintf("10.95.%d.2/24", i+1), "dev", "eth0"},
			{"-n", ws, "route", "add", "default", "via", fmt.Sprintf("10.95.%d.1", i+1)},
			{"-n", n, "route", "add", fmt.Sprintf("10.95.%d.0/24", 2-i), "dev", name},
		} {
			if _, err := run("ip", c...); err != nil {
				return err
			}
		}
		if _, err := run("ip", "netns", "exec", n, "sh", "-c", "echo 1 > /proc/sys/net/ipv4/ip_forward"); err != nil {
			return err
		}
	}
	return nil
}

func (b *bench) zosCmd(node string, args ...string) (string, error) {
	state := filepath.Join(b.dir, node)
	return run(b.zos, append([]string{"network", "--host-ns", node, "--prefix", node + "-", "--state", state}, args...)...)
}

// zosNet says how to set up one zos private network between the nodes.
type zosNet struct {
	name   string
	net    int // ip_range 10.<net>.0.0/16, node subnets 10.<net>.1.0/24 and .2.0/24
	port   int
	tunnel string // key into bench.tunnels
	// setsid restarts each device helper in a session of its own, as zos
	// used to start them: a same-run "before" for the session fix.
	setsid bool
}

func (b *bench) zosNetwork(na, nb, wa, wb string, zn zosNet) (string, error) {
	ka, _ := wg.GeneratePrivateKey()
	kb, _ := wg.GeneratePrivateKey()
	sub := func(i int) string { return fmt.Sprintf("10.%d.%d.0/24", zn.net, i) }
	spec := func(self, other wg.PrivateKey, sub, peerSub, ep string) string {
		kt, _ := self.MarshalText()
		s, _ := json.Marshal(map[string]any{"name": zn.name, "ip_range": fmt.Sprintf("10.%d.0.0/16", zn.net), "subnet": sub,
			"wireguard_private_key": string(kt), "wireguard_listen_port": zn.port,
			"peers": []any{map[string]any{"subnet": peerSub, "wireguard_public_key": other.Public().String(),
				"allowed_ips": []string{peerSub}, "endpoint": ep}}})
		return string(s)
	}
	specs := map[string]string{
		na: spec(ka, kb, sub(1), sub(2), fmt.Sprintf("10.99.0.2:%d", zn.port)),
		nb: spec(kb, ka, sub(2), sub(1), fmt.Sprintf("10.99.0.1:%d", zn.port)),
	}
	for _, n := range []string{na, nb} {
		before, _ := filepath.Glob(filepath.Join(b.dir, n, "*.sock.pid"))
		f := filepath.Join(b.dir, n+"-"+zn.name+".json")
		os.WriteFile(f, []byte(specs[n]), 0o600)
		if _, err := b.zosCmd(n, "apply", "-f", f); err != nil {
			return "", err
		}
		b.cleanup = append(b.cleanup, func() { b.zosCmd(n, "rm", zn.name) })
		// apply leaves the device helper running and records its pid
		// next to its UAPI socket.
		after, _ := filepath.Glob(filepath.Join(b.dir, n, "*.sock.pid"))
		var pidFile string
		for _, a := range after {
			if !slices.Contains(before, a) {
				pidFile = a
			}
		}
		if pidFile == "" || len(after) != len(before)+1 {
			return "", fmt.Errorf("%s: want one new device pid file, found %v after %v", n, after, before)
		}
		pid, err := os.ReadFile(pidFile)
		if err != nil {
			return "", err
		}
		p, err := strconv.Atoi(strings.TrimSpace(string(pid)))
		if err != nil {
			return "", fmt.Errorf("%s: %w", pidFile, err)
		}
		if zn.setsid {
			if p, err = b.zosHelperSetsid(n, pidFile, p); err != nil {
				return "", err
			}
			// Re-apply: the device answers, so apply configures it and
			// brings its link and routes back.
			if _, err := b.zosCmd(n, "apply", "-f", f); err != nil {
				return "", err
			}
		}
		b.tunnels[zn.tunnel] = append(b.tunnels[zn.tunnel], p)
	}
	var addr string
	for i, w := range []string{wa, wb} {
		out, err := b.zosCmd([]string{na, nb}[i], "attach", zn.name, w)
		if err != nil {
			return "", err
		}
		addr = strings.Split(strings.TrimSpace(out), "/")[0]
		// A second network is not the workload's default route.
		if _, err := run("ip", "-n", w, "route", "replace", sub(2-i), "via", fmt.Sprintf("10.%d.%d.1", zn.net, i+1)); err != nil {
			return "", err
		}
	}
	return addr, nil
}

// zosHelperSetsid replaces the device helper pid of node by the same
// command started in a session of its own, and returns the new pid.
func (b *bench) zosHelperSetsid(node, pidFile string, pid int) (int, error) {
	sock := strings.TrimSuffix(pidFile, ".pid")
	id := strings.TrimSuffix(filepath.Base(sock), ".sock")
	if err := syscall.Kill(pid, syscall.SIGTERM); err != nil {
		return 0, err
	}
	if err := waitFor(10*time.Second, func() error {
		if _, err := os.Stat(fmt.Sprintf("/proc/%d", pid)); err == nil {
			return fmt.Errorf("device helper %d still running", pid)
		}
		return nil
	}); err != nil {
		return 0, err
	}
	cmd, err := b.startAttr(&syscall.SysProcAttr{Setsid: true}, "ip", "netns", "exec", node, b.zos, "network", "device",
		"--tun", "wg0", "--tun-ns", "/var/run/netns/"+node+"-n-"+id, "--socket", sock)
	if err != nil {
		return 0, err
	}
	if err := waitFor(10*time.Second, func() error { _, err := (wg.Client{Socket: sock}).Get(contextTODO()); return err }); err != nil {
		return 0, fmt.Errorf("setsid device helper: %w", err)
	}
	os.WriteFile(pidFile, []byte(strconv.Itoa(cmd.Process.Pid)), 0o600)
	return cmd.Process.Pid, nil
}

func (b *bench) standaloneYgg(bin, na, nb string) (string, error) {
	var addrB string
	for i, n := range []string{na, nb} {
		_, priv, _ := ed25519.GenerateKey(rand.Reader)
		cfg := map[string]any{"PrivateKey": hex.EncodeToString(priv), "Peers": []string{}, "Listen": []string{},
			"AdminListen": "none", "MulticastInterfaces": []any{}, "IfName": "yggs" + fmt.Sprint(i), "IfMTU": 65535,
			"NodeInfoPrivacy": true}
		if i == 0 {
			cfg["Listen"] = []string{"tcp://10.99.0.1:9950"}
		} else {
			cfg["Peers"] = []string{"tcp://10.99.0.1:9950"}
		}
		f := filepath.Join(b.dir, fmt.Sprintf("ygg%d.json", i))
		j, _ := json.Marshal(cfg)
		os.WriteFile(f, j, 0o600)
		cmd, err := b.start("ip", "netns", "exec", n, bin, "-useconffile", f)
		if err != nil {
			return "", err
		}
		b.tunnels["ygg"] = append(b.tunnels["ygg"], cmd.Process.Pid)
		if i == 1 {
			out, err := run(bin, "-useconffile", f, "-address")
			if err != nil {
				return "", err
			}
			addrB = strings.TrimSpace(out)
		}
	}
	return addrB, nil
}

func (b *bench) zosOverlay(na, nb, wa, wb string) (string, error) {
	for i, n := range []string{na, nb} {
		keyFile := filepath.Join(b.dir, n+".key")
		if _, err := run(b.zos, "key", "new", "-o", keyFile); err != nil {
			return "", err
		}
		args := []string{"netns", "exec", n, b.zos, "network", "--state", filepath.Join(b.dir, n), "overlay", "run", "--key", keyFile}
		if i == 0 {
			args = append(args, "--listen", "tcp://10.99.0.1:9943")
		} else {
			args = append(args, "--peer", "tcp://10.99.0.1:9943")
		}
		cmd, err := b.start("ip", args...)
		if err != nil {
			return "", err
		}
		b.tunnels["zos-overlay"] = append(b.tunnels["zos-overlay"], cmd.Process.Pid)
		if err := waitFor(20*time.Second, func() error {
			_, err := os.Stat(filepath.Join(b.dir, n, "overlay.json"))
			return err
		}); err != nil {
			return "", fmt.Errorf("zos overlay did not start: %w", err)
		}
	}
	if _, err := b.zosCmd(na, "overlay", "attach", wa); err != nil {
		return "", err
	}
	out, err := b.zosCmd(nb, "overlay", "attach", wb)
	if err != nil {
		return "", err
	}
	b.cleanup = append(b.cleanup, func() { b.zosCmd(na, "overlay", "detach", wa); b.zosCmd(nb, "overlay", "detach", wb) })
	return strings.TrimSpace(out), nil
}
