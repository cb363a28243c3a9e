package container

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

func writeRootfsFile(t *testing.T, rootfs, name, body string) {
	t.Helper()
	p := filepath.Join(rootfs, name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
}

func TestResolveUser(t *testing.T) {
	rootfs := t.TempDir()
	writeRootfsFile(t, rootfs, "etc/passwd", "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1001::/home/app:/bin/sh\n")
	writeRootfsFile(t, rootfs, "etc/group", "root:x:0:\napps:x:1001:\nstaff:x:50:\n")
	for spec, want := range map[string][2]int{
		"":          {0, 0},
		"1000":      {1000, 1000},
		"1000:7":    {1000, 7},
		"app":       {1000, 1001},
		"app:staff": {1000, 50},
		"app:9":     {1000, 9},
		"root":      {0, 0},
	} {
		uid, gid, err := resolveUser(rootfs, spec)
		if err != nil || uid != want[0] || gid != want[1] {
			t.Errorf("resolveUser(%q) = %d:%d, %v; want %d:%d", spec, uid, gid, err, want[0], want[1])
		}
	}
	for _, spec := range []string{"nobody", "app:nogroup", "bad user", "1:2:3", "70000", "app:70000"} {
		if _, _, err := resolveUser(rootfs, spec); !errors.Is(err, ErrInvalidConfig) {
			t.Errorf("resolveUser(%q): %v, want ErrInvalidConfig", spec, err)
		}
	}
}

// The container's writable layer can replace /etc/passwd: a symlink must
// not reach the host's files, and a FIFO must not hang the runtime.
func TestResolveUserHostileImage(t *testing.T) {
	host := t.TempDir()
	writeRootfsFile(t, host, "passwd", "app:x:4242:4242::/:/bin/sh\n")

	rootfs := t.TempDir()
	os.MkdirAll(filepath.Join(rootfs, "etc"), 0o755)
	if err := os.Symlink(filepath.Join(host, "passwd"), filepath.Join(rootfs, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	if uid, _, err := resolveUser(rootfs, "app"); err == nil {
		t.Fatalf("an absolute symlink out of the rootfs was followed: uid %d", uid)
	}

	fifo := t.TempDir()
	os.MkdirAll(filepath.Join(fifo, "etc"), 0o755)
	if err := syscall.Mkfifo(filepath.Join(fifo, "etc/passwd"), 0o644); err != nil {
		t.Fatal(err)
	}
	if _, _, err := resolveUser(fifo, "app"); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Fatalf("FIFO passwd: %v", err)
	}

	big := t.TempDir()
	writeRootfsFile(t, big, "etc/passwd", "app:x:1:1::/:/bin/sh\n"+strings.Repeat("#\n", maxIDFile))
	if _, _, err := resolveUser(big, "app"); err == nil || !strings.Contains(err.Error(), "larger") {
		t.Fatalf("oversized passwd: %v", err)
	}
}
