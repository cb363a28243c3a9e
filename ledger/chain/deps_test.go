package chain

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps: only ledger/chain (and what wires it) may see cometbft; the
// query API does not.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "../query", "..").Output()
	if err != nil {
		t.Fatal(err)
	}
	for _, p := range strings.Fields(string(out)) {
		if strings.Contains(p, "cometbft") {
			t.Errorf("ledger or ledger/query depends on %s", p)
		}
	}
}
