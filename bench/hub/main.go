package main

import (
	"archive/tar"
	"bytes"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/google/go-containerregistry/pkg/name"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
)

func main() {
	size := flag.Int("size", 100, "image size in MiB (uncompressed)")
	clients := flag.Int("clients", 8, "concurrent clients for block serving")
	rounds := flag.Int("rounds", 3, "times every block is fetched per server")
	flag.Parse()
	if err := run(*size, *clients, *rounds); err != nil {
		fmt.Fprintln(os.Stderr, "bench/hub:", err)
		os.Exit(1)
	}
}

type row struct {
	what          string
	zos, ref      float64
	unit, refName string
	lowerIsBetter bool
}

func run(sizeMiB, clients, rounds int) error {
	zosBin := os.Getenv("ZOS_BIN")
	if zosBin == "" {
		zosBin = "bin/zos"
	}
	for _, b := range []string{zosBin, "docker-registry", "skopeo", "tar", "redis-cli"} {
		if _, err := exec.LookPath(b); err != nil {
			return fmt.Errorf("needs %s (make build; make deps): %w", b, err)
		}
	}
	work, err := os.MkdirTemp("", "zos-bench-hub-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(work)
	var stop []func()
	defer func() {
		for i := len(stop) - 1; i >= 0; i-- {
			stop[i]()
		}
	}()

	reg, kill, err := startRegistry(work)
	if err != nil {
		return err
	}
	stop = append(stop, kill)
	ref := reg + "/bench/image:1"
	fmt.Fprintf(os.Stderr, "building and pushing a %d MiB image to %s\n", sizeMiB, reg)
	if err := pushImage(ref, sizeMiB); err != nil {
		return err
	}

	var rows []row
	blocks := filepath.Join(work, "blocks")
	imp := func(out string) (time.Duration, error) {
		return timed(zosBin, "flist", "import", "--store", "dir://"+blocks, "-o", out, ref)
	}
	cold, err := imp(filepath.Join(work, "a.fl"))
	if err != nil {
		return err
	}
	warm, err := imp(filepath.Join(work, "b.fl"))
	if err != nil {
		return err
	}
	refDur, err := skopeoExtract(work, ref)
	if err != nil {
		return err
	}
	rows = append(rows,
		row{"import, first time", cold.Seconds(), refDur.Seconds(), "s", "skopeo copy + tar -x", true},
		row{"import, same image again", warm.Seconds(), refDur.Seconds(), "s", "skopeo copy + tar -x", true})

	zdbAddr, zdbPid, killZdb, err := startZdb(zosBin, work)
	if err != nil {
		return err
	}
	stop = append(stop, killZdb)
	hubURL, hubPid, killHub, err := startHub(zosBin, zdbAddr, 256)
	if err != nil {
		return err
	}
	stop = append(stop, killHub)
	ids, total, err := uploadBlocks(zosBin, work, hubURL, filepath.Join(work, "a.fl"), blocks)
	if err != nil {
		return err
	}
	noCacheURL, noCachePid, killNoCache, err := startHub(zosBin, zdbAddr, 0)
	if err != nil {
		return err
	}
	stop = append(stop, killNoCache)
	fsrv := &http.Server{Handler: http.FileServer(http.Dir(blocks))}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go fsrv.Serve(l)
	stop = append(stop, func() { fsrv.Close() })
	fileRate, err := fetchAll("http://"+l.Addr().String(), ids, clients, rounds)
	if err != nil {
		return err
	}
	var cpuNotes []string
	for _, h := range []struct {
		what, url string
		pid       int
	}{{"hub (zdb, 256 MiB block cache)", hubURL, hubPid}, {"hub (zdb, no cache)", noCacheURL, noCachePid}} {
		cpu0, zcpu0 := cpuSeconds(h.pid), cpuSeconds(zdbPid)
		rate, err := fetchAll(h.url+"/blocks", ids, clients, rounds)
		if err != nil {
			return err
		}
		// CPU per GiB served does not depend on what else the machine is
		// doing, as MiB/s does: compare it across runs on a busy machine.
		gib := float64(total) * float64(rounds) / (1 << 30)
		cpuNotes = append(cpuNotes, fmt.Sprintf("%s: hub %.2f CPU s/GiB, zdb %.2f CPU s/GiB",
			h.what, (cpuSeconds(h.pid)-cpu0)/gib, (cpuSeconds(zdbPid)-zcpu0)/gib))
		rows = append(rows, row{fmt.Sprintf("block serving by %s, %d blocks (%d MiB), %d clients", h.what, len(ids), total>>20, clients),
			rate, fileRate, "MiB/s", "http.FileServer", false})
	}

	fmt.Printf("| measurement | zos | reference | ratio (zos/ref) |\n|---|---|---|---|\n")
	for _, r := range rows {
		ratio := r.zos / r.ref
		note := "higher is better"
		if r.lowerIsBetter {
			note = "lower is better"
		}
		fmt.Printf("| %s | %.2f %s | %.2f %s (%s) | %.2f× (%s) |\n", r.what, r.zos, r.unit, r.ref, r.unit, r.refName, ratio, note)
	}
	fmt.Println()
	for _, n := range cpuNotes {
		fmt.Println("- " + n)
	}
	return nil
}

// cpuSeconds is the user+system CPU time a process has used so far, from
// /proc/PID/stat (fields 14 and 15, in clock ticks of 1/100 s on Linux).
func cpuSeconds(pid int) float64 {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0
	}
	// The command name may hold spaces: fields start after its ')'.
	f := strings.Fields(string(b[bytes.LastIndexByte(b, ')')+1:]))
	if len(f) < 13 {
		return 0
	}
	ut, _ := strconv.ParseFloat(f[11], 64)
	st, _ := strconv.ParseFloat(f[12], 64)
	return (ut + st) / 100
}

func freeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

func waitHTTP(url string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		resp, err := http.Get(url)
		if err == nil {
			resp.Body.Close()
			return nil
		}
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("%s did not answer in 30s", url)
}

func waitTCP(addr string) error {
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		if c, err := net.Dial("tcp", addr); err == nil {
			return c.Close()
		}
		time.Sleep(20 * time.Millisecond)
	}
	return fmt.Errorf("nothing listening on %s after 30s", addr)
}

func startRegistry(work string) (string, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", nil, err
	}
	cfg := fmt.Sprintf("version: 0.1\nlog:\n  level: error\n  accesslog:\n    disabled: true\nstorage:\n  filesystem:\n    rootdirectory: %s\nhttp:\n  addr: %s\n",
		filepath.Join(work, "registry"), addr)
	p := filepath.Join(work, "registry.yml")
	if err := os.WriteFile(p, []byte(cfg), 0o600); err != nil {
		return "", nil, err
	}
	cmd := exec.Command("docker-registry", "serve", p)
	if err := cmd.Start(); err != nil {
		return "", nil, err
	}
	kill := func() { cmd.Process.Kill(); cmd.Wait() }
	if err := waitHTTP("http://" + addr + "/v2/"); err != nil {
		kill()
		return "", nil, err
	}
	return addr, kill, nil
}

// pushImage builds an image of about sizeMiB in 4 layers: files of mixed
// compressibility (random runs and repeated text), like real binaries.
func pushImage(ref string, sizeMiB int) error {
	rng := rand.New(rand.NewPCG(1, 2))
	img := empty.Image
	per := sizeMiB << 20 / 4
	for l := 0; l < 4; l++ {
		var buf bytes.Buffer
		tw := tar.NewWriter(&buf)
		for written, i := 0, 0; written < per; i++ {
			n := 64<<10 + rng.IntN(2<<20)
			body := make([]byte, n)
			for off := 0; off < n; off += 4096 {
				end := min(off+4096, n)
				if rng.IntN(2) == 0 {
					for j := off; j < end; j++ {
						body[j] = byte(rng.Uint32())
					}
				} else {
					copy(body[off:end], strings.Repeat("zos hub bench text ", 256))
				}
			}
			tw.WriteHeader(&tar.Header{Name: fmt.Sprintf("layer%d/file%04d", l, i), Mode: 0o644, Size: int64(n), Typeflag: tar.TypeReg})
			tw.Write(body)
			written += n
		}
		tw.Close()
		b := buf.Bytes()
		layer, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
		if err != nil {
			return err
		}
		if img, err = mutate.AppendLayers(img, layer); err != nil {
			return err
		}
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	img, err := mutate.ConfigFile(img, cf)
	if err != nil {
		return err
	}
	r, err := name.ParseReference(ref)
	if err != nil {
		return err
	}
	return remote.Write(r, img)
}

func timed(bin string, args ...string) (time.Duration, error) {
	start := time.Now()
	out, err := exec.Command(bin, args...).CombinedOutput()
	if err != nil {
		return 0, fmt.Errorf("%s %s: %w\n%s", bin, strings.Join(args, " "), err, out)
	}
	return time.Since(start), nil
}

// skopeoExtract times skopeo copy to an OCI layout plus tar -x of every layer.
func skopeoExtract(work, ref string) (time.Duration, error) {
	lay := filepath.Join(work, "skopeo-layout")
	root := filepath.Join(work, "skopeo-root")
	os.MkdirAll(root, 0o755)
	start := time.Now()
	if _, err := timed("skopeo", "copy", "--src-tls-verify=false", "docker://"+ref, "oci:"+lay+":bench"); err != nil {
		return 0, err
	}
	idx, err := layoutLayers(lay)
	if err != nil {
		return 0, err
	}
	for _, blob := range idx {
		if _, err := timed("tar", "-xzf", blob, "-C", root); err != nil {
			return 0, err
		}
	}
	return time.Since(start), nil
}

// layoutLayers lists the layer blobs of the only image in an OCI layout.
func layoutLayers(dir string) ([]string, error) {
	p, err := layoutImage(dir)
	if err != nil {
		return nil, err
	}
	m, err := p.Manifest()
	if err != nil {
		return nil, err
	}
	var out []string
	for _, l := range m.Layers {
		out = append(out, filepath.Join(dir, "blobs", l.Digest.Algorithm, l.Digest.Hex))
	}
	return out, nil
}

// startZdb runs `zos zdb` with the hub's two namespaces; it returns host:port.
func startZdb(zosBin, work string) (string, int, func(), error) {
	addr, err := freeAddr()
	if err != nil {
		return "", 0, nil, err
	}
	_, port, _ := net.SplitHostPort(addr)
	zdb := exec.Command(zosBin, "zdb", "--listen", "127.0.0.1", "--port", port,
		"--data", filepath.Join(work, "zdb-data"), "--index", filepath.Join(work, "zdb-index"))
	if err := zdb.Start(); err != nil {
		return "", 0, nil, err
	}
	kill := func() { zdb.Process.Signal(os.Interrupt); zdb.Wait() }
	if err := waitTCP(addr); err != nil {
		kill()
		return "", 0, nil, err
	}
	for _, ns := range []string{"hub-blocks", "hub-meta"} {
		if _, err := timed("redis-cli", "-h", "127.0.0.1", "-p", port, "NSNEW", ns); err != nil {
			kill()
			return "", 0, nil, err
		}
	}
	return addr, zdb.Process.Pid, kill, nil
}

// startHub runs `zos hub` on the zdb at zdbAddr with a block cache of cacheMB.
func startHub(zosBin, zdbAddr string, cacheMB int) (string, int, func(), error) {
	haddr, err := freeAddr()
	if err != nil {
		return "", 0, nil, err
	}
	hub := exec.Command(zosBin, "hub", "--listen", haddr, "--blocks", "zdb://"+zdbAddr+"/hub-blocks",
		"--meta", "zdb://"+zdbAddr+"/hub-meta", "--cache-mb", strconv.Itoa(cacheMB))
	if err := hub.Start(); err != nil {
		return "", 0, nil, err
	}
	kill := func() { hub.Process.Signal(os.Interrupt); hub.Wait() }
	if err := waitHTTP("http://" + haddr + "/healthz"); err != nil {
		kill()
		return "", 0, nil, err
	}
	return "http://" + haddr, hub.Process.Pid, kill, nil
}

// uploadBlocks pushes every block of the dir store into the hub with
// `zos hub push-blocks` and returns their ids and total size.
func uploadBlocks(zosBin, work, hubURL, fl, blocks string) ([]string, int64, error) {
	keyFile := filepath.Join(work, "bench.key")
	if _, err := timed(zosBin, "key", "new", "-o", keyFile); err != nil {
		return nil, 0, err
	}
	var ids []string
	var total int64
	err := filepath.WalkDir(blocks, func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		st, _ := d.Info()
		total += st.Size()
		ids = append(ids, filepath.ToSlash(strings.TrimPrefix(p, blocks+"/")))
		return nil
	})
	if err != nil {
		return nil, 0, err
	}
	if _, err := timed(zosBin, "flist", "import", "--store", "hub+"+hubURL+"?key="+keyFile, "-o", filepath.Join(work, "c.fl"),
		"oci:"+filepath.Join(work, "skopeo-layout")+":bench"); err != nil {
		return nil, 0, err
	}
	return ids, total, nil
}

// fetchAll GETs base/<xx>/<id> for every id, rounds times, with n clients,
// and returns MiB/s.
func fetchAll(base string, ids []string, n, rounds int) (float64, error) {
	c := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: n}}
	var next, bytesRead atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	total := int64(len(ids) * rounds)
	start := time.Now()
	for i := 0; i < n; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				k := next.Add(1) - 1
				if k >= total {
					return
				}
				resp, err := c.Get(base + "/" + ids[k%int64(len(ids))])
				if err == nil {
					var m int64
					m, err = io.Copy(io.Discard, resp.Body)
					resp.Body.Close()
					bytesRead.Add(m)
					if err == nil && resp.StatusCode != 200 {
						err = fmt.Errorf("GET %s: %s", resp.Request.URL, resp.Status)
					}
				}
				if err != nil {
					mu.Lock()
					if firstErr == nil {
						firstErr = err
					}
					mu.Unlock()
					return
				}
			}
		}()
	}
	wg.Wait()
	if firstErr != nil {
		return 0, firstErr
	}
	return float64(bytesRead.Load()) / (1 << 20) / time.Since(start).Seconds(), nil
}
