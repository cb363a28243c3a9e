//go:build e2e

package e2e

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/freeport"
	"github.com/zosgrid/zos/internal/zostest"
)

// ledgerBasePort reserves n consecutive ports on loopback until the test
// ends (see freePort) and returns the first.
func ledgerBasePort(t *testing.T, n int) int {
	t.Helper()
	for range 50 {
		base := 20000 + rand.IntN(30000)
		var held []*freeport.Reservation
		for p := base; p < base+n; p++ {
			r, err := freeport.Reserve("127.0.0.1", p)
			if err != nil {
				break
			}
			held = append(held, r)
		}
		if len(held) == n {
			t.Cleanup(func() {
				for _, r := range held {
					r.Release()
				}
			})
			return base
		}
		for _, r := range held {
			r.Release()
		}
	}
	t.Fatal("no run of free ports")
	return 0
}

type ledgerStatus struct {
	ChainID string `json:"chain_id"`
	Height  int64  `json:"height"`
	AppHash string `json:"app_hash"`
}

func ledgerQuery(t *testing.T, api, path string, out any) error {
	t.Helper()
	stdout, stderr, code := zos(t, "ledger", "query", "--ledger", api, path)
	if code != 0 {
		return fmt.Errorf("query %s: %s", path, stderr)
	}
	return json.Unmarshal([]byte(stdout), out)
}

func ledgerHeight(t *testing.T, api string) int64 {
	var st ledgerStatus
	if err := ledgerQuery(t, api, "/status", &st); err != nil {
		return -1
	}
	return st.Height
}

// TestLedgerFourValidators: four validators on loopback commit
// transactions; with one killed the other three keep committing; the
// killed one, restarted, replays its blocks and catches up to the same state.
// waitHeight waits until the ledger at each of apis has applied block h.
func waitHeight(t *testing.T, timeout time.Duration, h int64, apis ...string) {
	t.Helper()
	zostest.WaitFor(t, timeout, func() error {
		for _, api := range apis {
			if got := ledgerHeight(t, api); got < h {
				return fmt.Errorf("ledger %s at height %d, want %d", api, got, h)
			}
		}
		return nil
	})
}

func TestLedgerFourValidators(t *testing.T) {
	dir := t.TempDir()
	alice := filepath.Join(dir, "alice.key")
	mustZos(t, "key", "new", "-o", alice)
	base := ledgerBasePort(t, 12)
	mustZos(t, "ledger", "testnet", "--validators", "4", "--out", dir, "--base-port", fmt.Sprint(base),
		"--timeout-commit", "100ms", "--fund", alice+"=1000000000", "--chain-id", "e2e-4")
	var vals [4]*service
	api := func(i int) string { return fmt.Sprintf("127.0.0.1:%d", base+3*i+2) }
	start := func(i int) {
		vals[i] = startZos(t, "ledger", "start", "--home", filepath.Join(dir, fmt.Sprintf("v%d", i)), "--http", api(i))
	}
	for i := range vals {
		start(i)
	}
	for i := range vals {
		waitTCP(t, vals[i], api(i))
	}
	waitHeight(t, 60*time.Second, 3, api(0), api(1), api(2), api(3))
	mustZos(t, "twin", "create", "--key", alice, "--ledger", api(1))

	// Kill validator 3 outright: no clean shutdown.
	if err := vals[3].cmd.Process.Kill(); err != nil {
		t.Fatal(err)
	}
	<-vals[3].done
	vals[3].done <- nil
	h0 := ledgerHeight(t, api(0))
	// First the chain must go on without it: three of four validators
	// still commit, after a few rounds whose proposer was the dead one.
	// Waiting here tells a halt apart from a lost transaction.
	waitHeight(t, 60*time.Second, h0+2, api(0), api(1), api(2))
	h0 = ledgerHeight(t, api(0))
	mustZos(t, "farm", "create", "--key", alice, "--ledger", api(0), "--name", "farm1", "--ip", "185.69.166.10/24@185.69.166.1")
	// Validator 2 may not have the farm's block yet and hand out the nonce
	// it used: the contract's submit learns so at that block and the client
	// signs again with the next nonce (this once hung the submit for 30 s).
	mustZos(t, "contract", "create", "--key", alice, "--ledger", api(2), "--name", "web")
	waitHeight(t, 30*time.Second, h0+5, api(0), api(1), api(2))

	// Bring it back: it replays its own blocks, fetches the rest from its
	// peers and reaches the others' state.
	start(3)
	waitTCP(t, vals[3], api(3))
	waitHeight(t, 60*time.Second, ledgerHeight(t, api(0)), api(3))
	var f0, f3 []map[string]any
	if err := ledgerQuery(t, api(0), "/farms", &f0); err != nil {
		t.Fatal(err)
	}
	if err := ledgerQuery(t, api(3), "/farms", &f3); err != nil {
		t.Fatal(err)
	}
	if len(f3) != 1 || fmt.Sprint(f0) != fmt.Sprint(f3) {
		t.Fatalf("farms differ after catch-up:\n%v\n%v", f0, f3)
	}
	// Same height, same app hash (poll until both report one height).
	zostest.WaitFor(t, 30*time.Second, func() error {
		var a, b ledgerStatus
		if err := ledgerQuery(t, api(0), "/status", &a); err != nil {
			return err
		}
		if err := ledgerQuery(t, api(3), "/status", &b); err != nil {
			return err
		}
		if a.Height != b.Height {
			return fmt.Errorf("heights %d and %d", a.Height, b.Height)
		}
		if a.AppHash != b.AppHash {
			t.Fatalf("height %d: app hash %s vs %s", a.Height, a.AppHash, b.AppHash)
		}
		return nil
	})
	// And it votes again: the chain still commits with validator 0 gone.
	vals[0].stop(t)
	waitHeight(t, 30*time.Second, ledgerHeight(t, api(1))+3, api(3))
}

// TestLedgerCLI walks a user's path on one embedded validator: twins, a
// farm, a node, a contract from a deployment file, queries, an estimate and
// a cancellation; bad input gets a clear error.
func TestLedgerCLI(t *testing.T) {
	dir := t.TempDir()
	keys := map[string]string{}
	for _, n := range []string{"alice", "farmer", "node"} {
		keys[n] = filepath.Join(dir, n+".key")
		mustZos(t, "key", "new", "-o", keys[n])
	}
	home := filepath.Join(dir, "home")
	apiPort, p2p := freePort(t), freePort(t)
	api := fmt.Sprintf("127.0.0.1:%d", apiPort)
	mustZos(t, "ledger", "init", "--home", home, "--timeout-commit", "100ms", "--rpc", "",
		"--p2p", fmt.Sprintf("tcp://127.0.0.1:%d", p2p), "--http", api,
		"--fund", keys["alice"]+"=1000000000", "--fund", keys["farmer"]+"=1000000", "--fund", keys["node"]+"=1000000")
	if _, stderr, code := zos(t, "ledger", "init", "--home", home); code == 0 || !strings.Contains(stderr, "refusing") {
		t.Fatalf("second init: %d %s", code, stderr)
	}
	s := startZos(t, "ledger", "start", "--home", home, "--http", api)
	waitTCP(t, s, api)
	tx := func(args ...string) string { return mustZos(t, append(args, "--ledger", api)...) }
	tx("twin", "create", "--key", keys["alice"])
	tx("twin", "create", "--key", keys["farmer"])
	tx("twin", "create", "--key", keys["node"])
	tx("farm", "create", "--key", keys["farmer"], "--name", "farm1", "--ip", "185.69.166.10/24@185.69.166.1")
	tx("node", "register", "--key", keys["node"], "--farm", "1", "--cru", "8", "--mru", "32G", "--sru", "1T", "--country", "BE")
	dep := filepath.Join(dir, "dep.json")
	os.WriteFile(dep, []byte(`{"version":0,"twin_id":1,"signature_requirement":{"requests":[{"twin_id":1,"required":true,"weight":1}],"weight_required":1},
"workloads":[{"name":"vol","type":"volume","data":{"size":10737418240}},{"name":"ip","type":"ip","data":{"v4":true}},
{"name":"vm","type":"zmachine","data":{"flist":"https://hub/x.flist","flist_hash":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","cpu":2,"memory":4294967296,"root_size":1073741824}}]}`), 0o644)
	out := tx("contract", "create", "--key", keys["alice"], "--node", "1", "--deployment", dep)
	if !strings.Contains(out, "created 1") {
		t.Fatalf("contract create: %s", out)
	}
	tx("node", "report", "--key", keys["node"], "--contract", "1", "--cru", "2", "--mru", "4G", "--sru", "11G", "--net-bytes", "1000000000")
	if _, stderr, code := zos(t, "node", "report", "--key", keys["alice"], "--contract", "1", "--cru", "1", "--ledger", api); code == 0 || !strings.Contains(stderr, "not a node") {
		t.Fatalf("report by a non-node: %d %s", code, stderr)
	}
	var nodes []struct {
		ID   uint32         `json:"id"`
		Free map[string]any `json:"free"`
	}
	if err := ledgerQuery(t, api, "/nodes?free_cru=6&country=be", &nodes); err != nil || len(nodes) != 1 {
		t.Fatalf("nodes with 6 free cores: %v %v", nodes, err)
	}
	if err := ledgerQuery(t, api, "/nodes?free_cru=7", &nodes); err != nil || len(nodes) != 0 {
		t.Fatalf("nodes with 7 free cores (2 of 8 taken): %v %v", nodes, err)
	}
	var contract struct {
		PublicIPs  []string `json:"public_ips"`
		State      string   `json:"state"`
		UnbilledNU uint64   `json:"unbilled_nu"`
	}
	if err := ledgerQuery(t, api, "/contracts/1", &contract); err != nil || len(contract.PublicIPs) != 1 || contract.UnbilledNU != 15000 {
		t.Fatalf("contract: %+v %v", contract, err)
	}
	// Bad input: clear errors, nothing changes.
	if _, stderr, code := zos(t, "contract", "cancel", "--key", keys["farmer"], "--id", "1", "--ledger", api); code == 0 || !strings.Contains(stderr, "not owner") {
		t.Fatalf("cancel by a stranger: %d %s", code, stderr)
	}
	if _, stderr, code := zos(t, "contract", "create", "--key", keys["alice"], "--node", "1", "--hash", "xyz", "--ledger", api); code == 0 || !strings.Contains(stderr, "hash") {
		t.Fatalf("bad hash: %d %s", code, stderr)
	}
	est := mustZos(t, "ledger", "estimate", "--cru", "2", "--mru", "4G", "--sru", "100G", "--ips", "1", "--balance", "200000000")
	if !strings.Contains(est, `"paid": 132000`) {
		t.Fatalf("estimate: %s", est)
	}
	tx("contract", "cancel", "--key", keys["alice"], "--id", "1")
	if err := ledgerQuery(t, api, "/contracts/1", &contract); err != nil || contract.State != "deleted" {
		t.Fatalf("after cancel: %+v %v", contract, err)
	}
}
