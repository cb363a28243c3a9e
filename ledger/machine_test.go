package ledger

import (
	"bytes"
	"crypto/sha256"
	"errors"
	"fmt"
	"math/big"
	"math/rand/v2"
	"testing"

	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
)

func testGenesis(keys []key.Private) Genesis {
	g := Genesis{ChainID: "test", Params: Params{BlockSeconds: 360, BillingFrequency: 5, GracePeriod: 10, NodeOffline: 20, Pricing: DefaultPricing(), TxFee: 3},
		Treasury: nameKey("treasury").Public()}
	for i, k := range keys {
		g.Balances = append(g.Balances, GenesisBalance{Account: k.Public(), Amount: uint64(1000 * (i + 1) * (i + 1) * 1000)})
	}
	return g
}

// randomBlocks builds a plausible history: twins, farms, nodes, contracts,
// reports, transfers, cancellations, with some invalid transactions mixed in.
func randomBlocks(t *testing.T, seed uint64, keys []key.Private, n int) [][][]byte {
	r := rand.New(rand.NewPCG(seed, 1))
	nonces := make([]uint64, len(keys))
	var blocks [][][]byte
	tx := func(i int, m Msg) []byte {
		b, err := NewTx("test", keys[i], nonces[i], m)
		if err != nil {
			t.Fatal(err)
		}
		nonces[i]++
		return b
	}
	var first [][]byte
	for i := range keys {
		first = append(first, tx(i, &TwinCreate{}))
	}
	blocks = append(blocks, first)
	blocks = append(blocks, [][]byte{tx(0, &FarmCreate{Name: "farm", PublicIPs: []PublicIP{{IP: "185.69.166.10/24", Gateway: "185.69.166.1"}, {IP: "185.69.166.11/24", Gateway: "185.69.166.1"}}})},
		[][]byte{tx(1, &NodeRegister{Farm: 1, Resources: grid.Capacity{CRU: 16, MRU: 64 << 30, SRU: 2000 << 30, HRU: 8000 << 30}}),
			tx(2, &NodeRegister{Farm: 1, Resources: grid.Capacity{CRU: 4, MRU: 8 << 30, SRU: 100 << 30}})})
	for len(blocks) < n {
		var txs [][]byte
		for range r.IntN(6) {
			i := 3 + r.IntN(len(keys)-3)
			switch r.IntN(8) {
			case 0:
				txs = append(txs, tx(i, &Transfer{To: keys[r.IntN(len(keys))].Public(), Amount: r.Uint64N(50_000)}))
			case 1, 2:
				h := sha256.Sum256([]byte(fmt.Sprint(seed, len(blocks), i, r.Int())))
				txs = append(txs, tx(i, &CreateNodeContract{Node: 1 + uint32(r.IntN(2)), Hash: h, PublicIPs: uint32(r.IntN(2)),
					Capacity: grid.Capacity{CRU: 1 + r.Uint64N(2), MRU: 1 << 30, SRU: r.Uint64N(100) << 30}}))
			case 3:
				txs = append(txs, tx(i, &CreateNameContract{Name: fmt.Sprintf("n%d", r.IntN(10))}))
			case 4:
				txs = append(txs, tx(i, &CancelContract{Contract: 1 + r.Uint64N(20)}))
			case 5:
				node := 1 + r.IntN(2)
				txs = append(txs, tx(node, &NodeReport{Reports: []ContractReport{{Contract: 1 + r.Uint64N(20), Used: grid.Capacity{CRU: 1, MRU: 1 << 30}, NetBytes: r.Uint64N(5e9)}}}))
			case 6:
				txs = append(txs, tx(1+r.IntN(2), &NodeUptime{Uptime: uint64(len(blocks))}))
			case 7:
				b := tx(i, &Transfer{To: keys[0].Public(), Amount: 1})
				b[len(b)/2] ^= 1 // corrupt: decode or signature fails
				nonces[i]--
				txs = append(txs, b)
			}
		}
		blocks = append(blocks, txs)
	}
	return blocks
}

func testKeys(n int) []key.Private {
	var keys []key.Private
	for i := range n {
		keys = append(keys, nameKey(fmt.Sprint("k", i)))
	}
	return keys
}

// TestDeterminism: two fresh machines fed the same blocks reach the same app
// hash at every height, and a different history reaches a different one.
func TestDeterminism(t *testing.T) {
	keys := testKeys(8)
	blocks := randomBlocks(t, 42, keys, 120)
	a, _ := New(testGenesis(keys))
	b, _ := New(testGenesis(keys))
	if !bytes.Equal(a.AppHash(), b.AppHash()) {
		t.Fatal("genesis hashes differ")
	}
	var okTxs, billed int
	for i, txs := range blocks {
		ra, err := a.ApplyBlock(int64(i+1), txs)
		if err != nil {
			t.Fatal(err)
		}
		rb, _ := b.ApplyBlock(int64(i+1), txs)
		if !bytes.Equal(ra.AppHash, rb.AppHash) {
			t.Fatalf("height %d: app hashes differ", i+1)
		}
		if fmt.Sprint(ra) != fmt.Sprint(rb) {
			t.Fatalf("height %d: results differ", i+1)
		}
		for _, r := range ra.Txs {
			if r.Code == 0 {
				okTxs++
			}
		}
		billed += len(ra.Events)
	}
	if okTxs < 50 || billed < 10 {
		t.Fatalf("history too thin to mean anything: %d ok txs, %d billing events", okTxs, billed)
	}
	// The same history with an undecodable transaction added ends at the same hash.
	c, _ := New(testGenesis(keys))
	for i, txs := range blocks[:len(blocks)-1] {
		c.ApplyBlock(int64(i+1), txs)
	}
	c.ApplyBlock(int64(len(blocks)), append(blocks[len(blocks)-1], []byte("not a tx")))
	if !bytes.Equal(c.AppHash(), a.AppHash()) {
		t.Fatal("an invalid transaction changed the app hash")
	}
	d, _ := New(testGenesis(keys))
	for i, txs := range randomBlocks(t, 43, keys, 120) {
		d.ApplyBlock(int64(i+1), txs)
	}
	if bytes.Equal(d.AppHash(), a.AppHash()) {
		t.Fatal("different histories gave the same app hash")
	}
	// Money is conserved: billing moves funds to the treasury, never creates them.
	var total, want uint64
	for _, gb := range testGenesis(keys).Balances {
		want += gb.Amount
	}
	for _, acct := range a.s.accounts {
		total += acct.Balance
	}
	if total != want {
		t.Fatalf("balances sum to %d, genesis had %d", total, want)
	}
}

func TestApplyBlockHeight(t *testing.T) {
	m, _ := New(testGenesis(testKeys(1)))
	if _, err := m.ApplyBlock(2, nil); !errors.Is(err, ErrInvalid) {
		t.Fatalf("skipping a height: %v", err)
	}
}

func TestCheckTx(t *testing.T) {
	keys := testKeys(2)
	m, _ := New(testGenesis(keys))
	good, _ := NewTx("test", keys[0], 0, &TwinCreate{})
	if _, err := m.CheckTx(good); err != nil {
		t.Fatal(err)
	}
	otherChain, _ := NewTx("other", keys[0], 0, &TwinCreate{})
	stranger, _ := NewTx("test", nameKey("stranger"), 0, &TwinCreate{})
	m.ApplyBlock(1, [][]byte{good})
	for name, c := range map[string]struct {
		tx   []byte
		want error
	}{
		"replay":      {good, ErrBadNonce},
		"other chain": {otherChain, ErrBadSignature},
		"stranger":    {stranger, ErrNoAccount},
		"garbage":     {[]byte("{"), ErrDecode},
		"huge":        {bytes.Repeat([]byte("a"), MaxTxSize+1), ErrDecode},
	} {
		if _, err := m.CheckTx(c.tx); !errors.Is(err, c.want) {
			t.Errorf("%s: want %v, got %v", name, c.want, err)
		}
	}
	// The fee: an account that cannot pay it stays out of the mempool.
	g := testGenesis(keys) // keys[0] has 10⁶ units, keys[1] 4·10⁶
	g.Params.TxFee = 2_000_000
	m, _ = New(g)
	poor, _ := NewTx("test", keys[0], 0, &TwinCreate{})
	if _, err := m.CheckTx(poor); !errors.Is(err, ErrFunds) {
		t.Errorf("an account below the fee: %v", err)
	}
	rich, _ := NewTx("test", keys[1], 0, &TwinCreate{})
	if _, err := m.CheckTx(rich); err != nil {
		t.Errorf("an account above the fee: %v", err)
	}
	// 4·10⁶ covers two pending fees of 2·10⁶, not a third.
	next, _ := NewTx("test", keys[1], 1, &TwinCreate{})
	third, _ := NewTx("test", keys[1], 2, &TwinCreate{})
	if _, err := m.CheckTx(next); err != nil {
		t.Errorf("second pending fee: %v", err)
	}
	if _, err := m.CheckTx(third); !errors.Is(err, ErrFunds) {
		t.Errorf("third pending fee: %v", err)
	}
	if Code(nil) != 0 || Code(ErrNotOwner) != 9 || Code(fmt.Errorf("x: %w", ErrFunds)) != 5 || Code(errors.New("other")) != 99 {
		t.Fatal("result codes changed: clients depend on them")
	}
}

func TestFormulas(t *testing.T) {
	r := func(a, b int64) *big.Rat { return big.NewRat(a, b) }
	for _, c := range []struct {
		cap    grid.Capacity
		cu, su *big.Rat
	}{
		{grid.Capacity{CRU: 2, MRU: 4 << 30, SRU: 100 << 30}, r(1, 1), r(1, 2)},
		{grid.Capacity{CRU: 8, MRU: 32 << 30, SRU: 1000 << 30}, r(8, 1), r(5, 1)},
		{grid.Capacity{CRU: 1, MRU: 1 << 30, HRU: 1200 << 30}, r(1, 2), r(1, 1)}, // min(max(.25,.5), max(.125,1), max(.5,.25)) = .5
		{grid.Capacity{CRU: 16, MRU: 2 << 30}, r(4, 1), r(0, 1)},                 // min(max(.5,8), max(.25,16), max(1,4)) = 4
		{grid.Capacity{CRU: 1, MRU: 64 << 30}, r(8, 1), r(0, 1)},                 // min(max(16,.5), max(8,1), max(32,.25)) = 8
	} {
		if CU(c.cap).Cmp(c.cu) != 0 {
			t.Errorf("CU(%+v) = %v, want %v", c.cap, CU(c.cap), c.cu)
		}
		if SU(c.cap).Cmp(c.su) != 0 {
			t.Errorf("SU(%+v) = %v, want %v", c.cap, SU(c.cap), c.su)
		}
	}
	for _, c := range []struct {
		balance uint64
		want    string
	}{{0, "none"}, {149, "none"}, {150, "default"}, {300, "bronze"}, {600, "silver"}, {1799, "silver"}, {1800, "gold"}} {
		// amount 100 for a whole month: level = balance/100
		if got, _ := Discount(c.balance, r(100, 1), secondsPerMonth); got != c.want {
			t.Errorf("balance %d: %s, want %s", c.balance, got, c.want)
		}
	}
	if NetworkCost(DefaultPricing(), 2_000_000_000) != 30000 || NetworkCost(DefaultPricing(), 1) != 0 {
		t.Fatal("NU pricing wrong")
	}
	e := EstimateNodeContract(DefaultPricing(), grid.Capacity{CRU: 2, MRU: 4 << 30, SRU: 100 << 30, IPV4U: 1}, 1, 3600, 200_000_000)
	if e.Amount != 165000 || e.Paid != 132000 || e.Discount != "default" || e.MilliCU != 1000 || e.MilliSU != 500 {
		t.Fatalf("estimate %+v", e)
	}
}

// FuzzDecodeTx: transactions are untrusted input; decoding never panics and
// a decoded transaction re-encodes to the same signed bytes.
func FuzzDecodeTx(f *testing.F) {
	k := nameKey("fuzz")
	for _, m := range []Msg{&TwinCreate{Relay: "r"}, &Transfer{To: k.Public(), Amount: 5}, &NodeReport{Reports: []ContractReport{{Contract: 1}}},
		&GroupPropose{Group: 1, Action: Action{Type: "contract.cancel", Msg: []byte(`{"contract":1}`)}}} {
		b, _ := NewTx("fuzz", k, 3, m)
		f.Add(b)
	}
	f.Add([]byte(`{"type":"transfer","msg":{}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		tx, msg, err := DecodeTx("fuzz", in)
		if err != nil {
			return
		}
		if msg.TxType() != tx.Type || !tx.Signer.Verify(tx.SignBytes("fuzz"), tx.Sig) {
			t.Fatal("decoded a transaction whose signature does not verify")
		}
	})
}

// TestSigCache: a block applied after CheckTx saw its transactions ends at
// the same state as one applied cold, and a forged transaction is refused
// in the block even when the genuine one was checked.
func TestSigCache(t *testing.T) {
	keys := testKeys(2)
	warm, _ := New(testGenesis(keys))
	cold, _ := New(testGenesis(keys))
	good, _ := NewTx("test", keys[0], 0, &Transfer{To: keys[1].Public(), Amount: 7})
	forged := bytes.Replace(good, []byte(`"amount":7`), []byte(`"amount":8`), 1)
	if _, err := warm.CheckTx(good); err != nil {
		t.Fatal(err)
	}
	rw, _ := warm.ApplyBlock(1, [][]byte{forged, good})
	rc, _ := cold.ApplyBlock(1, [][]byte{forged, good})
	if rw.Txs[0].Code != Code(ErrBadSignature) || rw.Txs[1].Code != 0 {
		t.Fatalf("results %+v", rw.Txs)
	}
	if !bytes.Equal(rw.AppHash, rc.AppHash) {
		t.Fatal("the signature cache changed the state")
	}
}

// TestRecheck: the mempool's re-check after a block uses the cached signer
// and nonce, and still sees the new state.
func TestRecheck(t *testing.T) {
	keys := testKeys(2)
	m, _ := New(testGenesis(keys))
	first, _ := NewTx("test", keys[0], 0, &Transfer{To: keys[1].Public(), Amount: 1})
	second, _ := NewTx("test", keys[0], 1, &Transfer{To: keys[1].Public(), Amount: 1})
	for _, tx := range [][]byte{first, second} {
		if c, err := m.CheckTx(tx); err != nil || c.Signer != keys[0].Public() {
			t.Fatalf("check: %+v %v", c, err)
		}
	}
	if r, _ := m.ApplyBlock(1, [][]byte{first}); r.Txs[0].Code != 0 {
		t.Fatal(r.Txs[0].Log)
	}
	if _, err := m.CheckTx(first); !errors.Is(err, ErrBadNonce) {
		t.Fatalf("re-check of an included transaction: %v", err)
	}
	if c, err := m.CheckTx(second); err != nil || c.Nonce != 1 {
		t.Fatalf("re-check of the next one: %+v %v", c, err)
	}
}
