package grid

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps grid a shared leaf: it imports no engine, service or chain
// package, only the standard library and key.
func TestDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", "-f", "{{if not .Standard}}{{.ImportPath}}{{end}}", ".").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	for _, p := range strings.Fields(string(out)) {
		switch {
		case p == "github.com/zosgrid/zos/grid", p == "github.com/zosgrid/zos/key":
		case strings.HasPrefix(p, "github.com/zosgrid/zos/"):
			t.Errorf("grid imports %s: grid must not depend on other zos packages", p)
		default:
			t.Errorf("grid imports %s: grid uses the standard library and key only", p)
		}
	}
}
