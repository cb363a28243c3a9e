package hub_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the hub's boundaries: the importer is an engine that knows
// no store or service; the wire contract and the store client never pull in
// the server.
func TestDeps(t *testing.T) {
	banned := map[string][]string{
		"github.com/zosgrid/zos/flist/pack/oci": {"github.com/zosgrid/zos/flist/store", "github.com/zosgrid/zos/flist/mount", "github.com/zosgrid/zos/hub"},
		"github.com/zosgrid/zos/hub/hubapi":     {"github.com/zosgrid/zos/hub", "github.com/zosgrid/zos/flist/store"},
		"github.com/zosgrid/zos/flist/store":    {"github.com/zosgrid/zos/hub", "github.com/prometheus/client_golang/prometheus"},
	}
	for pkg, bad := range banned {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Fatalf("go list %s: %v", pkg, err)
		}
		deps := map[string]bool{}
		for _, d := range strings.Fields(string(out)) {
			deps[d] = true
		}
		for _, b := range bad {
			if deps[b] {
				t.Errorf("%s imports %s", pkg, b)
			}
		}
	}
}
