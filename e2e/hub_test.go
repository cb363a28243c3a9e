//go:build e2e

package e2e

import (
	"archive/tar"
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	"github.com/google/go-containerregistry/pkg/name"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/google/go-containerregistry/pkg/v1/empty"
	"github.com/google/go-containerregistry/pkg/v1/layout"
	"github.com/google/go-containerregistry/pkg/v1/mutate"
	"github.com/google/go-containerregistry/pkg/v1/remote"
	"github.com/google/go-containerregistry/pkg/v1/tarball"
	"github.com/redis/go-redis/v9"
	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/zostest"
)

// hubRegistry starts Debian's docker-registry on a free loopback port with
// its storage in a temporary directory; with a user it requires basic auth.
// It returns host:port.
func hubRegistry(t *testing.T, user, pass string) (string, *exec.Cmd) {
	t.Helper()
	auth := ""
	if user != "" {
		h, err := bcrypt.GenerateFromPassword([]byte(pass), bcrypt.MinCost)
		if err != nil {
			t.Fatal(err)
		}
		htpasswd := filepath.Join(t.TempDir(), "htpasswd")
		os.WriteFile(htpasswd, []byte(user+":"+string(h)+"\n"), 0o600)
		auth = fmt.Sprintf("auth:\n  htpasswd:\n    realm: zos-test\n    path: %s\n", htpasswd)
	}
	return hubRegistryWithAuth(t, auth)
}

// hubRegistryWithAuth starts docker-registry with auth, a YAML "auth:"
// section (empty for none), and returns host:port and the process.
func hubRegistryWithAuth(t *testing.T, auth string) (string, *exec.Cmd) {
	t.Helper()
	bin := zostest.RequiresBinary(t, "docker-registry")
	dir := t.TempDir()
	addr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	cfg := fmt.Sprintf(`version: 0.1
log:
  level: error
  accesslog:
    disabled: true
storage:
  filesystem:
    rootdirectory: %s
  delete:
    enabled: true
http:
  addr: %s
%s`, filepath.Join(dir, "data"), addr, auth)
	cfgPath := filepath.Join(dir, "config.yml")
	if err := os.WriteFile(cfgPath, []byte(cfg), 0o600); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(bin, "serve", cfgPath)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		cmd.Process.Kill()
		cmd.Wait()
		if t.Failed() {
			t.Logf("docker-registry output:\n%s", logs.String())
		}
	})
	zostest.WaitFor(t, 20*time.Second, func() error {
		resp, err := http.Get("http://" + addr + "/v2/")
		if err != nil {
			return err
		}
		resp.Body.Close()
		return nil
	})
	return addr, cmd
}

// hubEntry is one entry of a test layer.
type hubEntry struct {
	name, body, link string
	typ              byte
	mode             int64
	uid, gid         int
	xattrs           map[string]string
}

func hubLayer(t *testing.T, entries ...hubEntry) v1.Layer {
	t.Helper()
	var buf bytes.Buffer
	tw := tar.NewWriter(&buf)
	for _, e := range entries {
		h := &tar.Header{Name: e.name, Typeflag: e.typ, Linkname: e.link, Mode: e.mode, Uid: e.uid, Gid: e.gid,
			Format: tar.FormatPAX, ModTime: time.Unix(1700000000, 0)}
		if h.Typeflag == 0 {
			h.Typeflag = tar.TypeReg
		}
		if h.Mode == 0 {
			h.Mode = 0o644
			if h.Typeflag == tar.TypeDir {
				h.Mode = 0o755
			}
		}
		if h.Typeflag == tar.TypeReg {
			h.Size = int64(len(e.body))
		}
		for k, v := range e.xattrs {
			if h.PAXRecords == nil {
				h.PAXRecords = map[string]string{}
			}
			h.PAXRecords["SCHILY.xattr."+k] = v
		}
		if err := tw.WriteHeader(h); err != nil {
			t.Fatal(err)
		}
		io.WriteString(tw, e.body)
	}
	tw.Close()
	b := buf.Bytes()
	l, err := tarball.LayerFromOpener(func() (io.ReadCloser, error) { return io.NopCloser(bytes.NewReader(b)), nil })
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// hubCapNetRaw is a VFS_CAP_REVISION_2 security.capability value granting
// cap_net_raw (bit 13) as permitted and effective.
const hubCapNetRaw = "\x01\x00\x00\x02" + "\x00\x20\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00" + "\x00\x00\x00\x00"

// hubBusyboxImage is a busybox-static root in one layer, then a layer that
// deletes, hides, replaces and links, with an image configuration.
func hubBusyboxImage(t *testing.T) v1.Image {
	t.Helper()
	bb, err := os.ReadFile(zostest.RequiresBinary(t, "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	base := []hubEntry{
		{name: "bin/", typ: tar.TypeDir},
		{name: "bin/busybox", body: string(bb), mode: 0o755},
		{name: "bin/sh", typ: tar.TypeSymlink, link: "busybox"},
		{name: "bin/ls", typ: tar.TypeSymlink, link: "busybox"},
		{name: "bin/cat", typ: tar.TypeLink, link: "bin/busybox"},
		{name: "etc/", typ: tar.TypeDir},
		{name: "etc/passwd", body: "root:x:0:0:root:/root:/bin/sh\n"},
		{name: "etc/motd", body: "old motd\n"},
		{name: "opt/", typ: tar.TypeDir},
		{name: "opt/lower", body: "hidden by an opaque dir\n"},
		{name: "tmp/", typ: tar.TypeDir, mode: 0o1777},
	}
	upper := []hubEntry{
		{name: "etc/.wh.motd"},
		{name: "etc/hostname", body: "zos\n"},
		{name: "opt/.wh..wh..opq"},
		{name: "opt/upper", body: "visible\n"},
		{name: "usr/bin/ping", body: "not really ping\n", mode: 0o755, xattrs: map[string]string{"security.capability": hubCapNetRaw}},
		{name: "usr/bin/ping2", typ: tar.TypeLink, link: "usr/bin/ping"},
	}
	return hubImage(t, v1.Config{
		Entrypoint:   []string{"/bin/sh", "-c"},
		Cmd:          []string{"cat /etc/hostname"},
		Env:          []string{"PATH=/bin:/usr/bin", "GREETING=hello world"},
		WorkingDir:   "/opt",
		User:         "0:0",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}},
		Volumes:      map[string]struct{}{"/data": {}},
		Labels:       map[string]string{"org.zos.test": "busybox"},
	}, hubLayer(t, base...), hubLayer(t, upper...))
}

// hubImage is a linux/amd64 image of layers with the configuration cfg.
func hubImage(t *testing.T, cfg v1.Config, layers ...v1.Layer) v1.Image {
	t.Helper()
	img, err := mutate.AppendLayers(empty.Image, layers...)
	if err != nil {
		t.Fatal(err)
	}
	cf, _ := img.ConfigFile()
	cf = cf.DeepCopy()
	cf.OS, cf.Architecture = "linux", "amd64"
	cf.Config = cfg
	img, err = mutate.ConfigFile(img, cf)
	if err != nil {
		t.Fatal(err)
	}
	return img
}

func hubPush(t *testing.T, ref string, img v1.Image, auth authn.Authenticator) {
	t.Helper()
	r, err := name.ParseReference(ref)
	if err != nil {
		t.Fatal(err)
	}
	opts := []remote.Option{}
	if auth != nil {
		opts = append(opts, remote.WithAuth(auth))
	}
	if err := remote.Write(r, img, opts...); err != nil {
		t.Fatalf("push %s: %v", ref, err)
	}
}

// hubCheckConfig checks what `zos flist inspect --json` says about the image config.
func hubCheckConfig(t *testing.T, fl string, img v1.Image) {
	t.Helper()
	out := mustZos(t, "flist", "inspect", "--config", fl)
	var cfg struct {
		Digest     string   `json:"digest"`
		Entrypoint []string `json:"entrypoint"`
		Cmd        []string `json:"cmd"`
		Env        []string `json:"env"`
		WorkingDir string   `json:"working_dir"`
		Ports      []string `json:"exposed_ports"`
		Volumes    []string `json:"volumes"`
		Labels     map[string]string
	}
	if err := json.Unmarshal([]byte(out), &cfg); err != nil {
		t.Fatalf("inspect --config: %v\n%s", err, out)
	}
	d, _ := img.Digest()
	if cfg.Digest != d.String() || cfg.WorkingDir != "/opt" || strings.Join(cfg.Env, ",") != "PATH=/bin:/usr/bin,GREETING=hello world" ||
		strings.Join(cfg.Entrypoint, " ") != "/bin/sh -c" || strings.Join(cfg.Ports, ",") != "8080/tcp" ||
		strings.Join(cfg.Volumes, ",") != "/data" || cfg.Labels["org.zos.test"] != "busybox" {
		t.Errorf("image config in flist: %s", out)
	}
}

// hubCheckTree unpacks fl and checks files, whiteouts, links and xattrs.
func hubCheckTree(t *testing.T, fl, store string) {
	t.Helper()
	dest := filepath.Join(t.TempDir(), "root")
	mustZos(t, "flist", "unpack", "--insecure", "--store", store, fl, dest)
	read := func(p string) string {
		b, err := os.ReadFile(filepath.Join(dest, p))
		if err != nil {
			t.Errorf("%s: %v", p, err)
		}
		return string(b)
	}
	if read("etc/hostname") != "zos\n" || read("opt/upper") != "visible\n" {
		t.Error("upper layer files wrong")
	}
	for _, gone := range []string{"etc/motd", "opt/lower"} {
		if _, err := os.Lstat(filepath.Join(dest, gone)); !os.IsNotExist(err) {
			t.Errorf("%s should be whited out: %v", gone, err)
		}
	}
	if l, err := os.Readlink(filepath.Join(dest, "bin/sh")); err != nil || l != "busybox" {
		t.Errorf("bin/sh -> %q, %v", l, err)
	}
	out, err := exec.Command(filepath.Join(dest, "bin/busybox"), "echo", "busybox runs").CombinedOutput()
	if err != nil || strings.TrimSpace(string(out)) != "busybox runs" {
		t.Errorf("unpacked busybox: %v %s", err, out)
	}
	if v, err := unix.Lgetxattr(filepath.Join(dest, "usr/bin/ping"), "security.capability", make([]byte, 64)); err != nil || v != len(hubCapNetRaw) {
		t.Errorf("usr/bin/ping capability: %d bytes, %v", v, err)
	}
	a, _ := os.Stat(filepath.Join(dest, "usr/bin/ping"))
	b, _ := os.Stat(filepath.Join(dest, "usr/bin/ping2"))
	if a == nil || b == nil || !os.SameFile(a, b) {
		t.Error("usr/bin/ping2 is not a hard link of usr/bin/ping")
	}
}

func TestHubImportSources(t *testing.T) {
	img := hubBusyboxImage(t)
	reg, _ := hubRegistry(t, "", "")
	ref := reg + "/zos/busybox:1"
	hubPush(t, ref, img, nil)

	dir := t.TempDir()
	tb := filepath.Join(dir, "image.tar")
	tag, _ := name.NewTag("example.org/busybox:1")
	if err := tarball.WriteToFile(tb, tag, img); err != nil {
		t.Fatal(err)
	}
	lp := filepath.Join(dir, "layout")
	p, err := layout.Write(lp, empty.Index)
	if err != nil {
		t.Fatal(err)
	}
	p.AppendImage(img, layout.WithPlatform(v1.Platform{OS: "linux", Architecture: "amd64"}))

	store := "dir://" + filepath.Join(dir, "blocks")
	for i, src := range []string{ref, tb, lp} {
		fl := filepath.Join(dir, fmt.Sprintf("out%d.fl", i))
		out := mustZos(t, "flist", "import", "--store", store, "-o", fl, src)
		if i > 0 && !strings.Contains(out, "new blocks: 0") {
			t.Errorf("importing the same image again from %s uploaded blocks:\n%s", src, out)
		}
		hubCheckConfig(t, fl, img)
		hubCheckTree(t, fl, store)
	}
}

// hubNewBlocks reads "N blocks ..., new blocks: M" from an import summary.
func hubNewBlocks(t *testing.T, out string) (total, fresh int) {
	t.Helper()
	m := regexp.MustCompile(`in (\d+) blocks .*new blocks: (\d+)`).FindStringSubmatch(out)
	if m == nil {
		t.Fatalf("no block counts in:\n%s", out)
	}
	total, _ = strconv.Atoi(m[1])
	fresh, _ = strconv.Atoi(m[2])
	return total, fresh
}

func TestHubImportNewVersion(t *testing.T) {
	v1img := hubBusyboxImage(t)
	v2img, err := mutate.AppendLayers(v1img, hubLayer(t, hubEntry{name: "etc/version", body: "2\n"}))
	if err != nil {
		t.Fatal(err)
	}
	reg, _ := hubRegistry(t, "", "")
	hubPush(t, reg+"/zos/app:1", v1img, nil)
	hubPush(t, reg+"/zos/app:2", v2img, nil)
	dir := t.TempDir()
	store := "dir://" + filepath.Join(dir, "blocks")
	total1, fresh1 := hubNewBlocks(t, mustZos(t, "flist", "import", "--store", store, "-o", filepath.Join(dir, "1.fl"), reg+"/zos/app:1"))
	total2, fresh2 := hubNewBlocks(t, mustZos(t, "flist", "import", "--store", store, "-o", filepath.Join(dir, "2.fl"), reg+"/zos/app:2"))
	if fresh1 == 0 || fresh1 > total1 {
		t.Errorf("first version: %d new of %d blocks", fresh1, total1)
	}
	if total2 != total1+1 || fresh2 != 1 {
		t.Errorf("second version: %d new of %d blocks, want 1 new of %d", fresh2, total2, total1+1)
	}
}

func TestHubImportBadInput(t *testing.T) {
	img := hubBusyboxImage(t)
	reg, regCmd := hubRegistry(t, "zos", "secret")
	ref := reg + "/zos/private:1"
	hubPush(t, ref, img, &authn.Basic{Username: "zos", Password: "secret"})
	dir := t.TempDir()
	store := "dir://" + filepath.Join(dir, "blocks")
	fl := filepath.Join(dir, "x.fl")

	_, errOut, code := zos(t, "flist", "import", "--store", store, "-o", fl, ref)
	if code == 0 || !strings.Contains(strings.ToLower(errOut), "unauthorized") {
		t.Errorf("pull without credentials: exit %d: %s", code, errOut)
	}
	cmd := exec.Command(zosBin(t), "flist", "import", "--store", store, "-o", fl, "--username", "zos", "--password-stdin", ref)
	cmd.Stdin = strings.NewReader("secret\n")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("pull with credentials: %v\n%s", err, out)
	}
	hubCheckConfig(t, fl, img)

	// A truncated docker-save tarball.
	tb := filepath.Join(dir, "image.tar")
	tag, _ := name.NewTag("example.org/busybox:1")
	tarball.WriteToFile(tb, tag, img)
	st, _ := os.Stat(tb)
	os.Truncate(tb, st.Size()/2)
	bad := filepath.Join(dir, "bad.fl")
	if _, errOut, code := zos(t, "flist", "import", "--store", store, "-o", bad, tb); code == 0 {
		t.Error("truncated tarball imported")
	} else if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("failed import left %s behind (%v): %s", bad, err, errOut)
	}

	// The registry goes away.
	regCmd.Process.Kill()
	regCmd.Wait()
	if _, errOut, code := zos(t, "flist", "import", "--store", store, "-o", bad, "--username", "zos", ref); code == 0 {
		t.Error("import from a dead registry succeeded")
	} else if !strings.Contains(errOut, reg) {
		t.Errorf("error does not name the registry: %s", errOut)
	}
	if _, err := os.Stat(bad); !os.IsNotExist(err) {
		t.Errorf("failed import left %s behind", bad)
	}
}

// hubZdb starts `zos zdb` as the hub's backend and creates the namespaces;
// it returns host:port.
func hubZdb(t *testing.T, namespaces ...string) string {
	t.Helper()
	dir := t.TempDir()
	port := freePort(t)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	svc := startZos(t, "zdb", "--listen", "127.0.0.1", "--port", fmt.Sprint(port), "--data", filepath.Join(dir, "data"), "--index", filepath.Join(dir, "index"))
	waitTCP(t, svc, addr)
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer c.Close()
	for _, ns := range namespaces {
		if err := c.Do(context.Background(), "NSNEW", ns).Err(); err != nil {
			t.Fatalf("NSNEW %s: %v", ns, err)
		}
	}
	return addr
}

func TestHubImportPlatform(t *testing.T) {
	mk := func(arch string) v1.Image {
		img, err := mutate.AppendLayers(empty.Image, hubLayer(t, hubEntry{name: "arch", body: arch}))
		if err != nil {
			t.Fatal(err)
		}
		cf, _ := img.ConfigFile()
		cf = cf.DeepCopy()
		cf.OS, cf.Architecture = "linux", arch
		img, _ = mutate.ConfigFile(img, cf)
		return img
	}
	idx := mutate.AppendManifests(empty.Index,
		mutate.IndexAddendum{Add: mk("amd64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "amd64"}}},
		mutate.IndexAddendum{Add: mk("arm64"), Descriptor: v1.Descriptor{Platform: &v1.Platform{OS: "linux", Architecture: "arm64"}}},
	)
	reg, _ := hubRegistry(t, "", "")
	ref := reg + "/zos/multi:1"
	r, _ := name.ParseReference(ref)
	if err := remote.WriteIndex(r, idx); err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	store := "dir://" + filepath.Join(dir, "blocks")
	for _, arch := range []string{"amd64", "arm64"} {
		fl := filepath.Join(dir, arch+".fl")
		mustZos(t, "flist", "import", "--platform", "linux/"+arch, "--store", store, "-o", fl, ref)
		dest := filepath.Join(dir, arch)
		mustZos(t, "flist", "unpack", "--insecure", "--store", store, fl, dest)
		if b, _ := os.ReadFile(filepath.Join(dest, "arch")); string(b) != arch {
			t.Errorf("--platform linux/%s imported the %q image", arch, b)
		}
	}
	if _, errOut, code := zos(t, "flist", "import", "--platform", "linux/s390x", "--store", store, "-o", filepath.Join(dir, "x.fl"), ref); code == 0 || !strings.Contains(errOut, "no image for platform") {
		t.Errorf("missing platform: exit %d: %s", code, errOut)
	}
}

func TestHubServesImportedFlists(t *testing.T) {
	img := hubBusyboxImage(t)
	reg, _ := hubRegistry(t, "", "")
	ref := reg + "/zos/busybox:1"
	hubPush(t, ref, img, nil)
	hubURL := hubServe(t)
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "me.key")
	mustZos(t, "key", "new", "-o", keyFile)

	// A .fl whose blocks the hub lacks is refused, and nothing is listed.
	local := filepath.Join(dir, "local.fl")
	mustZos(t, "flist", "import", "--store", "dir://"+filepath.Join(dir, "blocks"), "-o", local, ref)
	if _, errOut, code := zos(t, "hub", "upload", local, "--hub", hubURL, "--key", keyFile); code == 0 || !strings.Contains(errOut, "missing") {
		t.Errorf("upload without blocks: exit %d: %s", code, errOut)
	}
	if out := mustZos(t, "hub", "ls", "--hub", hubURL, "--key", keyFile); strings.TrimSpace(out) != "" {
		t.Errorf("refused upload is listed: %s", out)
	}

	// Import through the hub store: only missing blocks go up, then the upload passes.
	fl := filepath.Join(dir, "app.fl")
	store := "hub+" + hubURL + "?key=" + keyFile
	out := mustZos(t, "flist", "import", "--store", store, "-o", fl, ref)
	if strings.Contains(out, "new blocks: 0 ") {
		t.Errorf("first import into the hub uploaded nothing:\n%s", out)
	}
	before := hubRequestsByRoute(t, hubURL)
	if out := mustZos(t, "flist", "import", "--store", store, "-o", filepath.Join(dir, "again.fl"), ref); !strings.Contains(out, "new blocks: 0 ") {
		t.Errorf("second import uploaded blocks:\n%s", out)
	}
	// The re-import asks which blocks are missing in a batch or a few, not
	// one HEAD per block, and uploads nothing.
	after := hubRequestsByRoute(t, hubURL)
	if d := after["block_verify"] - before["block_verify"]; d < 1 || d > 3 {
		t.Errorf("re-import made %v verify requests, want 1 to 3", d)
	}
	for _, route := range []string{"block_head", "block_post"} {
		if d := after[route] - before[route]; d != 0 {
			t.Errorf("re-import made %v %s requests, want none", d, route)
		}
	}
	mustZos(t, "hub", "upload", fl, "--hub", hubURL, "--key", keyFile, "--name", "busybox.fl", "--tag", "busybox:latest")
	if out := mustZos(t, "flist", "inspect", "--summary", fl); !strings.Contains(out, "route: 00-ff "+hubURL+"/blocks") {
		t.Errorf("flist route is not the hub's public block URL:\n%s", out)
	}

	// Download by tag and read it back through the hub's http store layout.
	got := filepath.Join(dir, "got.fl")
	hubFetch(t, hubURL, hubUser(t, keyFile), "busybox:latest", got)
	hubCheckConfig(t, got, img)
	hubCheckTree(t, got, hubURL+"/blocks")

	// Mount it: the flist's own route sends reads to the hub.
	t.Run("mount", func(t *testing.T) {
		zostest.RequiresFUSE(t)
		mp := filepath.Join(dir, "mp")
		os.Mkdir(mp, 0o755)
		startZos(t, "flist", "mount", got, mp, "--insecure", "--cache", filepath.Join(dir, "cache"))
		zostest.WaitFor(t, 30*time.Second, func() error {
			if !flistMounted(mp) {
				return fmt.Errorf("not mounted yet")
			}
			return nil
		})
		t.Cleanup(func() { zos(t, "flist", "umount", mp) })
		if b, err := os.ReadFile(filepath.Join(mp, "etc/hostname")); err != nil || string(b) != "zos\n" {
			t.Errorf("etc/hostname through the mount: %q %v", b, err)
		}
		if _, err := os.Lstat(filepath.Join(mp, "opt/lower")); !os.IsNotExist(err) {
			t.Errorf("opt/lower visible through the mount: %v", err)
		}
		out, err := exec.Command(filepath.Join(mp, "bin/busybox"), "echo", "from the hub").CombinedOutput()
		if err != nil || strings.TrimSpace(string(out)) != "from the hub" {
			t.Errorf("busybox from the mount: %v %s", err, out)
		}
	})

	// The hub converts the image itself.
	out = mustZos(t, "hub", "convert", ref, "--hub", hubURL, "--key", keyFile, "--name", "converted.fl", "--wait")
	if !strings.Contains(out, "converted "+ref) {
		t.Errorf("convert: %s", out)
	}
	if _, errOut, code := zos(t, "hub", "convert", reg+"/zos/nothere:1", "--hub", hubURL, "--key", keyFile, "--wait"); code == 0 || !strings.Contains(errOut, "nothere") {
		t.Errorf("converting a missing image: exit %d: %s", code, errOut)
	}
	resp, err := http.Get(hubURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	m, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	for _, want := range []string{`zos_hub_conversions_total{result="done"} 1`, `zos_hub_conversions_total{result="failed"} 1`, "zos_hub_blocks_stored_total", "zos_hub_served_bytes_total"} {
		if !strings.Contains(string(m), want) {
			t.Errorf("metrics lack %q", want)
		}
	}
}

// hubUser is the hub user name (hex public key) of a key file.
func hubUser(t *testing.T, keyFile string) string {
	t.Helper()
	out := strings.TrimSpace(mustZos(t, "key", "pub", keyFile))
	return strings.TrimPrefix(out, "ed25519:")
}

// hubRequestsByRoute sums zos_hub_requests_total per route from /metrics.
func hubRequestsByRoute(t *testing.T, hubURL string) map[string]float64 {
	t.Helper()
	resp, err := http.Get(hubURL + "/metrics")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	out := map[string]float64{}
	for _, line := range strings.Split(string(b), "\n") {
		rest, ok := strings.CutPrefix(line, "zos_hub_requests_total{")
		if !ok {
			continue
		}
		labels, val, ok := strings.Cut(rest, "} ")
		if !ok {
			continue
		}
		var route string
		for _, kv := range strings.Split(labels, ",") {
			if v, ok := strings.CutPrefix(kv, "route="); ok {
				route = strings.Trim(v, `"`)
			}
		}
		n, err := strconv.ParseFloat(strings.TrimSpace(val), 64)
		if err != nil {
			t.Fatalf("metrics line %q: %v", line, err)
		}
		out[route] += n
	}
	if len(out) == 0 {
		t.Fatalf("no zos_hub_requests_total in /metrics:\n%s", b)
	}
	return out
}
