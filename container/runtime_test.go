package container_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/container"
	"github.com/zosgrid/zos/internal/zostest"
)

type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

var nameSeq struct {
	sync.Mutex
	n int
}

func uniqueName(t testing.TB) string {
	nameSeq.Lock()
	defer nameSeq.Unlock()
	nameSeq.n++
	return fmt.Sprintf("t%d-%d", os.Getpid(), nameSeq.n)
}

// newRuntime returns a runtime on a temp state dir whose containers are
// all removed at the end (and checked to leave nothing behind).
func newRuntime(t *testing.T) *container.Runtime {
	t.Helper()
	zostest.RequiresRoot(t)
	root := t.TempDir()
	// The container's mapped root must be able to reach its rootfs.
	for d := root; d != "/" && d != os.TempDir(); d = filepath.Dir(d) {
		os.Chmod(d, 0o711)
	}
	r, err := container.New(root, "", slog.New(slog.NewTextHandler(os.Stderr, nil)), nil)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		list, _ := r.List(context.Background())
		for _, i := range list {
			if err := r.Remove(context.Background(), i.Config.ID, true); err != nil {
				t.Errorf("cleanup rm %s: %v", i.Config.ID, err)
			}
		}
	})
	return r
}

// run creates and runs a container in the foreground, returning its output and status.
func run(t *testing.T, r *container.Runtime, image string, c container.Config) (string, container.Status) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	img, err := container.DirRootfs{}.Rootfs(ctx, image)
	if err != nil {
		t.Fatal(err)
	}
	if c.ID == "" {
		c.ID = uniqueName(t)
	}
	c.Lower = img.Lower
	c.Resolve(img.Image)
	if err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	st, err := r.Supervise(ctx, c.ID, container.SuperviseOptions{Output: &out, StopOnCancel: true})
	if err != nil {
		t.Fatalf("run: %v (output %q)", err, out.String())
	}
	return out.String(), st
}

func sh(script string) container.Config {
	return container.Config{Entrypoint: []string{"/bin/sh", "-c", script}}
}

// waitLogs waits until container id's log holds want.
func waitLogs(t *testing.T, r *container.Runtime, id, want string) {
	t.Helper()
	zostest.WaitFor(t, 20*time.Second, func() error {
		var b bytes.Buffer
		r.Logs(context.Background(), id, &b, false)
		if !strings.Contains(b.String(), want) {
			return fmt.Errorf("no %q in the log yet", want)
		}
		return nil
	})
}

// busyboxShell is sh(script) as a new container of the busybox image.
func busyboxShell(t *testing.T, script string) container.Config {
	c := sh(script)
	c.ID, c.Lower = uniqueName(t), filepath.Join(busyboxImage(t, ""), "rootfs")
	return c
}

func TestRunExitCodeEnvWorkdir(t *testing.T) {
	img := busyboxImage(t, `{"config":{"Env":["FROM_IMAGE=yes"],"WorkingDir":"/etc","Cmd":["sh","-c","echo $FROM_IMAGE $EXTRA; pwd; echo gc=$GOGC$ZOS_START_GOGC_OFF; exit 7"]}}`)
	r := newRuntime(t)
	out, st := run(t, r, img, container.Config{Env: []string{"EXTRA=given"}})
	if st.ExitCode != 7 {
		t.Errorf("exit code %d, want 7 (output %q)", st.ExitCode, out)
	}
	// zos init starts with GOGC=off; the entrypoint does not inherit it.
	if out != "yes given\n/etc\ngc=\n" {
		t.Errorf("output %q", out)
	}
	// The user's cmd replaces the image's; the user's GOGC is kept.
	out, st = run(t, r, img, container.Config{Cmd: []string{"sh", "-c", "pwd; echo gc=$GOGC; exit 0"}, WorkDir: "/tmp", Env: []string{"GOGC=50"}})
	if st.ExitCode != 0 || out != "/tmp\ngc=50\n" {
		t.Errorf("override: exit %d output %q", st.ExitCode, out)
	}
}

func TestIsolation(t *testing.T) {
	img := busyboxImage(t, "")
	r := newRuntime(t)
	cases := []struct {
		name, script, want string
	}{
		// Only the container's own processes are visible: zos init as
		// pid 1, the shell, and no host process.
		{"pid namespace", "n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; [ $n -le 3 ] && head -c 9 /proc/1/cmdline", "/.zos/zos"},
		{"uid mapped", "cat /proc/self/uid_map | while read a b c; do [ $b -ne 0 ] && echo mapped; done", "mapped"},
		{"root in container", "id -u", "0"},
		{"cannot mount", "mount -t tmpfs none /tmp 2>/dev/null && echo mounted || echo denied", "denied"},
		{"cannot load modules", "insmod /bin/busybox 2>/dev/null && echo loaded || echo denied", "denied"},
		{"cannot write /proc/sys", "(echo x > /proc/sys/kernel/hostname) 2>/dev/null && echo wrote || echo denied", "denied"},
		{"no network", "ls /sys/class/net", "lo"},
		{"no_new_privs", "grep NoNewPrivs /proc/self/status | tr -d '\\t '", "NoNewPrivs:1"},
		{"seccomp on", "grep '^Seccomp:' /proc/self/status | tr -d '\\t '", "Seccomp:2"},
		{"capabilities cut", "grep CapEff /proc/self/status | tr -d '\\t '", "CapEff:00000000a80425fb"},
		{"timer_list masked", "wc -c < /proc/timer_list", "0"},
		{"hostname", "hostname", "box"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := sh(tc.script)
			c.Hostname = "box"
			out, st := run(t, r, img, c)
			if got := strings.TrimSpace(out); got != tc.want || st.ExitCode != 0 {
				t.Errorf("got %q exit %d, want %q", got, st.ExitCode, tc.want)
			}
		})
	}
}

func TestSignalStopsContainer(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	c := busyboxShell(t, "trap 'echo got TERM; exit 3' TERM; echo ready; while true; do sleep 0.05; done")
	if err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	done := make(chan container.Status, 1)
	go func() {
		st, err := r.Supervise(ctx, c.ID, container.SuperviseOptions{Output: &out, StopOnCancel: true, StopGrace: 20 * time.Second})
		if err != nil {
			t.Error(err)
		}
		done <- st
	}()
	zostest.WaitFor(t, 20*time.Second, func() error {
		if !strings.Contains(out.String(), "ready") {
			return errors.New("not ready")
		}
		return nil
	})
	cancel() // SIGTERM, forwarded by zos init to the shell
	st := <-done
	if st.ExitCode != 3 || !strings.Contains(out.String(), "got TERM") {
		t.Errorf("exit %d output %q; want the trap to run and exit 3", st.ExitCode, out.String())
	}
}

func TestMemoryLimitOOM(t *testing.T) {
	img := busyboxImage(t, "")
	r := newRuntime(t)
	// dd touches a 256 MiB buffer under a 64 MiB limit.
	c := sh("echo start; dd if=/dev/zero of=/dev/null bs=256M count=1 2>/dev/null && echo survived")
	c.MemoryBytes = 64 << 20
	out, st := run(t, r, img, c)
	if !st.OOMKilled {
		t.Errorf("not reported as OOM killed: exit %d output %q", st.ExitCode, out)
	}
	if strings.Contains(out, "survived") {
		t.Errorf("process survived the memory limit")
	}
}

func TestPidsLimit(t *testing.T) {
	img := busyboxImage(t, "")
	r := newRuntime(t)
	// Only shell builtins after the loop: forks fail once the limit is hit.
	// A child shell forks until fork fails (busybox sh then exits).
	c := sh("sh -c 'for i in 1 2 3 4 5 6 7 8 9 10 11 12 13 14 15 16 17 18 19 20 21 22 23 24 25 26 27 28 29 30; do sleep 5 & done' 2>/dev/null; " +
		"n=0; for p in /proc/[0-9]*; do n=$((n+1)); done; echo started $n; kill -9 -1; true")
	c.PidsLimit = 10
	// zos init is a Go program whose threads count against the limit;
	// the shell as PID 1 makes the count exact.
	c.NoInit = true
	out, _ := run(t, r, img, c)
	var n int
	fmt.Sscanf(strings.TrimSpace(out), "started %d", &n)
	if n == 0 || n >= 30 {
		t.Errorf("pids limit 10 let %d of 30 background processes start (output %q)", n, out)
	}
}

func TestDetachStopRemoveLeavesNothing(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	c := busyboxShell(t, "echo up; while true; do sleep 0.05; done")
	c.Volumes = []container.Volume{{SizeBytes: 8 << 20, Target: "/data"}}
	if err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	info, err := r.Inspect(ctx, c.ID)
	if err != nil || info.Status.State != container.StateRunning || !info.Supervised {
		t.Fatalf("after start: %+v %v", info, err)
	}
	cgroupDir := fmt.Sprintf("/sys/fs/cgroup/pids/zos/%s", c.ID)
	if _, err := os.Stat("/sys/fs/cgroup/cgroup.controllers"); err == nil {
		cgroupDir = "/sys/fs/cgroup/zos/" + c.ID
	}
	if _, err := os.Stat(cgroupDir); err != nil {
		t.Errorf("cgroup %s missing while running: %v", cgroupDir, err)
	}
	// exec joins the running container; the virtual disk is writable by
	// container root and its size is enforced.
	var eout syncBuf
	code, err := r.Exec(ctx, c.ID, container.ExecOptions{Stdout: &eout, Stderr: &eout, Args: []string{"sh", "-c",
		"echo hello > /data/f; cat /data/f; dd if=/dev/zero of=/data/big bs=1M count=20 2>/dev/null || echo full; exit 4"}})
	if err != nil || code != 4 || eout.String() != "hello\nfull\n" {
		t.Fatalf("exec: %d %v %q", code, err, eout.String())
	}
	if err := r.Remove(ctx, c.ID, false); !errors.Is(err, container.ErrContainerRunning) {
		t.Errorf("rm of a running container: %v, want ErrContainerRunning", err)
	}
	// Grown while it runs: online where the kernel lets this process
	// (CAP_SYS_RESOURCE; the VM test in e2e/ has it), else refused with an
	// error that says why and what to do, and nothing changed.
	err = r.GrowDisk(ctx, c.ID, "/data", 24<<20)
	if container.HasCapability(unix.CAP_SYS_RESOURCE) {
		if err != nil {
			t.Fatalf("online grow: %v", err)
		}
		eout = syncBuf{}
		code, err = r.Exec(ctx, c.ID, container.ExecOptions{Stdout: &eout, Stderr: &eout, Args: []string{"sh", "-c",
			"rm -f /data/big; dd if=/dev/zero of=/data/big bs=1M count=20 2>/dev/null && echo fits"}})
		if err != nil || code != 0 || eout.String() != "fits\n" {
			t.Errorf("after online grow: %d %v %q", code, err, eout.String())
		}
	} else {
		if !errors.Is(err, os.ErrPermission) || !strings.Contains(err.Error(), "CAP_SYS_RESOURCE") || !strings.Contains(err.Error(), "stop") {
			t.Errorf("online grow without CAP_SYS_RESOURCE: %v", err)
		}
		if info, err := r.Inspect(ctx, c.ID); err != nil || info.Config.Volumes[0].SizeBytes != 8<<20 {
			t.Errorf("a refused grow changed the config: %+v %v", info.Config.Volumes, err)
		}
	}
	waitLogs(t, r, c.ID, "up")
	if err := r.Stop(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	var logs bytes.Buffer
	if err := r.Logs(ctx, c.ID, &logs, false); err != nil || !strings.Contains(logs.String(), "up") {
		t.Errorf("logs %q %v", logs.String(), err)
	}
	// A stopped container's disk grows offline; after a restart the same
	// write fits.
	if err := r.GrowDisk(ctx, c.ID, "/data", 40<<20); err != nil {
		t.Fatal(err)
	}
	if err := r.GrowDisk(ctx, c.ID, "/data", 1<<20); !errors.Is(err, container.ErrInvalidConfig) {
		t.Errorf("shrinking a disk: %v", err)
	}
	if err := r.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	eout = syncBuf{}
	code, err = r.Exec(ctx, c.ID, container.ExecOptions{Stdout: &eout, Stderr: &eout, Args: []string{"sh", "-c",
		"rm -f /data/big; dd if=/dev/zero of=/data/big bs=1M count=20 2>/dev/null && echo fits; cat /data/f"}})
	if err != nil || code != 0 || eout.String() != "fits\nhello\n" {
		t.Errorf("after grow: %d %v %q", code, err, eout.String())
	}
	if err := r.Stop(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if err := r.Remove(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(cgroupDir); !os.IsNotExist(err) {
		t.Errorf("cgroup left behind: %v", err)
	}
	b, _ := os.ReadFile("/proc/thread-self/mountinfo")
	if strings.Contains(string(b), r.Root()) {
		t.Errorf("mounts left behind under %s", r.Root())
	}
	lo, _ := os.ReadFile("/proc/partitions")
	_ = lo
	if out, _ := osExec("losetup", "-a"); strings.Contains(out, r.Root()) {
		t.Errorf("loop device left: %s", out)
		holders, _ := osExec("sh", "-c", "grep -l disks /proc/[0-9]*/task/*/mountinfo; echo self=$PPID")
		t.Logf("holders: %s", holders)
	}
	if _, err := os.Stat(filepath.Join(r.Root(), "c", c.ID)); !os.IsNotExist(err) {
		t.Errorf("state dir left: %v", err)
	}
}

func TestExecVerify(t *testing.T) {
	img := busyboxImage(t, "")
	r := newRuntime(t)
	// A copy of the image's own busybox with one byte appended (a different
	// binary), and a script written in the container: both are refused.
	c := sh("cat /bin/busybox > /tmp/bb2; echo >> /tmp/bb2; chmod +x /tmp/bb2; /tmp/bb2 echo copied; echo copy=$?; " +
		"printf '#!/bin/sh\\necho script\\n' > /tmp/s.sh; chmod +x /tmp/s.sh; /tmp/s.sh; echo script=$?; /bin/busybox echo own")
	c.ExecVerify = true
	out, st := run(t, r, img, c)
	if strings.Contains(out, "copied") || !strings.Contains(out, "copy=126") {
		t.Errorf("copied binary was not refused: %q", out)
	}
	if strings.Contains(out, "\nscript\n") || !strings.Contains(out, "script=126") {
		t.Errorf("written script was not refused: %q", out)
	}
	if !strings.Contains(out, "own") {
		t.Errorf("the image's own binary was refused: %q", out)
	}
	if st.ExecDenied < 2 {
		t.Errorf("denied count %d, want >= 2", st.ExecDenied)
	}
	// An identical copy has the image's content: allowed.
	c = sh("cp /bin/busybox /tmp/echo; /tmp/echo same")
	c.ExecVerify = true
	if out, _ := run(t, r, img, c); strings.TrimSpace(out) != "same" {
		t.Errorf("identical copy: %q", out)
	}
}

func TestAdoptAfterSupervisorDies(t *testing.T) {
	r := newRuntime(t)
	ctx := context.Background()
	c := busyboxShell(t, "i=0; while true; do i=$((i+1)); echo tick $i; sleep 0.05; done")
	c.Restart = container.RestartPolicy{Name: "always"}
	if err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	before, _ := r.Inspect(ctx, c.ID)
	// A second supervisor is refused while the first lives.
	if _, err := r.Supervise(ctx, c.ID, container.SuperviseOptions{}); !errors.Is(err, container.ErrSupervised) {
		t.Fatalf("second supervisor: %v", err)
	}
	// The supervisor dies (as when zos restarts); the container runs on.
	p, _ := os.FindProcess(before.Status.Supervisor)
	p.Kill()
	zostest.WaitFor(t, 10*time.Second, func() error {
		if i, _ := r.Inspect(ctx, c.ID); i.Supervised {
			return errors.New("still supervised")
		}
		return nil
	})
	mid, _ := r.Inspect(ctx, c.ID)
	if mid.Status.State != container.StateRunning {
		t.Fatalf("container died with its supervisor: %+v", mid.Status)
	}
	ids, err := r.Recover(ctx)
	if err != nil || len(ids) != 1 {
		t.Fatalf("recover: %v %v", ids, err)
	}
	after, _ := r.Inspect(ctx, c.ID)
	if !after.Supervised || after.Status.Pid != before.Status.Pid || after.Status.Restarts != 0 {
		t.Errorf("not adopted in place: before %+v after %+v", before.Status, after.Status)
	}
	if ids, _ := r.Recover(ctx); len(ids) != 0 {
		t.Errorf("second recover started %v again", ids)
	}
	// The adopted container's output still reaches its log.
	zostest.WaitFor(t, 10*time.Second, func() error {
		var b bytes.Buffer
		r.Logs(ctx, c.ID, &b, false)
		n := strings.Count(b.String(), "tick")
		if n < 5 {
			return fmt.Errorf("%d ticks", n)
		}
		return nil
	})
	// Killing the init: the adopted supervisor restarts it (policy always).
	syscallKill(t, after.Status.Pid)
	zostest.WaitFor(t, 20*time.Second, func() error {
		i, _ := r.Inspect(ctx, c.ID)
		if i.Status.Restarts != 1 || i.Status.State != container.StateRunning {
			return fmt.Errorf("status %+v", i.Status)
		}
		return nil
	})
	if err := r.Stop(ctx, c.ID, 5*time.Second); err != nil {
		t.Fatal(err)
	}
	if i, _ := r.Inspect(ctx, c.ID); i.Status.State != container.StateExited {
		t.Errorf("after stop: %+v", i.Status)
	}
}

func TestCorexInContainerNetns(t *testing.T) {
	zostest.RequiresNetns(t)
	img := busyboxImage(t, "")
	svc := filepath.Join(img, "rootfs", "etc", "svc")
	os.MkdirAll(svc, 0o755)
	os.WriteFile(filepath.Join(svc, "hello.yaml"), []byte("exec: sh -c 'echo hello service; exec sleep 60'\n"), 0o644)
	r := newRuntime(t)
	ns := fmt.Sprintf("zosc%d", os.Getpid())
	if out, err := osExec("ip", "netns", "add", ns); err != nil {
		t.Fatalf("ip netns add: %v %s", err, out)
	}
	t.Cleanup(func() { osExec("ip", "netns", "del", ns) })
	osExec("ip", "-n", ns, "link", "set", "lo", "up")
	ctx := context.Background()
	c := container.Config{ID: uniqueName(t), Lower: filepath.Join(img, "rootfs"), Services: "/etc/svc",
		Corex: "127.0.0.1:8822", NetNS: "/var/run/netns/" + ns}
	if err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	tok, err := os.ReadFile(r.CorexTokenPath(c.ID))
	if err != nil {
		t.Fatal(err)
	}
	get := func(path, token string) (int, string, error) {
		conn, err := dialInNetns("/var/run/netns/"+ns, "127.0.0.1:8822")
		if err != nil {
			return 0, "", err
		}
		defer conn.Close()
		fmt.Fprintf(conn, "GET %s HTTP/1.0\r\nAuthorization: Bearer %s\r\n\r\n", path, token)
		b, _ := io.ReadAll(conn)
		var code int
		fmt.Sscanf(string(b), "HTTP/1.0 %d", &code)
		return code, string(b), nil
	}
	zostest.WaitFor(t, 20*time.Second, func() error {
		code, body, err := get("/services/hello/logs", strings.TrimSpace(string(tok)))
		if err != nil || code != 200 || !strings.Contains(body, "hello service") {
			return fmt.Errorf("%d %q %v", code, body, err)
		}
		return nil
	})
	if code, _, err := get("/services", "bad-token-bad-token"); err != nil || code != 401 {
		t.Errorf("bad token: %d %v", code, err)
	}
	// The token is not passed on to the services (only zos init's own
	// initial environment, readable by container root alone, holds it).
	var out syncBuf
	code, err := r.Exec(ctx, c.ID, container.ExecOptions{Stdout: &out, Args: []string{"sh", "-c",
		"for p in /proc/[0-9]*; do [ $p = /proc/1 ] || cat $p/environ; done 2>/dev/null | grep -c ZOS_COREX_TOKEN"}})
	if err != nil || strings.TrimSpace(out.String()) != "0" {
		t.Errorf("token visible in environments: %q %d %v", out.String(), code, err)
	}
}

// TestRestartOnFailure: on-failure restarts a failing container up to its
// retry count; the writable layer persists across restarts.
func TestRestartOnFailure(t *testing.T) {
	img := busyboxImage(t, "")
	r := newRuntime(t)
	c := sh("n=$(cat /n 2>/dev/null || echo 0); n=$((n+1)); echo $n | tee /n; [ $n -ge 4 ]")
	c.Restart = container.RestartPolicy{Name: "on-failure", MaxRetries: 2}
	out, st := run(t, r, img, c)
	if out != "1\n2\n3\n" || st.Restarts != 2 || st.ExitCode != 1 {
		t.Errorf("on-failure:2: output %q, %d restarts, exit %d; want runs 1 2 3, 2 restarts, exit 1",
			out, st.Restarts, st.ExitCode)
	}
}

// TestStopKillsAfterGrace: a container that ignores SIGTERM is killed when
// the grace period ends, and Stop returns once it is gone.
func TestStopKillsAfterGrace(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := busyboxShell(t, "trap '' TERM; echo ready; while true; do sleep 0.05; done")
	if err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	if err := r.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	waitLogs(t, r, c.ID, "ready")
	if err := r.Stop(ctx, c.ID, 200*time.Millisecond); err != nil {
		t.Fatalf("stop: %v", err)
	}
	if info, err := r.Inspect(ctx, c.ID); err != nil || info.Status.State != container.StateExited || info.Status.ExitCode != 128+9 {
		t.Errorf("after stop: %+v %v; want exited by SIGKILL (137)", info.Status, err)
	}
}
