package ledger

import (
	"crypto/sha256"
	"encoding/json"
	"errors"
	"fmt"
	"sync"

	"github.com/zosgrid/zos/key"
)

// Machine is the ledger state machine. ApplyBlock is its only writer; the
// read methods (query.go) may run concurrently with it.
type Machine struct {
	mu      sync.RWMutex
	genesis Genesis // what Snapshot records, so Restore refuses another chain's state
	s       *state
	sigs    sigCache
	// journal keeps the latest events for followers (nodes watch their
	// contracts); it is derived from the blocks and not hashed.
	journal []HeightEvent
}

// HeightEvent is an event with the height of the block that emitted it.
type HeightEvent struct {
	Height int64 `json:"height"`
	Event
}

// journalSize bounds the events kept for Events.
const journalSize = 1 << 16

// sigCache remembers transactions whose signature CheckTx verified, with
// their signer and nonce, so the mempool's re-check after each block needs
// no decoding and the block that includes them does not verify again. It
// only saves work: a transaction missing from it is decoded and verified,
// so results never depend on it.
type sigCache struct {
	mu    sync.Mutex
	set   map[[32]byte]checked
	order [][32]byte
}

// checked is a transaction CheckTx decoded and verified: the block that
// includes it takes the decoded form instead of parsing the bytes again
// (the same bytes always decode the same way, and each entry is taken once).
type checked struct {
	signer key.Public
	nonce  uint64
	tx     *Tx
	msg    Msg
}

const sigCacheSize = 1 << 15 // several full mempools (5000 by default)

func (c *sigCache) get(h [32]byte) (checked, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.set[h]
	return e, ok
}

func (c *sigCache) add(h [32]byte, e checked) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.set == nil {
		c.set = make(map[[32]byte]checked, sigCacheSize)
	}
	if _, ok := c.set[h]; ok {
		return
	}
	if len(c.order) >= sigCacheSize {
		delete(c.set, c.order[0])
		c.order = c.order[1:]
	}
	c.set[h] = e
	c.order = append(c.order, h)
}

func (c *sigCache) take(raw []byte) (checked, bool) {
	h := sha256.Sum256(raw)
	c.mu.Lock()
	defer c.mu.Unlock()
	e, ok := c.set[h]
	delete(c.set, h)
	return e, ok
}

// decode parses raw and checks its signature, unless CheckTx already did.
func (m *Machine) decode(raw []byte) (*Tx, Msg, error) {
	if e, ok := m.sigs.take(raw); ok {
		return e.tx, e.msg, nil
	}
	return DecodeTx(m.s.chainID, raw)
}

// TxResult is the outcome of one transaction of a block.
type TxResult struct {
	Code   uint32  `json:"code"`
	Log    string  `json:"log,omitempty"`
	Events []Event `json:"events,omitempty"`
	// Created is the id of the object the transaction created (twin, farm,
	// node, contract or proposal), 0 if none.
	Created uint64 `json:"created,omitempty"`
}

// BlockResult is the outcome of a block.
type BlockResult struct {
	Height  int64      `json:"height"`
	Txs     []TxResult `json:"txs"`
	Events  []Event    `json:"events,omitempty"` // from billing at the end of the block
	AppHash []byte     `json:"app_hash"`
}

// ValidateGenesis checks a genesis document.
func ValidateGenesis(g Genesis) error {
	switch {
	case g.ChainID == "":
		return fmt.Errorf("%w: genesis: chain_id is required", ErrInvalid)
	case g.Params.BillingFrequency == 0:
		return fmt.Errorf("%w: genesis: billing_frequency must be positive", ErrInvalid)
	case g.Params.BlockSeconds == 0:
		return fmt.Errorf("%w: genesis: block_seconds must be positive", ErrInvalid)
	case g.Params.Pricing.DedicatedDiscountPercent > 100:
		return fmt.Errorf("%w: genesis: dedicated_discount_percent above 100", ErrInvalid)
	case g.Treasury.IsZero():
		return fmt.Errorf("%w: genesis: treasury account is required", ErrInvalid)
	}
	return nil
}

// New returns a machine in the genesis state (height 0).
func New(g Genesis) (*Machine, error) {
	if err := ValidateGenesis(g); err != nil {
		return nil, err
	}
	s := newState(g)
	for _, b := range g.Balances {
		a := s.account(b.Account)
		if a.Balance+b.Amount < a.Balance {
			return nil, fmt.Errorf("%w: genesis balances overflow", ErrInvalid)
		}
		a.Balance += b.Amount
		s.touchAccount(b.Account)
	}
	s.account(g.Treasury)
	s.touchAccount(g.Treasury)
	gb, _ := json.Marshal(g)
	s.dirty["genesis"] = func() any { return json.RawMessage(gb) }
	s.commitHash()
	return &Machine{s: s, genesis: g}, nil
}

// ChainID returns the chain id transactions must be signed for.
func (m *Machine) ChainID() string { return m.s.chainID }

// Height returns the last applied height.
func (m *Machine) Height() int64 {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return m.s.height
}

// AppHash returns the hash of the state after the last applied block.
func (m *Machine) AppHash() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return append([]byte(nil), m.s.appHash...)
}

// CheckTx decides whether a transaction may enter the mempool: it decodes,
// its signature verifies, the signer's account exists, its nonce is not
// already used, and the balance covers the fees up to this nonce. The state is
// not changed. The mempool re-checks the transactions left after every
// block: those are neither decoded nor verified again (the cache keeps
// their signer and nonce).
func (m *Machine) CheckTx(raw []byte) (Checked, error) {
	if len(raw) > MaxTxSize { // before hashing more than a transaction may hold
		return Checked{}, fmt.Errorf("%w: %d bytes, at most %d", ErrDecode, len(raw), MaxTxSize)
	}
	h := sha256.Sum256(raw)
	e, ok := m.sigs.get(h)
	if !ok {
		tx, msg, err := DecodeTx(m.s.chainID, raw)
		if err != nil {
			return Checked{}, err
		}
		e = checked{signer: tx.Signer, nonce: tx.Nonce, tx: tx, msg: msg}
		m.sigs.add(h, e)
	}
	m.mu.RLock()
	defer m.mu.RUnlock()
	a := m.s.accounts[e.signer]
	if a == nil {
		return Checked{}, fmt.Errorf("%w: %s", ErrNoAccount, e.signer)
	}
	if e.nonce < a.Nonce {
		return Checked{}, fmt.Errorf("%w: nonce %d already used (next is %d)", ErrBadNonce, e.nonce, a.Nonce)
	}
	// The balance must cover the fees of this transaction and of the ones
	// before it that are still pending (nonces a.Nonce up to this one), so a
	// queue of transactions that could never pay stays out of the mempool.
	ahead := e.nonce - a.Nonce + 1
	if fee := m.s.params.TxFee; fee > 0 && (ahead > a.Balance/fee) {
		return Checked{}, fmt.Errorf("%w: transaction fee %d for nonces %d..%d, balance %d", ErrFunds, fee, a.Nonce, e.nonce, a.Balance)
	}
	return Checked{Signer: e.signer, Nonce: e.nonce}, nil
}

// Checked is what CheckTx learnt of an admitted transaction.
type Checked struct {
	Signer key.Public
	Nonce  uint64
}

// ApplyBlock applies the transactions of the block at height (which must be
// the next height) in order, then bills the contracts due at that height.
func (m *Machine) ApplyBlock(height int64, txs [][]byte) (BlockResult, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	s := m.s
	if height != s.height+1 {
		return BlockResult{}, fmt.Errorf("%w: block %d after %d", ErrInvalid, height, s.height)
	}
	s.height = height
	res := BlockResult{Height: height, Txs: make([]TxResult, len(txs))}
	for i, raw := range txs {
		tx, msg, err := m.decode(raw)
		if err != nil {
			res.Txs[i] = TxResult{Code: Code(err), Log: err.Error()}
			continue
		}
		res.Txs[i] = s.applyTx(tx, msg)
	}
	res.Events = s.billBlock()
	s.commitHash()
	for _, r := range res.Txs {
		for _, e := range r.Events {
			m.journal = append(m.journal, HeightEvent{height, e})
		}
	}
	for _, e := range res.Events {
		m.journal = append(m.journal, HeightEvent{height, e})
	}
	if over := len(m.journal) - journalSize; over > 0 {
		m.journal = append(m.journal[:0:0], m.journal[over:]...)
	}
	res.AppHash = append([]byte(nil), s.appHash...)
	return res, nil
}

// execCtx carries what a handler needs: the acting twin (nil before the
// signer has one) and where to put events.
type execCtx struct {
	signer  key.Public
	twin    *Twin
	events  []Event
	created uint64
}

func (c *execCtx) emit(e Event) { c.events = append(c.events, e) }

func (s *state) applyTx(tx *Tx, msg Msg) TxResult {
	a := s.accounts[tx.Signer]
	if a == nil {
		err := fmt.Errorf("%w: %s", ErrNoAccount, tx.Signer)
		return TxResult{Code: Code(err), Log: err.Error()}
	}
	if tx.Nonce != a.Nonce {
		err := fmt.Errorf("%w: got %d, want %d", ErrBadNonce, tx.Nonce, a.Nonce)
		return TxResult{Code: Code(err), Log: err.Error()}
	}
	// A signer who cannot pay the fee gets no effect at all: not even the
	// nonce is used (CheckTx keeps such transactions out of the mempool;
	// only a proposer could include one).
	if a.Balance < s.params.TxFee {
		err := fmt.Errorf("%w: transaction fee %d, balance %d", ErrFunds, s.params.TxFee, a.Balance)
		return TxResult{Code: Code(err), Log: err.Error()}
	}
	// The nonce is used and the fee paid even if the message fails, so the
	// transaction cannot be replayed and failing ones are not free.
	a.Nonce++
	s.touchAccount(tx.Signer)
	if err := s.move(tx.Signer, s.treasury, s.params.TxFee); err != nil {
		panic(fmt.Sprintf("ledger: fee after balance check: %v", err)) // an invariant, not input
	}
	ctx := &execCtx{signer: tx.Signer}
	if id, ok := s.twinByAccount[tx.Signer]; ok {
		ctx.twin = s.twins[id]
	}
	if err := s.exec(ctx, msg, false); err != nil {
		return TxResult{Code: Code(err), Log: err.Error()}
	}
	return TxResult{Events: ctx.events, Created: ctx.created}
}

// exec runs one message. Every handler checks everything before it changes
// anything, so a failed message leaves the state as it was (apart from the
// nonce and the fee). asGroup is true when a group's approved proposal runs it.
func (s *state) exec(ctx *execCtx, msg Msg, asGroup bool) error {
	switch m := msg.(type) {
	case *Transfer:
		return s.transfer(ctx, m)
	case *TwinCreate:
		return s.twinCreate(ctx, m)
	case *TwinUpdate:
		return s.twinUpdate(ctx, m)
	}
	if ctx.twin == nil {
		return fmt.Errorf("%w: %s needs a twin; create one first", ErrNotFound, msg.TxType())
	}
	switch m := msg.(type) {
	case *GroupCreate:
		return s.groupCreate(ctx, m)
	case *GroupPropose:
		return s.groupPropose(ctx, m)
	case *GroupApprove:
		return s.groupApprove(ctx, m)
	case *FarmCreate:
		return s.farmCreate(ctx, m)
	case *FarmAddIP:
		return s.farmAddIP(ctx, m)
	case *NodeRegister:
		return s.nodeRegister(ctx, m)
	case *NodeUptime:
		return s.nodeUptime(ctx, m)
	case *NodeReport:
		return s.nodeReport(ctx, m)
	case *CreateNodeContract:
		return s.createNodeContract(ctx, m)
	case *UpdateContract:
		return s.updateContract(ctx, m)
	case *CancelContract:
		return s.cancelContract(ctx, m)
	case *CreateNameContract:
		return s.createNameContract(ctx, m)
	case *CreateRentContract:
		return s.createRentContract(ctx, m)
	}
	return fmt.Errorf("%w: %T", ErrDecode, msg)
}

var errGroupOnly = errors.New("ledger: only twins with their own key may do this")
