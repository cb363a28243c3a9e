package chain

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/ledger"
	"github.com/zosgrid/zos/ledger/query"
)

func seedKey(t *testing.T, name string) key.Private {
	t.Helper()
	s := sha256.Sum256([]byte(name))
	k, err := key.FromSeed(s[:])
	if err != nil {
		t.Fatal(err)
	}
	return k
}

func testSettings() Settings {
	s := DefaultSettings()
	s.P2P, s.RPC, s.HTTP = "tcp://127.0.0.1:0", "", "127.0.0.1:0"
	s.TimeoutCommit = "50ms"
	return s
}

// TestSingleValidator runs the embedded validator: transactions go in over
// the HTTP API, queries read the result, and a restart replays the block
// store into the same state.
func TestSingleValidator(t *testing.T) {
	home := t.TempDir()
	alice, farmer := seedKey(t, "alice"), seedKey(t, "farmer")
	p := ledger.DefaultParams()
	p.BillingFrequency = 5
	g := ledger.Genesis{ChainID: "zos-test", Params: p, Treasury: seedKey(t, "treasury").Public(),
		Balances: []ledger.GenesisBalance{{Account: alice.Public(), Amount: 1_000_000_000}, {Account: farmer.Public(), Amount: 10 * ledger.DefaultTxFee}}}
	if err := Init(home, InitOptions{Genesis: g, Settings: testSettings()}); err != nil {
		t.Fatal(err)
	}
	if err := Init(home, InitOptions{Genesis: g, Settings: testSettings()}); err == nil {
		t.Fatal("init over an existing chain must be refused")
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	s, _ := LoadSettings(home)
	s.P2P, s.HTTP = "tcp://127.0.0.1:0", "127.0.0.1:0"
	n, err := Start(ctx, home, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	c := query.NewClient(n.HTTPAddr())
	send := func(k key.Private, m ledger.Msg) query.SubmitResult {
		t.Helper()
		r, err := c.Send(ctx, k, m)
		if err != nil {
			t.Fatalf("%s: %v", m.TxType(), err)
		}
		return r
	}
	send(alice, &ledger.TwinCreate{Relay: "relay.local"})
	send(farmer, &ledger.TwinCreate{})
	if r := send(farmer, &ledger.FarmCreate{Name: "farm1"}); r.Created != 1 {
		t.Fatalf("farm id %d", r.Created)
	}
	_, err = c.Send(ctx, alice, &ledger.FarmCreate{Name: "farm1"})
	if !errors.Is(err, query.ErrTx) || !strings.Contains(err.Error(), "name taken") {
		t.Fatalf("duplicate farm: %v", err)
	}
	send(alice, &ledger.CreateNameContract{Name: "web"})
	var tw ledger.Twin
	if err := c.Get(ctx, "/twins/1", &tw); err != nil || tw.Relay != "relay.local" {
		t.Fatalf("twin: %+v %v", tw, err)
	}
	var cs []ledger.Contract
	if err := c.Get(ctx, "/contracts?twin=1&state=created", &cs); err != nil || len(cs) != 1 || cs[0].Name != "web" {
		t.Fatalf("contracts: %+v %v", cs, err)
	}
	// A replayed transaction is refused before it reaches a block.
	st := query.Status{}
	c.Get(ctx, "/status", &st)
	old, _ := ledger.NewTx("zos-test", alice, 0, &ledger.Transfer{To: farmer.Public(), Amount: 1})
	if _, err := c.SendRaw(ctx, old); !errors.Is(err, query.ErrTx) {
		t.Fatalf("replay: %v", err)
	}
	resp, err := http.Get("http://" + n.HTTPAddr() + "/nodes/abc")
	if err != nil || resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("bad id: %v %v", resp, err)
	}
	resp.Body.Close()
	// Wait for billing of the name contract, then restart.
	zostest.WaitFor(t, 30*time.Second, func() error {
		if len(n.Machine().Bills(1)) == 0 {
			return errors.New("contract 1 not billed yet")
		}
		return nil
	})
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	// Restart from a copy of the home (the stopped node's database locks
	// belong to this process): the app starts empty and CometBFT replays
	// the block store into it. Block h+2 carries the app hash of h+1, which
	// CometBFT checks against what the replayed machine computed, so
	// committing past h proves the rebuilt state is the same.
	h := n.Machine().Height()
	home2 := t.TempDir()
	if err := os.CopyFS(home2, os.DirFS(home)); err != nil {
		t.Fatal(err)
	}
	n2, err := Start(ctx, home2, s, nil)
	if err != nil {
		t.Fatal(err)
	}
	defer n2.Close()
	zostest.WaitFor(t, 30*time.Second, func() error {
		if n2.Machine().Height() <= h+2 {
			return fmt.Errorf("replayed to %d of %d", n2.Machine().Height(), h)
		}
		return nil
	})
	a1, _ := n.Machine().Account(alice.Public())
	if a1.Nonce != 3 {
		t.Fatalf("alice nonce %d, want 3", a1.Nonce)
	}
	a2, _ := n2.Machine().Account(alice.Public())
	if a2.Nonce != a1.Nonce || len(n2.Machine().Bills(1)) < len(n.Machine().Bills(1)) {
		t.Fatalf("restart lost state: nonce %d→%d", a1.Nonce, a2.Nonce)
	}
}
