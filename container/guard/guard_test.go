package guard

import (
	"os"
	"os/exec"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/zostest"
)

func TestGuardOnTmpfs(t *testing.T) {
	zostest.RequiresRoot(t)
	bb := zostest.RequiresBinary(t, "busybox")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("skipped: cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "echo")
	os.WriteFile(good, b, 0o755)
	allowed, err := HashTree(dir)
	if err != nil || len(allowed) != 1 {
		t.Fatalf("HashTree: %v %d", err, len(allowed))
	}
	bad := filepath.Join(dir, "bad", "echo")
	os.MkdirAll(filepath.Dir(bad), 0o755)
	os.WriteFile(bad, append(b, '\n'), 0o755)
	g, err := Start(dir, nil, allowed, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if out, err := exec.Command(good, "ok").CombinedOutput(); err != nil || string(out) != "ok\n" {
		t.Errorf("allowed binary: %v %q", err, out)
	}
	if err := exec.Command(bad, "no").Run(); err == nil {
		t.Error("a binary not in the allowed set ran")
	}
	if g.Denied() != 1 || g.Allowed() != 1 {
		t.Errorf("denied %d allowed %d", g.Denied(), g.Allowed())
	}
	// Rewriting the allowed file changes its content: denied from then on.
	os.WriteFile(good, append(b, 'x'), 0o755)
	if err := exec.Command(good, "x").Run(); err == nil {
		t.Error("modified binary ran")
	}
}
