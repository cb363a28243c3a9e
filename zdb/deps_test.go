package zdb

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the layering of ARCHITECTURE.md: resp imports no zos
// package; the engine imports neither its server nor its replica.
func TestDeps(t *testing.T) {
	for pkg, banned := range map[string][]string{
		"github.com/zosgrid/zos/resp":       {"github.com/zosgrid/zos/"},
		"github.com/zosgrid/zos/zdb":        {"github.com/zosgrid/zos/zdb/", "github.com/zosgrid/zos/resp"},
		"github.com/zosgrid/zos/zdb/server": {"github.com/zosgrid/zos/zdb/replica"},
	} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Skipf("go list unavailable: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			if dep == pkg {
				continue
			}
			for _, b := range banned {
				if strings.HasPrefix(dep, b) || dep == strings.TrimSuffix(b, "/") {
					t.Errorf("%s imports %s", pkg, dep)
				}
			}
		}
	}
}
