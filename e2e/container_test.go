//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
)

// containerImage builds a busybox bundle (rootfs/ + image.json).
func containerImage(t *testing.T) string {
	t.Helper()
	zostest.RequiresRoot(t)
	bb := zostest.RequiresBinary(t, "busybox")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "srv/svc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755)
	for _, a := range strings.Fields("sh echo cat ls sleep true false pwd id cp chmod") {
		os.Symlink("busybox", filepath.Join(root, "bin", a))
	}
	os.WriteFile(filepath.Join(root, "srv/svc/ticker.yaml"), []byte("exec: sh -c 'echo tick; exit 1'\nrestart: always\n"), 0o644)
	os.WriteFile(filepath.Join(dir, "image.json"),
		[]byte(`{"config":{"Env":["GREETING=hello"],"WorkingDir":"/srv","Cmd":["sh","-c","echo $GREETING from $(pwd)"]}}`), 0o644)
	return dir
}

// containerRoot is a state dir the container's mapped root can traverse.
func containerRoot(t *testing.T) string {
	t.Helper()
	root := t.TempDir()
	for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o711)
	}
	t.Cleanup(func() {
		out, _, _ := zos(t, "container", "--root", root, "ps", "-a")
		for _, line := range strings.Split(out, "\n")[1:] {
			if f := strings.Fields(line); len(f) > 0 {
				zos(t, "container", "--root", root, "rm", "-f", f[0])
			}
		}
	})
	return root
}

func TestContainerRunForeground(t *testing.T) {
	img := containerImage(t)
	root := containerRoot(t)
	out := mustZos(t, "container", "--root", root, "run", "--rm", img)
	if out != "hello from /srv\n" {
		t.Errorf("image config not applied: %q", out)
	}
	out, _, code := zos(t, "container", "--root", root, "run", "--rm", "-e", "X=1", "-w", "/tmp", img, "--", "sh", "-c", "echo $X $(pwd); exit 42")
	if code != 42 || out != "1 /tmp\n" {
		t.Errorf("exit %d output %q, want 42 and %q", code, out, "1 /tmp\n")
	}
	// exec verification is on by default: a copied (changed) binary is refused.
	out, _, code = zos(t, "container", "--root", root, "run", "--rm", img, "--", "sh", "-c",
		"cat /bin/busybox > /tmp/x; echo >> /tmp/x; chmod +x /tmp/x; /tmp/x echo ran; echo rc=$?")
	if code != 0 || strings.Contains(out, "ran\n") || !strings.Contains(out, "rc=126") {
		t.Errorf("exec guard: exit %d output %q", code, out)
	}
	// --rm left nothing
	if out := mustZos(t, "container", "--root", root, "ps", "-a"); strings.Count(out, "\n") != 1 {
		t.Errorf("ps -a after --rm:\n%s", out)
	}
}

func TestContainerDetachedLifecycle(t *testing.T) {
	img := containerImage(t)
	root := containerRoot(t)
	name := fmt.Sprintf("e2e%d", os.Getpid())
	z := func(args ...string) string {
		return mustZos(t, append([]string{"container", "--root", root}, args...)...)
	}
	if got := strings.TrimSpace(z("run", "-d", "--name", name, "--memory", "64M", "--pids-limit", "64", "--services", "/srv/svc", img)); got != name {
		t.Fatalf("run -d printed %q", got)
	}
	if out := z("ps"); !strings.Contains(out, name) || !strings.Contains(out, "running") {
		t.Errorf("ps:\n%s", out)
	}
	// zos init restarts the crashing service; its output reaches the logs.
	zostest.WaitFor(t, 30*time.Second, func() error {
		if n := strings.Count(z("logs", name), "ticker: tick"); n < 2 {
			return fmt.Errorf("%d ticks", n)
		}
		return nil
	})
	if out := z("exec", name, "cat", "/var/log/zos/ticker.log"); !strings.HasPrefix(out, "tick\ntick\n") {
		t.Errorf("service log file: %q", out)
	}
	var st struct {
		MemoryLimit uint64 `json:"memory_limit"`
		Pids        uint64 `json:"pids"`
	}
	if err := json.Unmarshal([]byte(z("stats", name)), &st); err != nil || st.MemoryLimit != 64<<20 || st.Pids == 0 {
		t.Errorf("stats %+v %v", st, err)
	}
	var info struct {
		Status struct {
			State string `json:"state"`
			Pid   int    `json:"pid"`
		} `json:"status"`
	}
	if err := json.Unmarshal([]byte(z("inspect", name)), &info); err != nil || info.Status.State != "running" || info.Status.Pid == 0 {
		t.Errorf("inspect %+v %v", info, err)
	}
	if _, errOut, code := zos(t, "container", "--root", root, "rm", name); code == 0 || !strings.Contains(errOut, "running") {
		t.Errorf("rm of running container: exit %d %q", code, errOut)
	}
	z("stop", "-t", "5s", name)
	if out := z("ps"); strings.Contains(out, name) {
		t.Errorf("still listed as running after stop:\n%s", out)
	}
	z("rm", name)
	if _, errOut, code := zos(t, "container", "--root", root, "inspect", name); code == 0 || !strings.Contains(errOut, "no such container") {
		t.Errorf("inspect after rm: exit %d %q", code, errOut)
	}
	b, _ := os.ReadFile("/proc/thread-self/mountinfo")
	if strings.Contains(string(b), root) {
		t.Errorf("mounts left under %s", root)
	}
}

func TestContainerBadInput(t *testing.T) {
	img := containerImage(t)
	root := containerRoot(t)
	for _, args := range [][]string{
		{"run", "--memory", "lots", img},
		{"run", "--restart", "sometimes", img},
		{"run", "-v", "relative:/x", img},
		{"run", "--name", "../evil", img},
		{"run", filepath.Join(img, "missing")},
		{"logs", "nosuch"},
	} {
		_, errOut, code := zos(t, append([]string{"container", "--root", root}, args...)...)
		if code == 0 || errOut == "" {
			t.Errorf("%v: exit %d stderr %q, want a clear error", args, code, errOut)
		}
	}
}

func TestContainerFromSignedFlist(t *testing.T) {
	img := containerImage(t)
	zostest.RequiresFUSE(t)
	root := containerRoot(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	// A library of the image that is not executable (as most are): a copy
	// of it written in the container may be opened, an altered one not.
	bb, err := os.ReadFile(filepath.Join(img, "rootfs", "bin", "busybox"))
	if err != nil {
		t.Fatal(err)
	}
	os.MkdirAll(filepath.Join(img, "rootfs", "lib"), 0o755)
	if err := os.WriteFile(filepath.Join(img, "rootfs", "lib", "data.so"), append(bb, 'L'), 0o644); err != nil {
		t.Fatal(err)
	}
	fl, keyFile, other := filepath.Join(dir, "bb.fl"), filepath.Join(dir, "k"), filepath.Join(dir, "other")
	mustZos(t, "flist", "pack", filepath.Join(img, "rootfs"), "-o", fl, "--store", "dir://"+filepath.Join(dir, "blocks"),
		"--image-config", filepath.Join(img, "image.json"))
	pub := strings.TrimSpace(mustZos(t, "key", "new", "-o", keyFile))
	otherPub := strings.TrimSpace(mustZos(t, "key", "new", "-o", other))
	mustZos(t, "flist", "sign", fl, "--key", keyFile)
	cache := filepath.Join(dir, "cache")
	z := func(args ...string) (string, string, int) {
		return zos(t, append([]string{"container", "--root", root}, args...)...)
	}
	// The image config comes from the flist; exec verification allows its programs.
	out, errOut, code := z("run", "--rm", "--trust", pub, "--cache", cache, fl)
	if code != 0 || out != "hello from /srv\n" {
		t.Fatalf("run from flist: exit %d out %q err %q", code, out, errOut)
	}
	// A file written in the container is not in the signed metadata.
	out, _, _ = z("run", "--rm", "--trust", pub, "--cache", cache, fl, "--", "sh", "-c",
		"cat /bin/busybox > /tmp/x; echo >> /tmp/x; chmod +x /tmp/x; /tmp/x echo ran; echo rc=$?")
	if strings.Contains(out, "ran\n") || !strings.Contains(out, "rc=126") {
		t.Errorf("exec guard on flist: %q", out)
	}
	out, _, _ = z("run", "--rm", "--trust", pub, "--cache", cache, fl, "--", "sh", "-c",
		"cat /lib/data.so > /tmp/y.so; cat /tmp/y.so > /dev/null && echo copy-ok; "+
			"cat /tmp/y.so > /tmp/z.so; echo >> /tmp/z.so; cat /tmp/z.so > /dev/null || echo altered-refused")
	if !strings.Contains(out, "copy-ok") || !strings.Contains(out, "altered-refused") {
		t.Errorf("library guard on flist: %q", out)
	}
	// Signed by someone else: refused before anything runs.
	if _, errOut, code := z("run", "--rm", "--trust", otherPub, "--cache", cache, fl); code == 0 || !strings.Contains(errOut, "refusing") {
		t.Errorf("untrusted flist: exit %d %q", code, errOut)
	}
	// Two containers of one flist share one mount of it.
	for _, n := range []string{"fa", "fb"} {
		if _, errOut, code := z("run", "-d", "--name", n, "--trust", pub, "--cache", cache, fl, "--", "sleep", "30"); code != 0 {
			t.Fatalf("run -d %s: %s", n, errOut)
		}
	}
	if n := containerImageMounts(root); n != 1 {
		t.Errorf("%d mounts of the flist for two containers, want 1", n)
	}
	z("rm", "-f", "fa")
	if n := containerImageMounts(root); n != 1 {
		t.Errorf("the flist mount went away while a container uses it (%d)", n)
	}
	z("rm", "-f", "fb")
	b, _ := os.ReadFile("/proc/thread-self/mountinfo")
	if strings.Contains(string(b), root) {
		t.Errorf("mounts left under %s", root)
	}
}

// containerImageMounts counts the shared image mounts under a state dir.
func containerImageMounts(root string) int {
	b, _ := os.ReadFile("/proc/thread-self/mountinfo")
	n := 0
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 4 && strings.HasPrefix(f[4], filepath.Join(root, "images")+"/") {
			n++
		}
	}
	return n
}
