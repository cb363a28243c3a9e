//go:build e2e

package e2e

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestHelpListsEveryCommand(t *testing.T) {
	out := mustZos(t, "--help")
	for _, want := range []string{"version", "key"} {
		if !strings.Contains(out, "  "+want+" ") {
			t.Errorf("zos --help does not list %q:\n%s", want, out)
		}
	}
}

func TestVersion(t *testing.T) {
	out := mustZos(t, "version")
	if !strings.HasPrefix(out, "zos ") {
		t.Fatalf("zos version printed %q", out)
	}
}

func TestUnknownCommandFails(t *testing.T) {
	_, errOut, code := zos(t, "no-such-command")
	if code == 0 || !strings.Contains(errOut, "unknown command") {
		t.Fatalf("unknown command: exit %d, stderr %q", code, errOut)
	}
}

func TestKeyNewAndPub(t *testing.T) {
	path := filepath.Join(t.TempDir(), "id.key")
	pub := strings.TrimSpace(mustZos(t, "key", "new", "-o", path))
	if !strings.HasPrefix(pub, "ed25519:") || len(pub) != len("ed25519:")+64 {
		t.Fatalf("key new printed %q", pub)
	}
	if got := strings.TrimSpace(mustZos(t, "key", "pub", path)); got != pub {
		t.Fatalf("key pub = %q, key new printed %q", got, pub)
	}
	before, _ := os.ReadFile(path)
	if _, _, code := zos(t, "key", "new", "-o", path); code == 0 {
		t.Fatal("key new overwrote an existing key file")
	}
	after, _ := os.ReadFile(path)
	if string(before) != string(after) {
		t.Fatal("existing key file changed")
	}
}
