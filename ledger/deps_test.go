package ledger

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the state machine pure: no network, files, clock,
// randomness or consensus engine in its (non-test) imports.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{.ImportPath}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	banned := []string{"net", "os", "time", "math/rand", "math/rand/v2", "crypto/rand", "syscall"}
	direct, err := exec.Command("go", "list", "-f", "{{join .Imports \" \"}}", ".").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(direct)) {
		for _, b := range banned {
			if p == "net/netip" { // address parsing only: no sockets
				continue
			}
			if p == b || strings.HasPrefix(p, b+"/") {
				t.Errorf("ledger imports %s: the state machine must stay pure", p)
			}
		}
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "cometbft") {
			t.Errorf("ledger depends on %s: only ledger/chain may see cometbft", p)
		}
		if strings.HasPrefix(p, "github.com/zosgrid/zos/") && p != "github.com/zosgrid/zos/ledger" &&
			p != "github.com/zosgrid/zos/grid" && p != "github.com/zosgrid/zos/key" {
			t.Errorf("ledger imports %s", p)
		}
	}
}
