package container

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the runtime independent of the other engines: images
// reach it through ImageProvider, wired in cmd/zos.
func TestDeps(t *testing.T) {
	banned := map[string]string{
		"github.com/zosgrid/zos/flist":     "images come through ImageProvider",
		"github.com/zosgrid/zos/network":   "networks are joined by netns path",
		"github.com/zosgrid/zos/provision": "provision drives the runtime, not the reverse",
	}
	for _, pkg := range []string{".", "./supervise", "./guard"} {
		out, err := exec.Command("go", "list", "-deps", pkg).Output()
		if err != nil {
			t.Skipf("go list unavailable: %v", err)
		}
		for _, dep := range strings.Fields(string(out)) {
			for b, why := range banned {
				if dep == b || strings.HasPrefix(dep, b+"/") {
					t.Errorf("%s imports %s: %s", pkg, dep, why)
				}
			}
			if pkg != "." && dep == "github.com/zosgrid/zos/container" {
				t.Errorf("%s imports the runtime", pkg)
			}
		}
	}
}
