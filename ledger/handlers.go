package ledger

import (
	"fmt"
	"net/netip"
	"slices"
	"strings"

	"github.com/zosgrid/zos/grid"
)

// Limits on sizes stored in the state.
const (
	maxRelayLen  = 1024
	maxEncKeyLen = 128
	maxDataLen   = 512
	maxGroupSize = 64
	maxFarmIPs   = 256
	maxReports   = 1024
	maxTextLen   = 128
)

func (s *state) transfer(ctx *execCtx, m *Transfer) error {
	if m.To.IsZero() {
		return fmt.Errorf("%w: transfer to the zero account", ErrInvalid)
	}
	if err := s.move(ctx.signer, m.To, m.Amount); err != nil {
		return err
	}
	var twin uint32
	if ctx.twin != nil {
		twin = ctx.twin.ID
	}
	ctx.emit(Event{Type: EventTransfer, Twin: twin, Amount: m.Amount})
	return nil
}

func validateTwinFields(relay string, enc []byte) error {
	if len(relay) > maxRelayLen || len(enc) > maxEncKeyLen {
		return fmt.Errorf("%w: relay at most %d bytes, enc_key at most %d", ErrInvalid, maxRelayLen, maxEncKeyLen)
	}
	return nil
}

func (s *state) twinCreate(ctx *execCtx, m *TwinCreate) error {
	if ctx.twin != nil {
		return fmt.Errorf("%w: account already has twin %d", ErrExists, ctx.twin.ID)
	}
	if err := validateTwinFields(m.Relay, m.EncKey); err != nil {
		return err
	}
	t := &Twin{ID: s.nextTwin, Account: ctx.signer, Relay: m.Relay, EncKey: m.EncKey}
	s.nextTwin++
	s.twins[t.ID] = t
	s.twinByAccount[ctx.signer] = t.ID
	s.touchTwin(t.ID)
	ctx.created = uint64(t.ID)
	ctx.emit(Event{Type: EventTwinCreated, Twin: t.ID})
	return nil
}

func (s *state) twinUpdate(ctx *execCtx, m *TwinUpdate) error {
	if ctx.twin == nil {
		return fmt.Errorf("%w: account has no twin", ErrNotFound)
	}
	if err := validateTwinFields(m.Relay, m.EncKey); err != nil {
		return err
	}
	ctx.twin.Relay, ctx.twin.EncKey = m.Relay, m.EncKey
	s.touchTwin(ctx.twin.ID)
	return nil
}

func (s *state) groupCreate(ctx *execCtx, m *GroupCreate) error {
	if ctx.twin.Group != nil {
		return errGroupOnly
	}
	if len(m.Members) == 0 || len(m.Members) > maxGroupSize {
		return fmt.Errorf("%w: a group has 1 to %d members", ErrInvalid, maxGroupSize)
	}
	members := slices.Clone(m.Members)
	slices.SortFunc(members, func(a, b Member) int { return int(int64(a.Twin) - int64(b.Twin)) })
	var total uint64
	for i, mb := range members {
		t := s.twins[mb.Twin]
		if t == nil {
			return fmt.Errorf("%w: member twin %d", ErrNotFound, mb.Twin)
		}
		if t.Group != nil {
			return fmt.Errorf("%w: member twin %d is a group", ErrInvalid, mb.Twin)
		}
		if i > 0 && members[i-1].Twin == mb.Twin {
			return fmt.Errorf("%w: twin %d listed twice", ErrInvalid, mb.Twin)
		}
		if mb.Weight == 0 || mb.Weight > 1<<32 {
			return fmt.Errorf("%w: member weight must be in 1..2^32", ErrInvalid)
		}
		total += mb.Weight
	}
	if m.Threshold == 0 || m.Threshold > total {
		return fmt.Errorf("%w: threshold %d must be in 1..%d (the members' total weight)", ErrInvalid, m.Threshold, total)
	}
	t := &Twin{ID: s.nextTwin, Group: &Group{Members: members, Threshold: m.Threshold}}
	s.nextTwin++
	s.twins[t.ID] = t
	s.touchTwin(t.ID)
	ctx.created = uint64(t.ID)
	ctx.emit(Event{Type: EventTwinCreated, Twin: t.ID})
	return nil
}

// groupActions are the messages a group may execute.
var groupActions = map[string]bool{
	"transfer": true, "contract.create_node": true, "contract.update": true, "contract.cancel": true,
	"contract.create_name": true, "contract.create_rent": true,
}

func memberWeight(g *Group, twin uint32) uint64 {
	for _, m := range g.Members {
		if m.Twin == twin {
			return m.Weight
		}
	}
	return 0
}

func (s *state) groupPropose(ctx *execCtx, m *GroupPropose) error {
	g := s.twins[m.Group]
	if g == nil || g.Group == nil {
		return fmt.Errorf("%w: group %d", ErrNotFound, m.Group)
	}
	if memberWeight(g.Group, ctx.twin.ID) == 0 {
		return fmt.Errorf("%w: twin %d is not a member of group %d", ErrNotOwner, ctx.twin.ID, m.Group)
	}
	if !groupActions[m.Action.Type] {
		return fmt.Errorf("%w: a group cannot do %q", ErrInvalid, m.Action.Type)
	}
	if _, err := decodeMsg(m.Action.Type, m.Action.Msg); err != nil {
		return err
	}
	if len(m.Action.Msg) > MaxTxSize/2 {
		return fmt.Errorf("%w: action too large", ErrInvalid)
	}
	p := &Proposal{ID: s.nextProposal, Group: m.Group, Proposer: ctx.twin.ID, Action: m.Action}
	s.nextProposal++
	s.proposals[p.ID] = p
	s.touchProposal(p.ID)
	ctx.created = p.ID
	ctx.emit(Event{Type: EventProposalCreated, Twin: m.Group})
	return s.approve(ctx, p)
}

func (s *state) groupApprove(ctx *execCtx, m *GroupApprove) error {
	p := s.proposals[m.Proposal]
	if p == nil {
		return fmt.Errorf("%w: proposal %d", ErrNotFound, m.Proposal)
	}
	if p.Executed {
		return fmt.Errorf("%w: proposal %d already executed", ErrState, p.ID)
	}
	if memberWeight(s.twins[p.Group].Group, ctx.twin.ID) == 0 {
		return fmt.Errorf("%w: twin %d is not a member of group %d", ErrNotOwner, ctx.twin.ID, p.Group)
	}
	if slices.Contains(p.Approvals, ctx.twin.ID) {
		return fmt.Errorf("%w: twin %d already approved proposal %d", ErrExists, ctx.twin.ID, p.ID)
	}
	return s.approve(ctx, p)
}

// approve records ctx.twin's approval and executes the proposal once the
// approvals weigh enough. A failed execution is recorded in the proposal
// (it stays executed: members propose again), and the approval succeeds.
func (s *state) approve(ctx *execCtx, p *Proposal) error {
	p.Approvals = append(p.Approvals, ctx.twin.ID)
	slices.Sort(p.Approvals)
	s.touchProposal(p.ID)
	g := s.twins[p.Group]
	var w uint64
	for _, a := range p.Approvals {
		w += memberWeight(g.Group, a)
	}
	if w < g.Group.Threshold {
		return nil
	}
	p.Executed = true
	msg, err := decodeMsg(p.Action.Type, p.Action.Msg)
	if err == nil {
		gctx := &execCtx{signer: GroupAccount(g.ID), twin: g}
		err = s.exec(gctx, msg, true)
		ctx.events = append(ctx.events, gctx.events...)
		if gctx.created != 0 {
			ctx.created = gctx.created
		}
	}
	if err != nil {
		p.Result = err.Error()
	} else {
		p.Result = "ok"
	}
	ctx.emit(Event{Type: EventProposalExecuted, Twin: g.ID})
	return nil
}

func validatePublicIP(ip, gw string) error {
	pfx, err := netip.ParsePrefix(ip)
	if err != nil || !pfx.Addr().Is4() {
		return fmt.Errorf("%w: public ip %q: want a.b.c.d/nn", ErrInvalid, ip)
	}
	g, err := netip.ParseAddr(gw)
	if err != nil || !g.Is4() {
		return fmt.Errorf("%w: gateway %q: want a.b.c.d", ErrInvalid, gw)
	}
	a := pfx.Addr()
	if !a.IsGlobalUnicast() || a.IsPrivate() || a.IsLoopback() {
		return fmt.Errorf("%w: %s is not a public unicast address", ErrInvalid, a)
	}
	if !pfx.Masked().Contains(g) || g == a {
		return fmt.Errorf("%w: gateway %s is not in %s", ErrInvalid, g, pfx)
	}
	return nil
}

func (s *state) ipInUse(ip string) bool {
	addr := strings.SplitN(ip, "/", 2)[0]
	for _, id := range sortedKeys(s.farms) {
		for _, p := range s.farms[id].PublicIPs {
			if strings.SplitN(p.IP, "/", 2)[0] == addr {
				return true
			}
		}
	}
	return false
}

func (s *state) farmCreate(ctx *execCtx, m *FarmCreate) error {
	if ctx.twin.Group != nil {
		return errGroupOnly
	}
	if err := grid.ValidateName(m.Name); err != nil {
		return fmt.Errorf("%w: farm name: %v", ErrInvalid, err)
	}
	if _, ok := s.farmByName[m.Name]; ok {
		return fmt.Errorf("%w: farm name %q", ErrTaken, m.Name)
	}
	if len(m.PublicIPs) > maxFarmIPs {
		return fmt.Errorf("%w: at most %d public IPs", ErrInvalid, maxFarmIPs)
	}
	f := &Farm{ID: s.nextFarm, Name: m.Name, Twin: ctx.twin.ID}
	seen := map[string]bool{}
	for _, ip := range m.PublicIPs {
		if err := validatePublicIP(ip.IP, ip.Gateway); err != nil {
			return err
		}
		if seen[ip.IP] || s.ipInUse(ip.IP) {
			return fmt.Errorf("%w: public ip %s", ErrExists, ip.IP)
		}
		seen[ip.IP] = true
		f.PublicIPs = append(f.PublicIPs, PublicIP{IP: ip.IP, Gateway: ip.Gateway})
	}
	s.nextFarm++
	s.farms[f.ID] = f
	s.farmByName[f.Name] = f.ID
	s.touchFarm(f.ID)
	ctx.created = uint64(f.ID)
	ctx.emit(Event{Type: EventFarmCreated, Twin: ctx.twin.ID})
	return nil
}

func (s *state) farmAddIP(ctx *execCtx, m *FarmAddIP) error {
	f := s.farms[m.Farm]
	if f == nil {
		return fmt.Errorf("%w: farm %d", ErrNotFound, m.Farm)
	}
	if f.Twin != ctx.twin.ID {
		return fmt.Errorf("%w: farm %d belongs to twin %d", ErrNotOwner, f.ID, f.Twin)
	}
	if len(f.PublicIPs) >= maxFarmIPs {
		return fmt.Errorf("%w: farm has %d public IPs already", ErrInvalid, maxFarmIPs)
	}
	if err := validatePublicIP(m.IP, m.Gateway); err != nil {
		return err
	}
	if s.ipInUse(m.IP) {
		return fmt.Errorf("%w: public ip %s", ErrExists, m.IP)
	}
	f.PublicIPs = append(f.PublicIPs, PublicIP{IP: m.IP, Gateway: m.Gateway})
	s.touchFarm(f.ID)
	return nil
}

func textOK(ss ...string) bool {
	for _, s := range ss {
		if len(s) > maxTextLen {
			return false
		}
	}
	return true
}

func (s *state) nodeRegister(ctx *execCtx, m *NodeRegister) error {
	if ctx.twin.Group != nil {
		return errGroupOnly
	}
	if id, ok := s.nodeByTwin[ctx.twin.ID]; ok {
		return fmt.Errorf("%w: twin %d is node %d already", ErrExists, ctx.twin.ID, id)
	}
	if s.farms[m.Farm] == nil {
		return fmt.Errorf("%w: farm %d", ErrNotFound, m.Farm)
	}
	r := m.Resources
	if r.CRU == 0 || r.MRU == 0 || r.IPV4U != 0 {
		return fmt.Errorf("%w: node resources need cru and mru (and no ipv4u: public IPs belong to the farm)", ErrInvalid)
	}
	if !textOK(m.Location.Country, m.Location.City, m.Location.Latitude, m.Location.Longitude) || len(m.Interfaces) > 16 {
		return fmt.Errorf("%w: location or interfaces too large", ErrInvalid)
	}
	n := &Node{ID: s.nextNode, Farm: m.Farm, Twin: ctx.twin.ID, Resources: r, Location: m.Location,
		Interfaces: m.Interfaces, PublicConfig: m.PublicConfig, Created: s.height, LastSeen: s.height}
	s.nextNode++
	s.nodes[n.ID] = n
	s.nodeByTwin[ctx.twin.ID] = n.ID
	s.touchNode(n.ID)
	ctx.created = uint64(n.ID)
	ctx.emit(Event{Type: EventNodeRegistered, Node: n.ID, Twin: ctx.twin.ID})
	return nil
}

func (s *state) signerNode(ctx *execCtx) (*Node, error) {
	id, ok := s.nodeByTwin[ctx.twin.ID]
	if !ok {
		return nil, fmt.Errorf("%w: twin %d is not a node", ErrNotOwner, ctx.twin.ID)
	}
	return s.nodes[id], nil
}

func (s *state) nodeUptime(ctx *execCtx, m *NodeUptime) error {
	n, err := s.signerNode(ctx)
	if err != nil {
		return err
	}
	n.LastSeen, n.Uptime = s.height, m.Uptime
	s.touchNode(n.ID)
	return nil
}

func (s *state) nodeReport(ctx *execCtx, m *NodeReport) error {
	n, err := s.signerNode(ctx)
	if err != nil {
		return err
	}
	if len(m.Reports) > maxReports {
		return fmt.Errorf("%w: at most %d reports per transaction", ErrInvalid, maxReports)
	}
	for _, r := range m.Reports {
		c := s.contracts[r.Contract]
		if c == nil || c.Type != NodeContract || !c.Active() {
			return fmt.Errorf("%w: active node contract %d", ErrNotFound, r.Contract)
		}
		if c.Node != n.ID {
			return fmt.Errorf("%w: contract %d is on node %d, not %d", ErrNotOwner, c.ID, c.Node, n.ID)
		}
		if !n.Resources.Fits(grid.Capacity{CRU: r.Used.CRU, MRU: r.Used.MRU, SRU: r.Used.SRU, HRU: r.Used.HRU}) {
			return fmt.Errorf("%w: contract %d reports more than the node has", ErrInvalid, c.ID)
		}
	}
	for _, r := range m.Reports {
		c := s.contracts[r.Contract]
		c.Used = r.Used
		c.Used.IPV4U = uint64(len(c.PublicIPs))
		c.UnbilledNU += NetworkCost(s.params.Pricing, r.NetBytes)
		s.touchContract(c.ID)
	}
	n.LastSeen = s.height
	s.touchNode(n.ID)
	return nil
}

// usedOnNode sums what the active node contracts on a node hold: for each,
// the larger of what the client declared and what the node reported.
func (s *state) usedOnNode(node uint32) grid.Capacity {
	var used grid.Capacity
	for id := range s.nodeContracts[node] { // a sum: order does not matter
		c := s.contracts[id]
		used = used.Add(c.Declared.Max(c.Used))
	}
	return used
}

func (s *state) createNodeContract(ctx *execCtx, m *CreateNodeContract) error {
	n := s.nodes[m.Node]
	if n == nil {
		return fmt.Errorf("%w: node %d", ErrNotFound, m.Node)
	}
	if m.Hash.IsZero() {
		return fmt.Errorf("%w: deployment hash is required", ErrInvalid)
	}
	if len(m.Data) > maxDataLen {
		return fmt.Errorf("%w: data longer than %d bytes", ErrInvalid, maxDataLen)
	}
	if rid, ok := s.rentByNode[n.ID]; ok && s.contracts[rid].Twin != ctx.twin.ID {
		return fmt.Errorf("%w: node %d is rented by twin %d", ErrNotOwner, n.ID, s.contracts[rid].Twin)
	}
	if _, ok := s.contractByHash[nodeHash{n.ID, m.Hash}]; ok {
		return fmt.Errorf("%w: a contract with this hash exists on node %d", ErrExists, n.ID)
	}
	want := m.Capacity
	want.IPV4U = 0
	if free := n.Resources.Sub(s.usedOnNode(n.ID)); !free.Fits(want) {
		return fmt.Errorf("%w: node %d has %+v free", ErrCapacity, n.ID, free)
	}
	f := s.farms[n.Farm]
	if uint64(m.PublicIPs) > f.FreeIPs() {
		return fmt.Errorf("%w: farm %d has %d free public IPs, %d asked", ErrCapacity, f.ID, f.FreeIPs(), m.PublicIPs)
	}
	c := &Contract{ID: s.nextContract, Twin: ctx.twin.ID, Type: NodeContract, State: StateCreated, Node: n.ID,
		Hash: m.Hash, Data: m.Data, Declared: want, Created: s.height, LastBilled: s.height}
	s.nextContract++
	for i := range f.PublicIPs {
		if uint64(len(c.PublicIPs)) == uint64(m.PublicIPs) {
			break
		}
		if f.PublicIPs[i].Contract == 0 {
			f.PublicIPs[i].Contract = c.ID
			c.PublicIPs = append(c.PublicIPs, f.PublicIPs[i].IP)
		}
	}
	c.Declared.IPV4U = uint64(len(c.PublicIPs))
	if len(c.PublicIPs) > 0 {
		s.touchFarm(f.ID)
	}
	s.insertContract(c)
	ctx.created = c.ID
	ctx.emit(Event{Type: EventContractCreated, Contract: c.ID, Node: n.ID, Twin: c.Twin})
	return nil
}

func (s *state) insertContract(c *Contract) {
	s.contracts[c.ID] = c
	switch c.Type {
	case NodeContract:
		s.contractByHash[nodeHash{c.Node, c.Hash}] = c.ID
		if s.nodeContracts[c.Node] == nil {
			s.nodeContracts[c.Node] = map[uint64]struct{}{}
		}
		s.nodeContracts[c.Node][c.ID] = struct{}{}
	case NameContract:
		s.nameOwner[c.Name] = c.ID
	case RentContract:
		s.rentByNode[c.Node] = c.ID
	}
	s.scheduleBilling(c)
	s.touchContract(c.ID)
}

func (s *state) ownContract(ctx *execCtx, id uint64) (*Contract, error) {
	c := s.contracts[id]
	if c == nil || !c.Active() {
		return nil, fmt.Errorf("%w: active contract %d", ErrNotFound, id)
	}
	if c.Twin != ctx.twin.ID {
		return nil, fmt.Errorf("%w: contract %d belongs to twin %d", ErrNotOwner, id, c.Twin)
	}
	return c, nil
}

func (s *state) updateContract(ctx *execCtx, m *UpdateContract) error {
	c, err := s.ownContract(ctx, m.Contract)
	if err != nil {
		return err
	}
	if c.Type != NodeContract {
		return fmt.Errorf("%w: only node contracts are updated", ErrInvalid)
	}
	if c.State == StateGrace {
		return fmt.Errorf("%w: contract %d is in its grace period; add funds first", ErrState, c.ID)
	}
	if m.Hash.IsZero() || len(m.Data) > maxDataLen {
		return fmt.Errorf("%w: hash required, data at most %d bytes", ErrInvalid, maxDataLen)
	}
	if other, ok := s.contractByHash[nodeHash{c.Node, m.Hash}]; ok && other != c.ID {
		return fmt.Errorf("%w: a contract with this hash exists on node %d", ErrExists, c.Node)
	}
	want := m.Capacity
	want.IPV4U = 0
	n := s.nodes[c.Node]
	others := s.usedOnNode(c.Node).Sub(c.Declared.Max(c.Used))
	if free := n.Resources.Sub(others); !free.Fits(want) {
		return fmt.Errorf("%w: node %d has %+v free", ErrCapacity, n.ID, free)
	}
	delete(s.contractByHash, nodeHash{c.Node, c.Hash})
	c.Hash, c.Data = m.Hash, m.Data
	c.Declared = want
	c.Declared.IPV4U = uint64(len(c.PublicIPs))
	s.contractByHash[nodeHash{c.Node, c.Hash}] = c.ID
	s.touchContract(c.ID)
	ctx.emit(Event{Type: EventContractUpdated, Contract: c.ID, Node: c.Node, Twin: c.Twin})
	return nil
}

func (s *state) cancelContract(ctx *execCtx, m *CancelContract) error {
	c, err := s.ownContract(ctx, m.Contract)
	if err != nil {
		return err
	}
	if c.Type == RentContract {
		for _, id := range sortedKeys(s.nodeContracts[c.Node]) {
			if s.contracts[id].Twin != c.Twin {
				continue
			}
			return fmt.Errorf("%w: cancel the node contracts on node %d first (contract %d)", ErrState, c.Node, id)
		}
	}
	// Bill what is owed up to now; if the balance is short, the bill is
	// recorded unpaid and the contract is deleted all the same.
	var evs []Event
	s.billContract(c, &evs)
	ctx.events = append(ctx.events, evs...)
	if c.Active() {
		s.deleteContract(c, CauseCanceled)
	}
	ctx.emit(Event{Type: EventContractCanceled, Contract: c.ID, Node: c.Node, Twin: c.Twin})
	return nil
}

// deleteContract frees everything the contract held.
func (s *state) deleteContract(c *Contract, cause string) {
	c.State, c.Cause = StateDeleted, cause
	switch c.Type {
	case NodeContract:
		delete(s.contractByHash, nodeHash{c.Node, c.Hash})
		delete(s.nodeContracts[c.Node], c.ID)
		if n := s.nodes[c.Node]; n != nil && len(c.PublicIPs) > 0 {
			f := s.farms[n.Farm]
			for i := range f.PublicIPs {
				if f.PublicIPs[i].Contract == c.ID {
					f.PublicIPs[i].Contract = 0
				}
			}
			s.touchFarm(f.ID)
		}
	case NameContract:
		delete(s.nameOwner, c.Name)
	case RentContract:
		delete(s.rentByNode, c.Node)
	}
	s.touchContract(c.ID)
}

func (s *state) createNameContract(ctx *execCtx, m *CreateNameContract) error {
	if err := grid.ValidateName(m.Name); err != nil {
		return fmt.Errorf("%w: %v", ErrInvalid, err)
	}
	if id, ok := s.nameOwner[m.Name]; ok {
		return fmt.Errorf("%w: %q is held by contract %d", ErrTaken, m.Name, id)
	}
	c := &Contract{ID: s.nextContract, Twin: ctx.twin.ID, Type: NameContract, State: StateCreated, Name: m.Name,
		Created: s.height, LastBilled: s.height}
	s.nextContract++
	s.insertContract(c)
	ctx.created = c.ID
	ctx.emit(Event{Type: EventContractCreated, Contract: c.ID, Twin: c.Twin})
	return nil
}

func (s *state) createRentContract(ctx *execCtx, m *CreateRentContract) error {
	n := s.nodes[m.Node]
	if n == nil {
		return fmt.Errorf("%w: node %d", ErrNotFound, m.Node)
	}
	if id, ok := s.rentByNode[n.ID]; ok {
		return fmt.Errorf("%w: node %d is rented by contract %d", ErrExists, n.ID, id)
	}
	for _, id := range sortedKeys(s.nodeContracts[n.ID]) {
		if s.contracts[id].Twin != ctx.twin.ID {
			return fmt.Errorf("%w: node %d runs contract %d of another twin", ErrState, n.ID, id)
		}
	}
	c := &Contract{ID: s.nextContract, Twin: ctx.twin.ID, Type: RentContract, State: StateCreated, Node: n.ID,
		Created: s.height, LastBilled: s.height}
	s.nextContract++
	s.insertContract(c)
	ctx.created = c.ID
	ctx.emit(Event{Type: EventContractCreated, Contract: c.ID, Node: n.ID, Twin: c.Twin})
	return nil
}
