package chain

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"os"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
	"github.com/cometbft/cometbft/types"

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
	s.SnapshotEvery = 5
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
	// A snapshot saved at Commit (every 5 blocks here) while running: what
	// a crash would leave behind.
	older, err := os.ReadFile(SnapshotPath(home))
	if err != nil {
		t.Fatal(err)
	}
	olderH, _, err := ledger.SnapshotInfo(older)
	if err != nil || olderH == 0 || olderH%5 != 0 {
		t.Fatalf("snapshot at commit: height %d, %v", olderH, err)
	}
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	h := n.Machine().Height()
	a1, _ := n.Machine().Account(alice.Public())
	if a1.Nonce != 3 {
		t.Fatalf("alice nonce %d, want 3", a1.Nonce)
	}
	// Restart from a copy of the home (the stopped node's database locks
	// belong to this process). Block h+2 carries the app hash of h+1, which
	// CometBFT checks against what the restarted machine computed, and its
	// handshake checks the loaded app hash against the stored one, so
	// committing past h proves the state is the same.
	restart := func(name string, prepare func(home string)) (*Node, string) {
		t.Helper()
		home2 := t.TempDir()
		if err := os.CopyFS(home2, os.DirFS(home)); err != nil {
			t.Fatal(err)
		}
		prepare(home2)
		var logs lockedBuffer
		n2, err := Start(ctx, home2, s, slog.New(slog.NewTextHandler(&logs, nil)))
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		defer n2.Close()
		zostest.WaitFor(t, 30*time.Second, func() error {
			if n2.Machine().Height() <= h+2 {
				return fmt.Errorf("%s: at %d of %d", name, n2.Machine().Height(), h)
			}
			return nil
		})
		a2, _ := n2.Machine().Account(alice.Public())
		if a2.Nonce != a1.Nonce || len(n2.Machine().Bills(1)) < len(n.Machine().Bills(1)) {
			t.Fatalf("%s: restart lost state: nonce %d→%d", name, a1.Nonce, a2.Nonce)
		}
		return n2, logs.String()
	}
	// After a clean stop the snapshot is at the last block: nothing replays.
	n2, logs := restart("clean", func(string) {})
	if n2.StartHeight() != h || !strings.Contains(logs, "ledger snapshot loaded") {
		t.Fatalf("clean restart loaded height %d, stopped at %d; logs:\n%s", n2.StartHeight(), h, logs)
	}
	// After a crash, the blocks after the last saved snapshot replay.
	n3, _ := restart("older snapshot", func(home string) {
		if err := os.WriteFile(SnapshotPath(home), older, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if n3.StartHeight() != olderH || olderH >= h {
		t.Fatalf("restart from the older snapshot loaded %d, want %d (< %d)", n3.StartHeight(), olderH, h)
	}
	// A corrupt snapshot is detected, logged, and every block replays.
	n4, logs := restart("corrupt snapshot", func(home string) {
		b := slices.Clone(older)
		b[len(b)/2] ^= 0x20
		if err := os.WriteFile(SnapshotPath(home), b, 0o600); err != nil {
			t.Fatal(err)
		}
	})
	if n4.StartHeight() != 0 || !strings.Contains(logs, "snapshot unusable") || !strings.Contains(logs, "checksum") {
		t.Fatalf("corrupt snapshot: loaded at %d; logs:\n%s", n4.StartHeight(), logs)
	}
}

// lockedBuffer collects log output written from CometBFT's goroutines.
type lockedBuffer struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}

func TestResultData(t *testing.T) {
	for _, c := range []uint64{0, 1, 18446744073709551615} {
		want, _ := json.Marshal(struct {
			Created uint64 `json:"created,omitempty"`
		}{c})
		if got := resultData(c); !bytes.Equal(got, want) {
			t.Errorf("%d: %s, want %s (the bytes are in CometBFT's results hash)", c, got, want)
		}
	}
}

// holdBack is the application with a proposer that leaves out the
// transactions held: they stay in the mempool until the mempool lets them
// go, as on a validator whose proposals were built before they arrived.
type holdBack struct {
	*App
	held sync.Map // types.TxKey → struct{}
}

func (h *holdBack) hold(tx []byte)    { h.held.Store(types.Tx(tx).Key(), struct{}{}) }
func (h *holdBack) release(tx []byte) { h.held.Delete(types.Tx(tx).Key()) }

func (h *holdBack) PrepareProposal(ctx context.Context, req *abci.PrepareProposalRequest) (*abci.PrepareProposalResponse, error) {
	resp, err := h.App.PrepareProposal(ctx, req)
	if err != nil {
		return nil, err
	}
	resp.Txs = slices.DeleteFunc(resp.Txs, func(tx []byte) bool {
		_, held := h.held.Load(types.Tx(tx).Key())
		return held
	})
	return resp, nil
}

// TestSubmitHeldTxs holds transactions out of the blocks, in the mempool:
// one whose nonce another transaction then uses (the stale-node race), or
// that the mempool evicts, ends its Submit at the next block with the
// reason instead of waiting for a block that never comes; many submits
// waiting at once all end with their block once released.
func TestSubmitHeldTxs(t *testing.T) {
	home := t.TempDir()
	alice, bob := seedKey(t, "alice"), seedKey(t, "bob")
	g := ledger.Genesis{ChainID: "zos-held", Params: ledger.DefaultParams(), Treasury: seedKey(t, "treasury").Public(),
		Balances: []ledger.GenesisBalance{{Account: alice.Public(), Amount: 1_000_000_000}}}
	// More signers than CometBFT's broadcast-commit took waiting at once
	// from one client (max_subscriptions_per_client, 5).
	var many []key.Private
	for i := range 8 {
		k := seedKey(t, fmt.Sprint("signer", i))
		many = append(many, k)
		g.Balances = append(g.Balances, ledger.GenesisBalance{Account: k.Public(), Amount: 10 * ledger.DefaultTxFee})
	}
	if err := Init(home, InitOptions{Genesis: g, Settings: testSettings()}); err != nil {
		t.Fatal(err)
	}
	// Generous: the old Submit waited CometBFT's 30 s for such a transaction.
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	defer cancel()
	s, _ := LoadSettings(home)
	s.P2P, s.HTTP = "tcp://127.0.0.1:0", ""
	var app *holdBack
	n, err := start(ctx, home, s, nil, func(a *App) abci.Application {
		app = &holdBack{App: a}
		return app
	})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	type outcome struct {
		res query.SubmitResult
		err error
	}
	// submitHeld submits a transaction no block will take and returns once
	// the mempool holds it.
	submitHeld := func(tx []byte) <-chan outcome {
		t.Helper()
		app.hold(tx)
		out := make(chan outcome, 1)
		go func() {
			r, err := n.Submit(ctx, tx)
			out <- outcome{r, err}
		}()
		zostest.WaitFor(t, 10*time.Second, func() error {
			if !n.inMempool(types.Tx(tx).Key()) {
				return errors.New("tx not in the mempool yet")
			}
			return nil
		})
		return out
	}
	wait := func(out <-chan outcome) outcome {
		t.Helper()
		select {
		case o := <-out:
			return o
		case <-ctx.Done():
			t.Fatal("Submit still waits")
			return outcome{}
		}
	}
	newTx := func(k key.Private, nonce, amount uint64) []byte {
		t.Helper()
		tx, err := ledger.NewTx(g.ChainID, k, nonce, &ledger.Transfer{To: bob.Public(), Amount: amount})
		if err != nil {
			t.Fatal(err)
		}
		return tx
	}

	// Two transactions signed with the same nonce: the winner commits, the
	// loser learns its nonce was used.
	loser, winner := newTx(alice, 0, 1), newTx(alice, 0, 2)
	lost := submitHeld(loser)
	won, err := n.Submit(ctx, winner)
	if err != nil || won.Code != 0 || won.Height == 0 || won.Hash != fmt.Sprintf("%X", sha256.Sum256(winner)) {
		t.Fatalf("winner: %+v %v", won, err)
	}
	if b, _ := n.node.BlockStore().LoadBlock(won.Height); b == nil || b.Txs.Index(winner) < 0 {
		t.Fatalf("winner's block %d does not hold it", won.Height)
	}
	o := wait(lost)
	if o.err != nil || o.res.Code != ledger.Code(ledger.ErrBadNonce) || o.res.Height != 0 ||
		!strings.Contains(o.res.Log, "another transaction") || o.res.Hash != fmt.Sprintf("%X", sha256.Sum256(loser)) {
		t.Fatalf("loser: %+v %v", o.res, o.err)
	}
	if a, _ := n.Machine().Account(bob.Public()); a.Balance != 2 {
		t.Fatalf("bob has %d, want the winner's 2", a.Balance)
	}

	// A transaction evicted from the mempool with its nonce still unused.
	evicted := newTx(alice, 1, 3)
	out := submitHeld(evicted)
	if err := n.node.Mempool().RemoveTxByKey(types.Tx(evicted).Key()); err != nil {
		t.Fatal(err)
	}
	if o := wait(out); !errors.Is(o.err, ErrDropped) {
		t.Fatalf("evicted: %+v %v", o.res, o.err)
	}

	// All waiting at once, then all let into the next block.
	var txs [][]byte
	var outs []<-chan outcome
	for _, k := range many {
		tx := newTx(k, 0, 1)
		txs = append(txs, tx)
		outs = append(outs, submitHeld(tx))
	}
	for _, tx := range txs {
		app.release(tx)
	}
	for i, out := range outs {
		if o := wait(out); o.err != nil || o.res.Code != 0 || o.res.Height == 0 {
			t.Errorf("signer %d: %+v %v", i, o.res, o.err)
		}
	}
}
