package zos_test

import (
	"os/exec"
	"strings"
	"testing"
)

const module = "github.com/zosgrid/zos"

// depRule is one import boundary of ARCHITECTURE.md and of the packages'
// doc.go files: no package matching pkgs may depend on a package matching
// one of deny, except those matching allow. Patterns are import paths;
// "x/..." means x and everything below it, a leading "zos/" stands for the
// module, and "non-std" for any package outside the standard library. With
// direct, only the packages' own imports count; otherwise every transitive
// dependency does.
type depRule struct {
	pkgs, deny, allow []string
	direct            bool
	why               string
}

var depRules = []depRule{
	{pkgs: []string{"zos/resp"}, deny: []string{"zos/..."}, why: "resp sits below every zos package"},
	{pkgs: []string{"zos/zdb"}, deny: []string{"zos/zdb/...", "zos/resp"}, why: "the engine knows no server, replica or protocol"},
	{pkgs: []string{"zos/zdb/server"}, deny: []string{"zos/zdb/replica"}, why: "the replica drives the server, not the reverse"},
	{pkgs: []string{"zos/flist"}, deny: []string{"zos/flist/store", "zos/flist/pack/...", "zos/flist/mount", "github.com/hanwen/go-fuse/v2/fs"},
		why: "the format knows no store, packer or filesystem"},
	{pkgs: []string{"zos/flist/mount"}, deny: []string{"zos/flist/store", "zos/flist/pack/..."}, why: "the mount declares the store interface it needs"},
	{pkgs: []string{"zos/flist/pack"}, deny: []string{"zos/flist/store", "zos/flist/mount"}, why: "the packer declares the store interface it needs"},
	{pkgs: []string{"zos/flist/store"}, deny: []string{"zos/flist/pack/...", "zos/flist/mount", "zos/hub", "github.com/prometheus/client_golang/prometheus"},
		why: "stores are plain clients of the hub's wire types"},
	{pkgs: []string{"zos/flist/pack/oci"}, deny: []string{"zos/flist/store", "zos/flist/mount", "zos/hub/..."}, why: "import writes through the packer's interface"},
	{pkgs: []string{"zos/hub/hubapi"}, deny: []string{"zos/hub", "zos/flist/store"}, why: "the wire types are shared with clients"},
	{pkgs: []string{"zos/container/..."}, deny: []string{"zos/flist/...", "zos/network/...", "zos/provision/..."},
		why: "images come through ImageProvider, networks by netns path, and provision drives the runtime"},
	{pkgs: []string{"zos/container/supervise", "zos/container/guard"}, deny: []string{"zos/container"}, why: "the runtime uses them, not the reverse"},
	{pkgs: []string{"zos/network/..."}, deny: []string{"zos/cmd/...", "zos/provision/...", "zos/container/...", "zos/node/...", "zos/flist/...",
		"zos/zdb/...", "zos/ledger/...", "zos/relay/...", "zos/gateway/...", "zos/hub/..."}, why: "engines never import each other or services"},
	{pkgs: []string{"zos/grid"}, deny: []string{"zos/...", "non-std"}, allow: []string{"zos/key"}, why: "grid is shared: the standard library and key only"},
	{pkgs: []string{"zos/ledger"}, deny: []string{"zos/..."}, allow: []string{"zos/grid", "zos/key"}, why: "the state machine stands alone"},
	{pkgs: []string{"zos/ledger", "zos/ledger/query"}, deny: []string{"github.com/cometbft/..."}, why: "only ledger/chain may see cometbft"},
	{pkgs: []string{"zos/cmd/zos"}, deny: []string{"zos/ledger/chain", "github.com/cometbft/..."},
		why: "zos starts several times per container: CometBFT's package init (about 33 ms) stays in cmd/zos-ledger"},
	{pkgs: []string{"zos/cmd/zos-init"}, deny: []string{"zos/...", "non-std"}, allow: []string{"zos/container/supervise", "zos/internal/...", "golang.org/x/...", "gopkg.in/yaml.v3"},
		why: "every container start waits for the supervisor's start: it links the supervisor only (see cmd/zos-init)"},
	{pkgs: []string{"zos/internal/dirlock"}, deny: []string{"zos/...", "non-std"}, allow: []string{"golang.org/x/sys/unix"},
		why: "the lock helper is leaf code: the standard library and x/sys/unix only"},
	{pkgs: []string{"zos/internal/erofs"}, deny: []string{"zos/...", "non-std"}, allow: []string{"golang.org/x/sys/unix"},
		why: "the image writer is leaf code: the standard library and x/sys/unix only"},
	{pkgs: []string{"zos/ledger"}, deny: []string{"net", "os/...", "time", "math/rand/...", "crypto/rand", "syscall"}, direct: true,
		why: "the state machine must stay pure and deterministic"},
}

func TestDependencyBoundaries(t *testing.T) {
	out, err := exec.Command("go", "list", "-f", "{{.ImportPath}}|{{join .Imports \" \"}}|{{join .Deps \" \"}}", "./...").Output()
	if err != nil {
		t.Fatalf("go list: %v", err)
	}
	direct, deps := map[string][]string{}, map[string][]string{}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		f := strings.Split(line, "|")
		direct[f[0]], deps[f[0]] = strings.Fields(f[1]), strings.Fields(f[2])
	}
	for _, r := range depRules {
		matched := false
		for pkg := range deps {
			if !matchAny(pkg, r.pkgs) {
				continue
			}
			matched = true
			list := deps[pkg]
			if r.direct {
				list = direct[pkg]
			}
			for _, d := range list {
				if d != pkg && matchAny(d, r.deny) && !matchAny(d, r.allow) {
					t.Errorf("%s depends on %s: %s", pkg, d, r.why)
				}
			}
		}
		if !matched {
			t.Errorf("the rule for %v matches no package: update the table", r.pkgs)
		}
	}
}

func matchAny(path string, patterns []string) bool {
	for _, p := range patterns {
		if match(path, p) {
			return true
		}
	}
	return false
}

func match(path, pattern string) bool {
	if pattern == "non-std" {
		return strings.Contains(strings.SplitN(path, "/", 2)[0], ".")
	}
	if rest, ok := strings.CutPrefix(pattern, "zos/"); ok {
		pattern = module + "/" + rest
		if rest == "..." {
			pattern = module + "/..."
		}
	}
	if base, ok := strings.CutSuffix(pattern, "/..."); ok {
		return path == base || strings.HasPrefix(path, base+"/")
	}
	return path == pattern
}
