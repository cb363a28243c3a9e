package network

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the network engine below the services: it imports no other
// engine and nothing from cmd or the services that wire it.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "./...").CombinedOutput()
	if err != nil {
		t.Fatalf("go list: %v\n%s", err, out)
	}
	banned := []string{"/cmd/", "/provision", "/container", "/node", "/flist", "/zdb", "/ledger", "/relay", "/gateway", "/hub"}
	for _, dep := range strings.Fields(string(out)) {
		if !strings.HasPrefix(dep, "github.com/zosgrid/zos") {
			continue
		}
		for _, b := range banned {
			if strings.Contains(strings.TrimPrefix(dep, "github.com/zosgrid/zos"), b) {
				t.Errorf("network imports %s", dep)
			}
		}
	}
}
