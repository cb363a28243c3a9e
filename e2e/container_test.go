//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
)

// containerImage builds a minimal busybox bundle (rootfs/ + image.json) for
// the tests of the command line; containers run from hub images below.
func containerImage(t *testing.T) string {
	t.Helper()
	zostest.RequiresRoot(t)
	bb := zostest.RequiresBinary(t, "busybox")
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	root := filepath.Join(dir, "rootfs")
	if err := os.MkdirAll(filepath.Join(root, "bin"), 0o755); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755)
	os.Symlink("busybox", filepath.Join(root, "bin", "sh"))
	os.WriteFile(filepath.Join(dir, "image.json"), []byte(`{"config":{"Cmd":["sh","-c","echo hello"]}}`), 0o644)
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

// TestContainerInitIsZosInit: make build puts zos-init beside zos, and the
// runtime mounts it, not zos, as the containers' supervisor; it supervises
// and execs like zos init.
func TestContainerInitIsZosInit(t *testing.T) {
	img := containerImage(t)
	root := containerRoot(t)
	st, err := os.Stat(filepath.Join(filepath.Dir(zosBin(t)), "zos-init"))
	if err != nil {
		t.Fatalf("make build left no zos-init beside zos: %v", err)
	}
	out := mustZos(t, "container", "--root", root, "run", "--rm", img, "--", "/bin/busybox", "wc", "-c", "/.zos/zos")
	if f := strings.Fields(out); len(f) == 0 || f[0] != fmt.Sprint(st.Size()) {
		t.Errorf("the container's init is %q bytes, zos-init %d", out, st.Size())
	}
	if out := mustZos(t, "container", "--root", root, "run", "--rm", "--no-init", img, "--", "/bin/busybox", "echo", "exec'd"); out != "exec'd\n" {
		t.Errorf("--no-init output %q", out)
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

// hubContainers runs containers from images a node got from the hub: signed
// flists whose blocks are read from the hub's http store through one
// node-wide cache.
type hubContainers struct {
	root, cache, pub string
	busybox, debian  string // .fl files downloaded from the hub
	debianURL        string // the Debian flist's URL on the hub, by tag
}

func newHubContainers(t *testing.T) *hubContainers {
	t.Helper()
	zostest.RequiresRoot(t)
	zostest.RequiresFUSE(t)
	busybox, debian := containerBusyboxImage(t), debianImage(t)
	reg, _ := hubRegistry(t, "", "")
	hubURL := hubServe(t)
	dir := t.TempDir()
	os.Chmod(dir, 0o755)
	keyFile := filepath.Join(dir, "publisher.key")
	h := &hubContainers{root: containerRoot(t), cache: filepath.Join(dir, "cache")}
	h.pub = strings.TrimSpace(mustZos(t, "key", "new", "-o", keyFile))
	h.busybox = hubPublish(t, reg, hubURL, keyFile, "busybox:1", busybox, dir)
	h.debian = hubPublish(t, reg, hubURL, keyFile, "debian:12", debian, dir)
	h.debianURL = hubURL + "/api/v1/flists/" + hubUser(t, keyFile) + "/debian:12"
	return h
}

// z runs `zos container --root ROOT args...`.
func (h *hubContainers) z(t *testing.T, args ...string) (string, string, int) {
	t.Helper()
	return zos(t, append([]string{"container", "--root", h.root}, args...)...)
}

// run is `zos container run` of image fl, trusting the publisher's key and
// reading through the node cache; flags go before the image, cmd after it.
func (h *hubContainers) run(t *testing.T, flags []string, fl string, cmd ...string) (string, string, int) {
	t.Helper()
	args := append(append([]string{"run", "--trust", h.pub, "--cache", h.cache}, flags...), fl)
	if len(cmd) > 0 {
		args = append(append(args, "--"), cmd...)
	}
	return h.z(t, args...)
}

// inspect returns the status of a container.
func (h *hubContainers) inspect(t *testing.T, name string) (state string, exitCode int, oom bool) {
	t.Helper()
	out, errOut, code := h.z(t, "inspect", name)
	var info struct {
		Status struct {
			State     string `json:"state"`
			ExitCode  int    `json:"exit_code"`
			OOMKilled bool   `json:"oom_killed"`
		} `json:"status"`
	}
	if code != 0 || json.Unmarshal([]byte(out), &info) != nil {
		t.Fatalf("inspect %s: exit %d: %s%s", name, code, out, errOut)
	}
	return info.Status.State, info.Status.ExitCode, info.Status.OOMKilled
}

// TestContainerHubImages runs a busybox and a small dynamically linked Debian
// image, imported by the hub, and checks the image config, exit codes,
// signals, isolation, limits, the exec guard and that rm leaves nothing.
func TestContainerHubImages(t *testing.T) {
	h := newHubContainers(t)
	names := map[string]bool{} // every container run, for the leak checks
	name := func(s string) string {
		n := fmt.Sprintf("e2e%d-%s", os.Getpid(), s)
		names[n] = true
		return n
	}

	t.Run("debian image config", func(t *testing.T) {
		// Cmd, Env, WorkingDir and User from the image; id resolves the
		// user through the image's own libc and /etc/passwd.
		out, errOut, code := h.run(t, []string{"--rm"}, h.debian)
		lines := strings.Split(out, "\n")
		if code != 0 || len(lines) < 3 || !strings.HasPrefix(lines[0], "uid=1000(app) gid=1000(app)") ||
			lines[1] != "/home/app" || lines[2] != "GREETING=hallo from debian" {
			t.Errorf("exit %d, output %q (stderr %q), want id of app, /home/app and the image's GREETING", code, out, errOut)
		}
		// Flags override the image config; the entrypoint's exit code is ours.
		out, errOut, code = h.run(t, []string{"--rm", "-u", "0", "-w", "/tmp", "-e", "GREETING=given"}, h.debian,
			"/bin/sh", "-c", `id -u; pwd; echo "$GREETING"; exit 42`)
		if code != 42 || out != "0\n/tmp\ngiven\n" {
			t.Errorf("exit %d output %q (stderr %q), want 42 and %q", code, out, errOut, "0\n/tmp\ngiven\n")
		}
	})

	t.Run("busybox isolation and exec guard", func(t *testing.T) {
		// The image's entrypoint is `sh -c`: the cmd is a script.
		out, errOut, code := h.run(t, []string{"--rm"}, h.busybox, fmt.Sprintf(`echo "$GREETING in $(pwd)"
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo processes=$n
[ -e /proc/%d ] && echo host-process-visible
mount -t tmpfs none /tmp 2>/dev/null && echo mount=allowed || echo mount=denied
insmod /bin/busybox 2>/dev/null && echo insmod=allowed || echo insmod=denied
(echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo proc-sys=allowed || echo proc-sys=denied
cat /bin/busybox > /tmp/x; echo >> /tmp/x; chmod +x /tmp/x; /tmp/x echo copied-ran; echo copied=$?
/bin/busybox echo own-ran
exit 3`, os.Getpid()))
		if code != 3 {
			t.Errorf("exit %d, want 3 (stderr %q)", code, errOut)
		}
		procs := countAfter(out, "processes=")
		// zos init and the shell: no process of the host.
		if procs < 1 || procs > 3 || strings.Contains(out, "host-process-visible") {
			t.Errorf("the container sees %d processes or host ones:\n%s", procs, out)
		}
		for _, want := range []string{"hello world in /opt\n", "mount=denied\n", "insmod=denied\n", "proc-sys=denied\n", "copied=126\n", "own-ran\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "copied-ran") {
			t.Errorf("a binary written into the container ran:\n%s", out)
		}
	})

	t.Run("debian exec guard", func(t *testing.T) {
		// The image's dynamically linked programs run (kernel exec of the
		// loader, libc mapped), directly and through the loader, as does an
		// identical copy; an altered copy is refused either way, and so is
		// opening an altered copy of libc.
		out, errOut, code := h.run(t, []string{"--rm"}, h.debian, "/bin/sh", "-c", `
cat /etc/group > /dev/null && echo own=ok
/lib64/ld-linux-x86-64.so.2 /bin/cat /etc/group > /dev/null && echo own-via-loader=ok
cd /tmp
cat /bin/cat > same; chmod +x same; ./same /etc/group > /dev/null && echo same-copy=ok
cat /bin/cat > altered; echo >> altered; chmod +x altered; ./altered /etc/group; echo altered=$?
/lib64/ld-linux-x86-64.so.2 /tmp/altered /etc/group; echo altered-via-loader=$?
cat /lib/x86_64-linux-gnu/libc.so.6 > libc.so; cat libc.so > /dev/null && echo libc-copy=ok
cat libc.so > evil.so; echo >> evil.so; cat evil.so > /dev/null 2>&1 || echo altered-libc=refused
`)
		if code != 0 {
			t.Errorf("exit %d (stderr %q)", code, errOut)
		}
		for _, want := range []string{"own=ok\n", "own-via-loader=ok\n", "same-copy=ok\n", "altered=126\n", "altered-via-loader=127\n",
			"libc-copy=ok\n", "altered-libc=refused\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q:\n%s", want, out)
			}
		}
		if strings.Contains(out, "root:x:0:") {
			t.Errorf("an altered binary printed /etc/group:\n%s", out)
		}
		// The image's own programs run unhashed from the flist mount; once
		// copied up into the writable layer (same content after a chmod,
		// then altered in place) they are checked like any other file.
		out, errOut, _ = h.run(t, []string{"--rm", "-u", "0"}, h.debian, "/bin/sh", "-c", `
chmod 700 /bin/ls && ls / > /dev/null && echo copied-up-own=ok
echo >> /bin/cat; cat /etc/group; echo altered-in-place=$?
`)
		for _, want := range []string{"copied-up-own=ok\n", "altered-in-place=126\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("output lacks %q (stderr %q):\n%s", want, errOut, out)
			}
		}
		if strings.Contains(out, "root:x:0:") {
			t.Errorf("a binary altered in place printed /etc/group:\n%s", out)
		}
	})

	t.Run("limits", func(t *testing.T) {
		// 60 sleeps under a pids limit of 32 (zos init's threads count too),
		// then 128 MiB touched under a memory limit of 32 MiB.
		n := name("limits")
		out, errOut, code := h.run(t, []string{"--name", n, "--memory", "32M", "--pids-limit", "32"}, h.busybox,
			`sh -c 'i=0; while [ $i -lt 60 ]; do sleep 30 & i=$((i+1)); done' 2>/dev/null
n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo processes=$n; kill -9 -1
dd if=/dev/zero of=/dev/null bs=128M count=1 2>/dev/null && echo survived`)
		procs := countAfter(out, "processes=")
		if procs < 3 || procs >= 60 {
			t.Errorf("pids limit 32 let %d processes run (output %q)", procs, out)
		}
		if code == 0 || strings.Contains(out, "survived") || !strings.Contains(errOut, "out of memory") {
			t.Errorf("memory limit: exit %d, output %q, stderr %q", code, out, errOut)
		}
		if state, exit, oom := h.inspect(t, n); state != "exited" || exit == 0 || !oom {
			t.Errorf("inspect: state %s exit %d oom_killed %v, want exited, non-zero, true", state, exit, oom)
		}
		h.z(t, "rm", n)
	})

	t.Run("detached: services, stop signal, stats, rm", func(t *testing.T) {
		svc, sig := name("svc"), name("sig")
		z := func(args ...string) string {
			t.Helper()
			out, errOut, code := h.z(t, args...)
			if code != 0 {
				t.Fatalf("zos container %v: exit %d: %s%s", args, code, out, errOut)
			}
			return out
		}
		if out, errOut, code := h.run(t, []string{"-d", "--name", svc, "--services", "/srv/svc", "--memory", "64M", "--pids-limit", "64",
			"-v", "8M:/data"}, h.busybox); code != 0 || strings.TrimSpace(out) != svc {
			t.Fatalf("run -d: exit %d %q %s", code, out, errOut)
		}
		if _, errOut, code := h.run(t, []string{"-d", "--name", sig}, h.busybox,
			`trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.05; done`); code != 0 {
			t.Fatalf("run -d: exit %d %s", code, errOut)
		}
		// Two containers of one flist share one mount of it.
		if n := containerImageMounts(h.root); n != 1 {
			t.Errorf("%d mounts of the flist for two containers, want 1", n)
		}
		if out := z("ps"); !strings.Contains(out, svc) || !strings.Contains(out, sig) {
			t.Errorf("ps:\n%s", out)
		}
		// zos init restarts the crashing service; its output reaches the logs.
		zostest.WaitFor(t, 30*time.Second, func() error {
			if n := strings.Count(z("logs", svc), "ticker: tick"); n < 2 {
				return fmt.Errorf("%d ticks", n)
			}
			return nil
		})
		if out := z("exec", svc, "cat", "/var/log/zos/ticker.log"); !strings.HasPrefix(out, "tick\ntick\n") {
			t.Errorf("service log file: %q", out)
		}
		if out := z("exec", svc, "sh", "-c", "echo kept > /data/f; cat /data/f"); out != "kept\n" {
			t.Errorf("virtual disk: %q", out)
		}
		var st struct {
			MemoryLimit uint64 `json:"memory_limit"`
			Pids        uint64 `json:"pids"`
			PidsLimit   uint64 `json:"pids_limit"`
		}
		if err := json.Unmarshal([]byte(z("stats", svc)), &st); err != nil || st.MemoryLimit != 64<<20 || st.PidsLimit != 64 || st.Pids == 0 {
			t.Errorf("stats %+v %v", st, err)
		}
		if _, errOut, code := h.z(t, "rm", svc); code == 0 || !strings.Contains(errOut, "running") {
			t.Errorf("rm of a running container: exit %d %q", code, errOut)
		}
		// stop delivers SIGTERM to the entrypoint (through zos init).
		zostest.WaitFor(t, 20*time.Second, func() error {
			if !strings.Contains(z("logs", sig), "ready") {
				return fmt.Errorf("not ready")
			}
			return nil
		})
		z("stop", "-t", "20s", sig)
		if state, exit, _ := h.inspect(t, sig); state != "exited" || exit != 3 || !strings.Contains(z("logs", sig), "got TERM") {
			t.Errorf("after stop: state %s exit %d logs %q; want the trap to run and exit 3", state, exit, z("logs", sig))
		}
		z("rm", sig)
		if n := containerImageMounts(h.root); n != 1 {
			t.Errorf("the flist mount went away while a container uses it (%d)", n)
		}
		z("stop", "-t", "5s", svc)
		z("rm", svc)
		if _, errOut, code := h.z(t, "inspect", svc); code == 0 || !strings.Contains(errOut, "no such container") {
			t.Errorf("inspect after rm: exit %d %q", code, errOut)
		}
	})

	t.Run("run by hub URL", func(t *testing.T) {
		out, errOut, code := h.run(t, []string{"--rm"}, h.debianURL, "id")
		if code != 0 || !strings.HasPrefix(out, "uid=1000(app)") {
			t.Errorf("run %s: exit %d, output %q (stderr %q)", h.debianURL, code, out, errOut)
		}
		missing := strings.TrimSuffix(h.debianURL, "debian:12") + "no-such:1"
		if _, errOut, code := h.run(t, []string{"--rm"}, missing, "id"); code == 0 || !strings.Contains(errOut, "404") {
			t.Errorf("run of a missing hub flist: exit %d, stderr %q", code, errOut)
		}
		// Downloads: none left by --rm or by a refused run; a stopped
		// container keeps its own; prune removes only what nothing uses.
		downloads := func() []string {
			fl, _ := filepath.Glob(filepath.Join(h.root, "images", "*.fl"))
			return fl
		}
		if fl := downloads(); len(fl) != 0 {
			t.Errorf("downloads left by run --rm: %v", fl)
		}
		other := strings.TrimSpace(mustZos(t, "key", "new", "-o", filepath.Join(t.TempDir(), "other.key")))
		if _, errOut, code := h.z(t, "run", "--rm", "--trust", other, h.debianURL); code == 0 || len(downloads()) != 0 {
			t.Errorf("refused run by URL: exit %d, stderr %q, downloads left %v", code, errOut, downloads())
		}
		kept := name("url")
		if _, errOut, code := h.run(t, []string{"--name", kept}, h.debianURL, "id"); code != 0 || len(downloads()) != 1 {
			t.Fatalf("run by URL: exit %d %s, downloads %v", code, errOut, downloads())
		}
		used := downloads()[0]
		stray := filepath.Join(h.root, "images", strings.Repeat("ab", 32)+".fl")
		if err := os.WriteFile(stray, make([]byte, 3000), 0o600); err != nil {
			t.Fatal(err)
		}
		out, errOut, code = h.z(t, "prune")
		if code != 0 || out != "deleted "+stray+" (2.9 KiB)\nTotal reclaimed space: 2.9 KiB\n" {
			t.Errorf("prune: exit %d, output %q (stderr %q)", code, out, errOut)
		}
		if fl := downloads(); len(fl) != 1 || fl[0] != used {
			t.Errorf("after prune: %v, want the stopped container's %s", fl, used)
		}
		h.z(t, "rm", kept)
		if fl := downloads(); len(fl) != 0 {
			t.Errorf("downloads left by rm of the last container: %v", fl)
		}
	})

	t.Run("untrusted flist refused", func(t *testing.T) {
		other := strings.TrimSpace(mustZos(t, "key", "new", "-o", filepath.Join(t.TempDir(), "other.key")))
		if _, errOut, code := h.z(t, "run", "--rm", "--trust", other, "--cache", h.cache, h.busybox); code == 0 || !strings.Contains(errOut, "refusing") {
			t.Errorf("flist signed by another key: exit %d %q", code, errOut)
		}
	})

	t.Run("refused container releases its image", func(t *testing.T) {
		// run mounts the image while it checks and records the container;
		// a container refused meanwhile leaves no mount (no other container
		// uses the image now).
		if _, errOut, code := h.run(t, []string{"--rm", "-w", "relative"}, h.busybox); code == 0 || !strings.Contains(errOut, "absolute") {
			t.Errorf("relative workdir: exit %d %q, want a refusal", code, errOut)
		}
		if b, _ := os.ReadFile("/proc/thread-self/mountinfo"); strings.Contains(string(b), h.root) {
			t.Errorf("mounts left under %s by a refused container", h.root)
		}
	})

	// Nothing is left: no container, mount, loop device, cgroup or process.
	if out, _, _ := h.z(t, "ps", "-a"); strings.Count(out, "\n") != 1 {
		t.Errorf("ps -a after rm:\n%s", out)
	}
	if b, _ := os.ReadFile("/proc/thread-self/mountinfo"); strings.Contains(string(b), h.root) {
		t.Errorf("mounts left under %s", h.root)
	}
	if out, _ := exec.Command("losetup", "-a").CombinedOutput(); strings.Contains(string(out), h.root) {
		t.Errorf("loop devices left:\n%s", out)
	}
	for n := range names {
		left, _ := filepath.Glob("/sys/fs/cgroup/*/zos/" + n)
		if _, err := os.Stat("/sys/fs/cgroup/zos/" + n); err == nil {
			left = append(left, "/sys/fs/cgroup/zos/"+n)
		}
		if len(left) > 0 {
			t.Errorf("cgroups left: %v", left)
		}
	}
	zostest.WaitFor(t, 10*time.Second, func() error {
		if p := processesMentioning(h.root); len(p) > 0 {
			return fmt.Errorf("processes left: %v", p)
		}
		return nil
	})
	if entries, _ := os.ReadDir(h.cache); len(entries) == 0 {
		t.Errorf("the node cache %s is empty: blocks were not read through it", h.cache)
	}
}

// processesMentioning lists the command lines of processes that have s in them.
func processesMentioning(s string) []string {
	var found []string
	cmdlines, _ := filepath.Glob("/proc/[0-9]*/cmdline")
	for _, p := range cmdlines {
		b, _ := os.ReadFile(p)
		if cmd := strings.ReplaceAll(string(b), "\x00", " "); strings.Contains(cmd, s) {
			found = append(found, cmd)
		}
	}
	return found
}

// countAfter reads the number after label in out (0 if absent).
func countAfter(out, label string) int {
	var n int
	if i := strings.Index(out, label); i >= 0 {
		fmt.Sscanf(out[i+len(label):], "%d", &n)
	}
	return n
}
