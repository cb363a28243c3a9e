package flist_test

import (
	"os/exec"
	"strings"
	"testing"
)

// TestDeps keeps the flist boundaries of ARCHITECTURE.md: the format knows
// no store, packer or filesystem; the mount and the packer know no store
// (they declare the one-method interfaces they need).
func TestDeps(t *testing.T) {
	banned := map[string][]string{
		"github.com/zosgrid/zos/flist":       {"github.com/zosgrid/zos/flist/store", "github.com/zosgrid/zos/flist/pack", "github.com/zosgrid/zos/flist/mount", "github.com/hanwen/go-fuse/v2/fs"},
		"github.com/zosgrid/zos/flist/mount": {"github.com/zosgrid/zos/flist/store", "github.com/zosgrid/zos/flist/pack"},
		"github.com/zosgrid/zos/flist/pack":  {"github.com/zosgrid/zos/flist/store", "github.com/zosgrid/zos/flist/mount"},
		"github.com/zosgrid/zos/flist/store": {"github.com/zosgrid/zos/flist/pack", "github.com/zosgrid/zos/flist/mount"},
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
