package ledger

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/json"
	"fmt"
	"sort"

	"github.com/zosgrid/zos/key"
)

// state is everything the ledger knows. Indexes marked "derived" are
// rebuilt from the objects and are not hashed separately.
type state struct {
	chainID  string
	params   Params
	treasury key.Public
	height   int64
	appHash  []byte

	accounts  map[key.Public]*Account
	twins     map[uint32]*Twin
	farms     map[uint32]*Farm
	nodes     map[uint32]*Node
	contracts map[uint64]*Contract
	proposals map[uint64]*Proposal
	bills     map[uint64][]Bill

	nextTwin     uint32
	nextFarm     uint32
	nextNode     uint32
	nextContract uint64
	nextProposal uint64

	// derived indexes
	twinByAccount  map[key.Public]uint32
	farmByName     map[string]uint32
	nodeByTwin     map[uint32]uint32
	contractByHash map[nodeHash]uint64
	nameOwner      map[string]uint64
	rentByNode     map[uint32]uint64
	nodeContracts  map[uint32]map[uint64]struct{}
	billingBuckets map[uint64][]uint64 // id % BillingFrequency → active contract ids, ascending

	// dirty collects the keys changed in the current block.
	dirty map[string]func() any
}

type nodeHash struct {
	node uint32
	hash [32]byte
}

func newState(g Genesis) *state {
	s := &state{
		chainID: g.ChainID, params: g.Params, treasury: g.Treasury,
		accounts: map[key.Public]*Account{}, twins: map[uint32]*Twin{}, farms: map[uint32]*Farm{},
		nodes: map[uint32]*Node{}, contracts: map[uint64]*Contract{}, proposals: map[uint64]*Proposal{},
		bills:    map[uint64][]Bill{},
		nextTwin: 1, nextFarm: 1, nextNode: 1, nextContract: 1, nextProposal: 1,
		twinByAccount: map[key.Public]uint32{}, farmByName: map[string]uint32{}, nodeByTwin: map[uint32]uint32{},
		contractByHash: map[nodeHash]uint64{}, nameOwner: map[string]uint64{}, rentByNode: map[uint32]uint64{},
		nodeContracts: map[uint32]map[uint64]struct{}{}, billingBuckets: map[uint64][]uint64{},
		dirty: map[string]func() any{},
	}
	return s
}

// Dirty-key helpers: each records a function that returns the object's
// current value, read when the block's hash is computed.
func (s *state) touchAccount(k key.Public) {
	s.dirty["account/"+k.String()] = func() any { return s.accounts[k] }
}

func (s *state) touchTwin(id uint32) {
	s.dirty[fmt.Sprintf("twin/%010d", id)] = func() any { return s.twins[id] }
}

func (s *state) touchFarm(id uint32) {
	s.dirty[fmt.Sprintf("farm/%010d", id)] = func() any { return s.farms[id] }
}

func (s *state) touchNode(id uint32) {
	s.dirty[fmt.Sprintf("node/%010d", id)] = func() any { return s.nodes[id] }
}

func (s *state) touchContract(id uint64) {
	s.dirty[fmt.Sprintf("contract/%020d", id)] = func() any { return s.contracts[id] }
}

func (s *state) touchProposal(id uint64) {
	s.dirty[fmt.Sprintf("proposal/%020d", id)] = func() any { return s.proposals[id] }
}

func (s *state) addBill(b Bill) {
	s.bills[b.Contract] = append(s.bills[b.Contract], b)
	n := len(s.bills[b.Contract]) - 1
	s.dirty[fmt.Sprintf("bill/%020d/%010d", b.Contract, n)] = func() any { return b }
}

// commitHash folds the dirty objects into the app hash and clears them.
func (s *state) commitHash() {
	keys := make([]string, 0, len(s.dirty))
	for k := range s.dirty {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	h := sha256.New()
	var buf []byte
	put := func(b []byte) {
		buf = binary.BigEndian.AppendUint64(buf[:0], uint64(len(b)))
		h.Write(buf)
		h.Write(b)
	}
	put(s.appHash)
	buf = binary.BigEndian.AppendUint64(buf[:0], uint64(s.height))
	h.Write(buf)
	for _, k := range keys {
		v, err := json.Marshal(s.dirty[k]())
		if err != nil {
			panic(fmt.Sprintf("ledger: state object %s does not encode: %v", k, err)) // an invariant, not input
		}
		put([]byte(k))
		put(v)
	}
	s.appHash = h.Sum(nil)
	clear(s.dirty)
}

func (s *state) account(k key.Public) *Account {
	a := s.accounts[k]
	if a == nil {
		a = &Account{}
		s.accounts[k] = a
	}
	return a
}

// move transfers amount from one account to another.
func (s *state) move(from, to key.Public, amount uint64) error {
	fa := s.accounts[from]
	if fa == nil || fa.Balance < amount {
		have := uint64(0)
		if fa != nil {
			have = fa.Balance
		}
		return fmt.Errorf("%w: have %d, need %d", ErrFunds, have, amount)
	}
	if amount == 0 {
		return nil
	}
	fa.Balance -= amount
	s.account(to).Balance += amount
	s.touchAccount(from)
	s.touchAccount(to)
	return nil
}

// GroupAccount is the account that holds a group twin's funds. No private
// key exists for it: only approved proposals move its funds.
func GroupAccount(group uint32) key.Public {
	var b []byte
	b = append(b, "zos-ledger-group-account"...)
	b = binary.BigEndian.AppendUint32(b, group)
	return key.Public(sha256.Sum256(b))
}

func (s *state) twinAccount(t *Twin) key.Public {
	if t.Group != nil {
		return GroupAccount(t.ID)
	}
	return t.Account
}

func (s *state) online(n *Node) bool {
	return n.LastSeen > 0 && uint64(s.height-n.LastSeen) <= s.params.NodeOffline
}

func (s *state) scheduleBilling(c *Contract) {
	b := c.ID % s.params.BillingFrequency
	s.billingBuckets[b] = append(s.billingBuckets[b], c.ID)
}

func sortedKeys[K interface{ ~uint32 | ~uint64 }, V any](m map[K]V) []K {
	ks := make([]K, 0, len(m))
	for k := range m {
		ks = append(ks, k)
	}
	sort.Slice(ks, func(i, j int) bool { return ks[i] < ks[j] })
	return ks
}
