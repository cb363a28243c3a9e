package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"sort"

	"github.com/zosgrid/zos/key"
)

// ErrSnapshot is returned by Restore for a snapshot it cannot trust: wrong
// magic, a checksum that does not match, a body that does not decode, or
// one made for another genesis.
var ErrSnapshot = errors.New("ledger: bad snapshot")

// snapshotMagic is the first line of a snapshot. The second line is the
// hex SHA-256 of the body, the rest is the body (snapshotBody as JSON).
const snapshotMagic = "zos-ledger-snapshot 1\n"

// snapshotBody is the whole state, maps turned into slices sorted by key so
// that the same state always gives the same bytes. The derived indexes are
// saved as they are rather than rebuilt, so a restored machine is exactly
// the one that was saved.
type snapshotBody struct {
	Genesis      Genesis         `json:"genesis"`
	Height       int64           `json:"height"`
	AppHash      []byte          `json:"app_hash"`
	Accounts     []snapAccount   `json:"accounts"`
	Twins        []*Twin         `json:"twins"`
	Farms        []*Farm         `json:"farms"`
	Nodes        []*Node         `json:"nodes"`
	Contracts    []*Contract     `json:"contracts"`
	Proposals    []*Proposal     `json:"proposals"`
	Bills        []snapBills     `json:"bills"`
	NextTwin     uint32          `json:"next_twin"`
	NextFarm     uint32          `json:"next_farm"`
	NextNode     uint32          `json:"next_node"`
	NextContract uint64          `json:"next_contract"`
	NextProposal uint64          `json:"next_proposal"`
	TwinByAcct   []snapKeyID     `json:"twin_by_account"`
	FarmByName   []snapNameID    `json:"farm_by_name"`
	NodeByTwin   []snapPair      `json:"node_by_twin"`
	ByHash       []snapHashID    `json:"contract_by_hash"`
	NameOwner    []snapNameID    `json:"name_owner"`
	RentByNode   []snapPair      `json:"rent_by_node"`
	NodeContr    []snapIDs       `json:"node_contracts"`
	Buckets      []snapIDs       `json:"billing_buckets"`
	Journal      []HeightEvent   `json:"journal"`
	Extra        json.RawMessage `json:"extra,omitempty"` // reserved; must be empty in version 1
}

type snapAccount struct {
	Key key.Public `json:"key"`
	Account
}

type snapBills struct {
	Contract uint64 `json:"contract"`
	Bills    []Bill `json:"bills"`
}

type snapKeyID struct {
	Key key.Public `json:"key"`
	ID  uint32     `json:"id"`
}

type snapNameID struct {
	Name string `json:"name"`
	ID   uint64 `json:"id"`
}

type snapPair struct {
	K uint64 `json:"k"`
	V uint64 `json:"v"`
}

type snapHashID struct {
	Node uint32   `json:"node"`
	Hash [32]byte `json:"hash"`
	ID   uint64   `json:"id"`
}

type snapIDs struct {
	K   uint64   `json:"k"`
	IDs []uint64 `json:"ids"`
}

// Snapshot encodes the machine's whole state after the last applied block.
// Restore(genesis, snapshot) gives back a machine that continues exactly as
// this one would: same results, same app hashes.
func (m *Machine) Snapshot() []byte {
	m.mu.RLock()
	defer m.mu.RUnlock()
	s := m.s
	b := snapshotBody{
		Genesis: m.genesis, Height: s.height, AppHash: s.appHash,
		NextTwin: s.nextTwin, NextFarm: s.nextFarm, NextNode: s.nextNode, NextContract: s.nextContract, NextProposal: s.nextProposal,
		Journal: m.journal,
	}
	for k, a := range s.accounts {
		b.Accounts = append(b.Accounts, snapAccount{k, *a})
	}
	sort.Slice(b.Accounts, func(i, j int) bool { return bytes.Compare(b.Accounts[i].Key[:], b.Accounts[j].Key[:]) < 0 })
	b.Twins, b.Farms, b.Nodes = valuesByKey(s.twins), valuesByKey(s.farms), valuesByKey(s.nodes)
	b.Contracts, b.Proposals = valuesByKey(s.contracts), valuesByKey(s.proposals)
	for _, id := range sortedKeys(s.bills) {
		b.Bills = append(b.Bills, snapBills{id, s.bills[id]})
	}
	for k, id := range s.twinByAccount {
		b.TwinByAcct = append(b.TwinByAcct, snapKeyID{k, id})
	}
	sort.Slice(b.TwinByAcct, func(i, j int) bool { return b.TwinByAcct[i].ID < b.TwinByAcct[j].ID })
	b.FarmByName = nameIDs(s.farmByName)
	b.NameOwner = nameIDs(s.nameOwner)
	b.NodeByTwin = pairs(s.nodeByTwin)
	b.RentByNode = pairs(s.rentByNode)
	for k, id := range s.contractByHash {
		b.ByHash = append(b.ByHash, snapHashID{k.node, k.hash, id})
	}
	sort.Slice(b.ByHash, func(i, j int) bool { return b.ByHash[i].ID < b.ByHash[j].ID })
	for _, n := range sortedKeys(s.nodeContracts) {
		b.NodeContr = append(b.NodeContr, snapIDs{uint64(n), sortedKeys(s.nodeContracts[n])})
	}
	for _, k := range sortedKeys(s.billingBuckets) {
		b.Buckets = append(b.Buckets, snapIDs{k, s.billingBuckets[k]})
	}
	body, err := json.Marshal(b)
	if err != nil {
		panic(fmt.Sprintf("ledger: state does not encode: %v", err)) // an invariant, not input
	}
	sum := sha256.Sum256(body)
	out := make([]byte, 0, len(snapshotMagic)+65+len(body))
	out = append(out, snapshotMagic...)
	out = hex.AppendEncode(out, sum[:])
	out = append(out, '\n')
	return append(out, body...)
}

// valuesByKey lists m's values in the order of their keys; nil for an empty
// map, as the snapshot has always had it (the same state, the same bytes).
func valuesByKey[K ~uint32 | ~uint64, V any](m map[K]V) []V {
	var out []V
	for _, k := range sortedKeys(m) {
		out = append(out, m[k])
	}
	return out
}

func nameIDs[V ~uint32 | ~uint64](m map[string]V) []snapNameID {
	out := make([]snapNameID, 0, len(m))
	for k, v := range m {
		out = append(out, snapNameID{k, uint64(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

func pairs[K, V ~uint32 | ~uint64](m map[K]V) []snapPair {
	out := make([]snapPair, 0, len(m))
	for k, v := range m {
		out = append(out, snapPair{uint64(k), uint64(v)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].K < out[j].K })
	return out
}

// SnapshotInfo reads a snapshot's height and app hash after checking its
// checksum, without building a machine.
func SnapshotInfo(snap []byte) (height int64, appHash []byte, err error) {
	body, err := snapshotBodyBytes(snap)
	if err != nil {
		return 0, nil, err
	}
	var hdr struct {
		Height  int64  `json:"height"`
		AppHash []byte `json:"app_hash"`
	}
	if err := json.Unmarshal(body, &hdr); err != nil {
		return 0, nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	return hdr.Height, hdr.AppHash, nil
}

func snapshotBodyBytes(snap []byte) ([]byte, error) {
	rest, ok := bytes.CutPrefix(snap, []byte(snapshotMagic))
	if !ok {
		return nil, fmt.Errorf("%w: not a ledger snapshot (version 1)", ErrSnapshot)
	}
	sumHex, body, ok := bytes.Cut(rest, []byte("\n"))
	var sum [32]byte
	if !ok || len(sumHex) != 64 {
		return nil, fmt.Errorf("%w: no checksum line", ErrSnapshot)
	}
	if _, err := hex.Decode(sum[:], sumHex); err != nil {
		return nil, fmt.Errorf("%w: checksum: %v", ErrSnapshot, err)
	}
	if sha256.Sum256(body) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch (truncated or corrupt)", ErrSnapshot)
	}
	return body, nil
}

// Restore builds a machine from a snapshot made by Snapshot for the same
// genesis. Anything it cannot trust is refused with ErrSnapshot; the caller
// then starts from genesis and replays every block.
func Restore(g Genesis, snap []byte) (*Machine, error) {
	if err := ValidateGenesis(g); err != nil {
		return nil, err
	}
	body, err := snapshotBodyBytes(snap)
	if err != nil {
		return nil, err
	}
	var b snapshotBody
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&b); err != nil {
		return nil, fmt.Errorf("%w: %v", ErrSnapshot, err)
	}
	if !reflect.DeepEqual(normGenesis(b.Genesis), normGenesis(g)) {
		return nil, fmt.Errorf("%w: made for another genesis (chain %q)", ErrSnapshot, b.Genesis.ChainID)
	}
	if b.Height < 0 || (b.Height > 0 && len(b.AppHash) != sha256.Size) || len(b.Extra) > 0 {
		return nil, fmt.Errorf("%w: height %d with a %d-byte app hash", ErrSnapshot, b.Height, len(b.AppHash))
	}
	s := newState(g)
	s.height, s.appHash = b.Height, b.AppHash
	s.nextTwin, s.nextFarm, s.nextNode, s.nextContract, s.nextProposal = b.NextTwin, b.NextFarm, b.NextNode, b.NextContract, b.NextProposal
	for _, a := range b.Accounts {
		s.accounts[a.Key] = &Account{Balance: a.Balance, Nonce: a.Nonce}
	}
	if err := errors.Join(
		restoreByID("twin", s.twins, b.Twins, func(t *Twin) uint32 { return t.ID }),
		restoreByID("farm", s.farms, b.Farms, func(f *Farm) uint32 { return f.ID }),
		restoreByID("node", s.nodes, b.Nodes, func(n *Node) uint32 { return n.ID }),
		restoreByID("contract", s.contracts, b.Contracts, func(c *Contract) uint64 { return c.ID }),
		restoreByID("proposal", s.proposals, b.Proposals, func(p *Proposal) uint64 { return p.ID }),
	); err != nil {
		return nil, err
	}
	for _, bl := range b.Bills {
		s.bills[bl.Contract] = bl.Bills
	}
	for _, e := range b.TwinByAcct {
		s.twinByAccount[e.Key] = e.ID
	}
	for _, e := range b.FarmByName {
		s.farmByName[e.Name] = uint32(e.ID)
	}
	for _, e := range b.NameOwner {
		s.nameOwner[e.Name] = e.ID
	}
	for _, e := range b.NodeByTwin {
		s.nodeByTwin[uint32(e.K)] = uint32(e.V)
	}
	for _, e := range b.RentByNode {
		s.rentByNode[uint32(e.K)] = e.V
	}
	for _, e := range b.ByHash {
		s.contractByHash[nodeHash{e.Node, e.Hash}] = e.ID
	}
	for _, e := range b.NodeContr {
		set := make(map[uint64]struct{}, len(e.IDs))
		for _, id := range e.IDs {
			set[id] = struct{}{}
		}
		s.nodeContracts[uint32(e.K)] = set
	}
	for _, e := range b.Buckets {
		s.billingBuckets[e.K] = e.IDs
	}
	return &Machine{s: s, genesis: g, journal: b.Journal}, nil
}

// restoreByID puts every object of a snapshot list into m under its id; a
// null entry (what names its kind) makes the snapshot untrustworthy.
func restoreByID[K comparable, V any](what string, m map[K]*V, list []*V, id func(*V) K) error {
	for _, v := range list {
		if v == nil {
			return fmt.Errorf("%w: null %s", ErrSnapshot, what)
		}
		m[id(v)] = v
	}
	return nil
}

// normGenesis makes nil and empty balance lists compare equal.
func normGenesis(g Genesis) Genesis {
	if len(g.Balances) == 0 {
		g.Balances = nil
	}
	return g
}
