package query

import (
	"context"
	"crypto/sha256"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/ledger"
)

func seedKey(name string) key.Private {
	s := sha256.Sum256([]byte(name))
	k, _ := key.FromSeed(s[:])
	return k
}

// applySubmitter applies each submitted transaction as its own block, the
// way a one-validator chain would, without the engine.
type applySubmitter struct{ m *ledger.Machine }

func (a applySubmitter) Submit(_ context.Context, tx []byte) (SubmitResult, error) {
	res, err := a.m.ApplyBlock(a.m.Height()+1, [][]byte{tx})
	if err != nil {
		return SubmitResult{}, err
	}
	r := res.Txs[0]
	return SubmitResult{Code: r.Code, Log: r.Log, Height: res.Height, Created: r.Created}, nil
}

func TestAPI(t *testing.T) {
	alice, node := seedKey("alice"), seedKey("node")
	m, err := ledger.New(ledger.Genesis{ChainID: "q", Params: ledger.DefaultParams(), Treasury: seedKey("t").Public(),
		Balances: []ledger.GenesisBalance{{Account: alice.Public(), Amount: 100_000}, {Account: node.Public(), Amount: 2 * ledger.DefaultTxFee}}})
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(NewHandler(m, applySubmitter{m}, nil))
	defer srv.Close()
	c := NewClient(srv.URL)
	ctx := context.Background()
	for _, step := range []struct {
		k   key.Private
		msg ledger.Msg
	}{
		{alice, &ledger.TwinCreate{}}, {node, &ledger.TwinCreate{}},
		{alice, &ledger.FarmCreate{Name: "f"}},
		{node, &ledger.NodeRegister{Farm: 1, Resources: grid.Capacity{CRU: 4, MRU: 8 << 30}, Location: ledger.Location{Country: "BE"}}},
		{alice, &ledger.CreateNodeContract{Node: 1, Hash: sha256.Sum256([]byte("d")), Capacity: grid.Capacity{CRU: 3}}},
	} {
		if _, err := c.Send(ctx, step.k, step.msg); err != nil {
			t.Fatalf("%s: %v", step.msg.TxType(), err)
		}
	}
	if _, err := c.Send(ctx, alice, &ledger.Transfer{To: node.Public(), Amount: 1_000_000}); !errors.Is(err, ErrTx) || !strings.Contains(err.Error(), "insufficient") {
		t.Fatalf("overdraft: %v", err)
	}
	var nodes []ledger.NodeView
	for q, want := range map[string]int{"/nodes": 1, "/nodes?free_cru=1": 1, "/nodes?free_cru=2": 0, "/nodes?country=be": 1,
		"/nodes?country=fr": 0, "/nodes?farm=2": 0, "/nodes?online=true": 1} {
		if err := c.Get(ctx, q, &nodes); err != nil || len(nodes) != want {
			t.Errorf("%s: %d nodes (%v), want %d", q, len(nodes), err, want)
		}
	}
	var evs []ledger.HeightEvent
	if err := c.Get(ctx, "/events?node=1", &evs); err != nil || len(evs) != 2 || evs[1].Type != ledger.EventContractCreated || evs[1].Contract != 1 {
		t.Fatalf("events of node 1: %+v %v", evs, err)
	}
	if err := c.Get(ctx, "/events?node=1&since="+fmt.Sprint(evs[1].Height), &evs); err != nil || len(evs) != 0 {
		t.Fatalf("events since: %+v %v", evs, err)
	}
	var cs []ledger.Contract
	if err := c.Get(ctx, "/contracts?twin=1&state=created", &cs); err != nil || len(cs) != 1 {
		t.Fatalf("contracts: %v %v", cs, err)
	}
	var acct AccountView
	if err := c.Get(ctx, "/accounts/"+alice.Public().String(), &acct); err != nil || acct.Twin != 1 || acct.Nonce != 4 {
		t.Fatalf("account: %+v %v", acct, err)
	}
	// Six transactions paid the fee to the treasury, the failed transfer too.
	if err := c.Get(ctx, "/accounts/"+seedKey("t").Public().String(), &acct); err != nil || acct.Balance != 6*ledger.DefaultTxFee {
		t.Fatalf("treasury: %+v %v", acct, err)
	}
	var e ledger.Estimate
	if err := c.Get(ctx, "/estimate?cru=2&mru=4294967296&sru=107374182400&ips=1&balance=200000000", &e); err != nil || e.Paid != 132000 {
		t.Fatalf("estimate %+v %v", e, err)
	}
	for path, code := range map[string]int{"/twins/9": 404, "/twins/x": 400, "/contracts/1/bills": 200, "/contracts/7/bills": 404,
		"/nodes?free_cru=-1": 400, "/nodes?online=maybe": 400, "/accounts/nope": 400, "/farms/1": 200,
		"/farms/2": 404, "/nodes/1": 200, "/nodes/2": 404, "/contracts/1": 200, "/proposals/1": 404,
		"/twins/4294967296": 400, "/contracts/4294967296": 404, "/contracts/18446744073709551616": 400} {
		resp, err := http.Get(srv.URL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != code {
			t.Errorf("%s: %d, want %d", path, resp.StatusCode, code)
		}
	}
	ro := httptest.NewServer(NewHandler(m, nil, nil))
	defer ro.Close()
	resp, _ := http.Post(ro.URL+"/tx", "application/json", strings.NewReader("{}"))
	if resp.StatusCode != http.StatusServiceUnavailable {
		t.Fatalf("read-only server took a tx: %d", resp.StatusCode)
	}
	resp.Body.Close()
}

// racingSubmitter applies, before each of the first races transactions it
// is given, another transaction of k with the same nonce: the one given
// finds its nonce used, as when it was signed with a nonce from a node a
// block behind.
type racingSubmitter struct {
	applySubmitter
	k     key.Private
	mu    sync.Mutex
	races int
	txs   int
}

func (r *racingSubmitter) Submit(ctx context.Context, tx []byte) (SubmitResult, error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.txs++
	if r.txs <= r.races {
		a, _ := r.m.Account(r.k.Public())
		other, err := ledger.NewTx(r.m.ChainID(), r.k, a.Nonce, &ledger.Transfer{To: seedKey("t").Public(), Amount: 1})
		if err != nil {
			return SubmitResult{}, err
		}
		if res, err := r.applySubmitter.Submit(ctx, other); err != nil || res.Code != 0 {
			return SubmitResult{}, fmt.Errorf("competing tx: %+v %v", res, err)
		}
	}
	return r.applySubmitter.Submit(ctx, tx)
}

func (r *racingSubmitter) submitted() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.txs
}

// TestSendRetriesUsedNonce: Send signs again with a fresh nonce when its
// nonce was used, a bounded number of times; SendRaw, whose transaction is
// signed already, does not.
func TestSendRetriesUsedNonce(t *testing.T) {
	alice := seedKey("alice")
	m, err := ledger.New(ledger.Genesis{ChainID: "q", Params: ledger.DefaultParams(), Treasury: seedKey("t").Public(),
		Balances: []ledger.GenesisBalance{{Account: alice.Public(), Amount: 100_000}}})
	if err != nil {
		t.Fatal(err)
	}
	sub := &racingSubmitter{applySubmitter: applySubmitter{m}, k: alice, races: 1}
	srv := httptest.NewServer(NewHandler(m, sub, nil))
	defer srv.Close()
	c := NewClient(srv.URL)
	ctx := context.Background()

	res, err := c.Send(ctx, alice, &ledger.TwinCreate{})
	if err != nil || res.Code != 0 || res.Created != 1 || sub.submitted() != 2 {
		t.Fatalf("send after a used nonce: %+v %v, %d submissions", res, err, sub.submitted())
	}
	if a, _ := m.Account(alice.Public()); a.Nonce != 2 {
		t.Fatalf("alice nonce %d, want 2 (the competing tx and the twin)", a.Nonce)
	}

	sub.mu.Lock()
	sub.races, sub.txs = 1000, 0
	sub.mu.Unlock()
	_, err = c.Send(ctx, alice, &ledger.FarmCreate{Name: "f"})
	if !errors.Is(err, ErrTx) || !strings.Contains(err.Error(), "wrong nonce") || sub.submitted() != sendAttempts {
		t.Fatalf("send with every nonce used: %v after %d submissions, want %d", err, sub.submitted(), sendAttempts)
	}

	a, _ := m.Account(alice.Public())
	tx, err := ledger.NewTx("q", alice, a.Nonce, &ledger.FarmCreate{Name: "f"})
	if err != nil {
		t.Fatal(err)
	}
	before := sub.submitted()
	if _, err := c.SendRaw(ctx, tx); !errors.Is(err, ErrTx) || sub.submitted() != before+1 {
		t.Fatalf("send raw with its nonce used: %v after %d submissions, want 1", err, sub.submitted()-before)
	}
}
