package ledger

import (
	"slices"
	"strings"

	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
)

// The read methods return copies; they may run while a block is applied.

// Params returns the chain's parameters.
func (m *Machine) Params() Params { return m.s.params }

// Account returns an account's balance and next nonce.
func (m *Machine) Account(k key.Public) (Account, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	a := m.s.accounts[k]
	if a == nil {
		return Account{}, false
	}
	return *a, true
}

// Twin returns a twin.
func (m *Machine) Twin(id uint32) (Twin, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	t := m.s.twins[id]
	if t == nil {
		return Twin{}, false
	}
	return cloneTwin(t), true
}

func cloneTwin(t *Twin) Twin {
	c := *t
	c.EncKey = slices.Clone(t.EncKey)
	if t.Group != nil {
		g := *t.Group
		g.Members = slices.Clone(g.Members)
		c.Group = &g
	}
	return c
}

// TwinByAccount returns the twin of an account.
func (m *Machine) TwinByAccount(k key.Public) (Twin, bool) {
	m.mu.RLock()
	id, ok := m.s.twinByAccount[k]
	m.mu.RUnlock()
	if !ok {
		return Twin{}, false
	}
	return m.Twin(id)
}

// TwinKey implements grid.TwinKeys, so nodes and clients verify deployment
// signatures against the ledger.
func (m *Machine) TwinKey(id uint32) (grid.TwinKey, error) {
	t, ok := m.Twin(id)
	if !ok || t.Group != nil {
		return grid.TwinKey{}, grid.ErrUnknownTwin
	}
	return t.Key(), nil
}

// Proposal returns a group proposal.
func (m *Machine) Proposal(id uint64) (Proposal, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	p := m.s.proposals[id]
	if p == nil {
		return Proposal{}, false
	}
	c := *p
	c.Approvals = slices.Clone(p.Approvals)
	return c, true
}

// Farm returns a farm.
func (m *Machine) Farm(id uint32) (Farm, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	f := m.s.farms[id]
	if f == nil {
		return Farm{}, false
	}
	c := *f
	c.PublicIPs = slices.Clone(f.PublicIPs)
	return c, true
}

// Farms returns every farm, by id.
func (m *Machine) Farms() []Farm {
	m.mu.RLock()
	ids := sortedKeys(m.s.farms)
	m.mu.RUnlock()
	out := make([]Farm, 0, len(ids))
	for _, id := range ids {
		if f, ok := m.Farm(id); ok {
			out = append(out, f)
		}
	}
	return out
}

// NodeView is a node with what clients need to place workloads on it.
type NodeView struct {
	Node
	Used     grid.Capacity `json:"used"`
	Free     grid.Capacity `json:"free"` // IPV4U is the farm's free public IPs
	Online   bool          `json:"online"`
	RentedBy uint32        `json:"rented_by,omitempty"` // twin renting the whole node
}

// NodeFilter selects nodes; zero fields do not filter.
type NodeFilter struct {
	Farm     uint32
	Country  string
	Online   *bool
	MinFree  grid.Capacity // the node must have at least this free (IPV4U: free farm IPs)
	RentedBy uint32        // include nodes rented by this twin; others' rented nodes are excluded when MinFree is set
	Limit    int
}

func (s *state) nodeView(n *Node) NodeView {
	v := NodeView{Node: *n, Used: s.usedOnNode(n.ID), Online: s.online(n)}
	v.Interfaces = slices.Clone(n.Interfaces)
	v.Free = n.Resources.Sub(v.Used)
	v.Free.IPV4U = s.farms[n.Farm].FreeIPs()
	if rid, ok := s.rentByNode[n.ID]; ok {
		v.RentedBy = s.contracts[rid].Twin
	}
	return v
}

// Node returns a node with its free capacity.
func (m *Machine) Node(id uint32) (NodeView, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	n := m.s.nodes[id]
	if n == nil {
		return NodeView{}, false
	}
	return m.s.nodeView(n), true
}

// Nodes returns the nodes that pass f, by id.
func (m *Machine) Nodes(f NodeFilter) []NodeView {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []NodeView
	for _, id := range sortedKeys(m.s.nodes) {
		n := m.s.nodes[id]
		if f.Farm != 0 && n.Farm != f.Farm {
			continue
		}
		if f.Country != "" && !strings.EqualFold(n.Location.Country, f.Country) {
			continue
		}
		v := m.s.nodeView(n)
		if f.Online != nil && v.Online != *f.Online {
			continue
		}
		if !f.MinFree.IsZero() {
			if !v.Free.Fits(f.MinFree) || (v.RentedBy != 0 && v.RentedBy != f.RentedBy) {
				continue
			}
		}
		out = append(out, v)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}

// Contract returns a contract.
func (m *Machine) Contract(id uint64) (Contract, bool) {
	m.mu.RLock()
	defer m.mu.RUnlock()
	c := m.s.contracts[id]
	if c == nil {
		return Contract{}, false
	}
	cp := *c
	cp.PublicIPs = slices.Clone(c.PublicIPs)
	return cp, true
}

// ContractFilter selects contracts; zero fields do not filter.
type ContractFilter struct {
	Twin  uint32
	Node  uint32
	State ContractState
	Type  ContractType
	Limit int
}

// Contracts returns the contracts that pass f, by id.
func (m *Machine) Contracts(f ContractFilter) []Contract {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []Contract
	for _, id := range sortedKeys(m.s.contracts) {
		c := m.s.contracts[id]
		if (f.Twin != 0 && c.Twin != f.Twin) || (f.Node != 0 && c.Node != f.Node) ||
			(f.State != "" && c.State != f.State) || (f.Type != "" && c.Type != f.Type) {
			continue
		}
		cp := *c
		cp.PublicIPs = slices.Clone(c.PublicIPs)
		out = append(out, cp)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}

// Bills returns a contract's bill history, oldest first.
func (m *Machine) Bills(contract uint64) []Bill {
	m.mu.RLock()
	defer m.mu.RUnlock()
	return slices.Clone(m.s.bills[contract])
}

// EventFilter selects events; zero fields do not filter.
type EventFilter struct {
	Since    int64 // events of blocks after this height
	Node     uint32
	Twin     uint32
	Contract uint64
	Limit    int
}

// Events returns recent events (the latest 65536 are kept) that pass f,
// oldest first. A node follows its contracts by polling with Since set to
// the last height it saw.
func (m *Machine) Events(f EventFilter) []HeightEvent {
	m.mu.RLock()
	defer m.mu.RUnlock()
	var out []HeightEvent
	for _, e := range m.journal {
		if e.Height <= f.Since || (f.Node != 0 && e.Node != f.Node) || (f.Twin != 0 && e.Twin != f.Twin) ||
			(f.Contract != 0 && e.Contract != f.Contract) {
			continue
		}
		out = append(out, e)
		if f.Limit > 0 && len(out) == f.Limit {
			break
		}
	}
	return out
}
