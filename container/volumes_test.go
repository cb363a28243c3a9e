package container_test

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/zosgrid/zos/container"
	"github.com/zosgrid/zos/internal/zostest"
)

// TestHostDirVolumes: host directories are id-mapped into a user-namespaced
// container (host root's files are container root's, and what container
// root writes is host root's), :ro is read-only, and with exec verification
// nothing on a volume runs.
func TestHostDirVolumes(t *testing.T) {
	img := busyboxImage(t, "")
	r := newRuntime(t)
	rw, ro := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(ro, "ro.txt"), []byte("from host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	bb, err := os.ReadFile(filepath.Join(img, "rootfs", "bin", "busybox"))
	if err == nil {
		err = os.WriteFile(filepath.Join(rw, "bb"), bb, 0o755)
	}
	if err != nil {
		t.Fatal(err)
	}
	c := sh(`/bin/busybox stat -c '%u:%g' /ro/ro.txt; cat /ro/ro.txt
echo made > /rw/new && echo rw-written
(echo x > /ro/x) 2>/dev/null && echo ro-written || echo ro-refused
/rw/bb true 2>/dev/null; echo exec=$?`)
	c.Volumes = []container.Volume{{Source: rw, Target: "/rw"}, {Source: ro, Target: "/ro", ReadOnly: true}}
	c.ExecVerify = true
	out, st := run(t, r, img, c)
	if want := "0:0\nfrom host\nrw-written\nro-refused\nexec=126\n"; out != want || st.ExitCode != 0 {
		t.Errorf("exit %d, output %q, want %q", st.ExitCode, out, want)
	}
	fi, err := os.Stat(filepath.Join(rw, "new"))
	if err != nil {
		t.Fatal(err)
	}
	if s := fi.Sys().(*syscall.Stat_t); s.Uid != 0 || s.Gid != 0 {
		t.Errorf("container root's file is %d:%d on the host, want 0:0", s.Uid, s.Gid)
	}
	if _, err := os.Stat(filepath.Join(ro, "x")); err == nil {
		t.Error("a file was written into the read-only volume")
	}
}

// TestLogsFollow: logs -f prints what the container writes after it was
// called and returns when the container exits (at once if it never ran).
func TestLogsFollow(t *testing.T) {
	r := newRuntime(t)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	c := busyboxShell(t, "echo first; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo second")
	if err := r.Create(ctx, c); err != nil {
		t.Fatal(err)
	}
	// Never started: nothing to follow.
	if err := r.Logs(ctx, c.ID, &syncBuf{}, true); err != nil || ctx.Err() != nil {
		t.Fatalf("logs -f of a created container: %v, returned by the deadline: %v", err, ctx.Err())
	}
	if err := r.Start(ctx, c.ID); err != nil {
		t.Fatal(err)
	}
	var out syncBuf
	done := make(chan error, 1)
	go func() { done <- r.Logs(ctx, c.ID, &out, true) }()
	zostest.WaitFor(t, 20*time.Second, func() error {
		if !strings.Contains(out.String(), "first") {
			return os.ErrNotExist
		}
		return nil
	})
	if code, err := r.Exec(ctx, c.ID, container.ExecOptions{Args: []string{"touch", "/tmp/go"}}); err != nil || code != 0 {
		t.Fatalf("exec: %d %v", code, err)
	}
	if err := <-done; err != nil || out.String() != "first\nsecond\n" {
		t.Errorf("logs -f: %v, output %q", err, out.String())
	}
	if err := r.Remove(ctx, c.ID, false); err != nil {
		t.Fatal(err)
	}
}
