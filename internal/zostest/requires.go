package zostest

import (
	"os"
	"os/exec"
	"testing"
)

// RequiresRoot skips t, saying why, unless the test runs as root.
func RequiresRoot(t testing.TB) {
	t.Helper()
	if os.Geteuid() != 0 {
		t.Skip("skipped: needs root (CI runs as root)")
	}
}

// RequiresFUSE skips t unless FUSE mounts are possible: root and /dev/fuse.
func RequiresFUSE(t testing.TB) {
	t.Helper()
	RequiresRoot(t)
	if _, err := os.Stat("/dev/fuse"); err != nil {
		t.Skipf("skipped: needs /dev/fuse: %v", err)
	}
}

// RequiresNetns skips t unless network namespaces can be created: root,
// the `ip` tool and the netns proc files.
func RequiresNetns(t testing.TB) {
	t.Helper()
	RequiresRoot(t)
	if _, err := os.Stat("/proc/self/ns/net"); err != nil {
		t.Skipf("skipped: no network namespace support: %v", err)
	}
	RequiresBinary(t, "ip")
}

// RequiresBinary skips t unless every named program is on PATH, and returns
// the path of the first. `make deps` installs them all, so in CI they are there.
func RequiresBinary(t testing.TB, names ...string) string {
	t.Helper()
	first := ""
	for i, n := range names {
		p, err := exec.LookPath(n)
		if err != nil {
			t.Skipf("skipped: needs %s on PATH (make deps installs it)", n)
		}
		if i == 0 {
			first = p
		}
	}
	return first
}
