package ledger

import (
	"math/big"
)

// billBlock bills the contracts whose turn it is at the current height:
// contract id c is billed when height % BillingFrequency == c % BillingFrequency.
func (s *state) billBlock() []Event {
	b := uint64(s.height) % s.params.BillingFrequency
	ids := s.billingBuckets[b]
	if len(ids) == 0 {
		return nil
	}
	var evs []Event
	kept := ids[:0]
	for _, id := range ids {
		c := s.contracts[id]
		if !c.Active() {
			continue
		}
		s.billContract(c, &evs)
		if c.Active() {
			kept = append(kept, id)
		}
	}
	if len(kept) == 0 {
		delete(s.billingBuckets, b)
	} else {
		s.billingBuckets[b] = kept
	}
	return evs
}

// billContract bills c for the blocks since it was last billed.
//
// A contract in its grace period is not charged for capacity (its workloads
// are paused); when the owner's balance covers what was overdue it is paid
// and the contract resumes, and when the grace period ends unpaid the
// contract is deleted. A created contract is charged for its cost with the
// discount its owner's balance earns; if the balance is short, the bill is
// recorded unpaid and the contract enters its grace period.
func (s *state) billContract(c *Contract, evs *[]Event) {
	h := s.height
	seconds := uint64(h-c.LastBilled) * s.params.BlockSeconds
	c.LastBilled = h
	s.touchContract(c.ID)
	owner := s.twins[c.Twin]
	acct := s.twinAccount(owner)
	var balance uint64
	if a := s.accounts[acct]; a != nil {
		balance = a.Balance
	}
	if c.State == StateGrace {
		if rent := s.rentInGrace(c); rent != nil {
			return // follows its node's rent contract: resumes or ends with it
		}
		if balance >= c.Overdue {
			_ = s.move(acct, s.treasury, c.Overdue)
			c.TotalBilled += c.Overdue
			s.addBill(Bill{Contract: c.ID, Height: h, Amount: c.Overdue, Discount: "overdue", Paid: c.Overdue})
			c.State, c.GraceSince, c.Overdue = StateCreated, 0, 0
			*evs = append(*evs, Event{Type: EventContractResumed, Contract: c.ID, Node: c.Node, Twin: c.Twin})
			s.cascade(c, evs)
			return
		}
		if uint64(h-c.GraceSince) >= s.params.GracePeriod {
			s.deleteContract(c, CauseOutOfFunds)
			*evs = append(*evs, Event{Type: EventContractDeleted, Contract: c.ID, Node: c.Node, Twin: c.Twin})
			s.cascade(c, evs)
		}
		return
	}
	cost := s.contractCost(c, seconds)
	total := cost.Total()
	if total.Sign() == 0 {
		return
	}
	level, mult := Discount(balance, total, seconds)
	paid := floor(new(big.Rat).Mul(total, mult))
	bill := Bill{
		Contract: c.ID, Height: h, Seconds: seconds,
		MilliCU: floor(new(big.Rat).Mul(cost.CU, rat(1000))), MilliSU: floor(new(big.Rat).Mul(cost.SU, rat(1000))),
		IPs: cost.IPs, Capacity: floor(cost.Capacity), Network: cost.Network,
		Amount: floor(total), Discount: level, Paid: paid,
	}
	c.UnbilledNU = 0
	if balance >= paid {
		_ = s.move(acct, s.treasury, paid)
		c.TotalBilled += paid
		*evs = append(*evs, Event{Type: EventContractBilled, Contract: c.ID, Node: c.Node, Twin: c.Twin, Amount: paid})
	} else {
		bill.Paid, bill.Unpaid = 0, true
		c.State, c.GraceSince, c.Overdue = StateGrace, h, paid
		*evs = append(*evs, Event{Type: EventContractGrace, Contract: c.ID, Node: c.Node, Twin: c.Twin, Amount: paid})
		s.cascade(c, evs)
	}
	s.addBill(bill)
}

// rentInGrace returns the rent contract in grace that node contract c
// follows, if any.
func (s *state) rentInGrace(c *Contract) *Contract {
	if c.Type != NodeContract {
		return nil
	}
	id, ok := s.rentByNode[c.Node]
	if !ok {
		return nil
	}
	if r := s.contracts[id]; r.State == StateGrace && r.Twin == c.Twin {
		return r
	}
	return nil
}

// cascade carries a rent contract's state change to the renter's node
// contracts on that node: they enter grace with it (their workloads pause),
// resume with it, and are deleted with it.
func (s *state) cascade(rent *Contract, evs *[]Event) {
	if rent.Type != RentContract {
		return
	}
	for _, id := range sortedKeys(s.nodeContracts[rent.Node]) {
		c := s.contracts[id]
		if c.Twin != rent.Twin {
			continue
		}
		switch {
		case rent.State == StateGrace && c.State == StateCreated:
			c.State, c.GraceSince = StateGrace, s.height
			*evs = append(*evs, Event{Type: EventContractGrace, Contract: c.ID, Node: c.Node, Twin: c.Twin})
		case rent.State == StateCreated && c.State == StateGrace && c.Overdue == 0:
			c.State, c.GraceSince = StateCreated, 0
			*evs = append(*evs, Event{Type: EventContractResumed, Contract: c.ID, Node: c.Node, Twin: c.Twin})
		case rent.State == StateDeleted:
			s.deleteContract(c, CauseOutOfFunds)
			*evs = append(*evs, Event{Type: EventContractDeleted, Contract: c.ID, Node: c.Node, Twin: c.Twin})
		default:
			continue
		}
		s.touchContract(c.ID)
	}
}

// contractCost prices c over seconds. Contracts on a node that is offline
// are charged only for reported traffic: the grid bills what nodes report,
// and a node that does not report runs nothing anyone should pay for.
func (s *state) contractCost(c *Contract, seconds uint64) Cost {
	p := s.params.Pricing
	switch c.Type {
	case NameContract:
		return NameContractCost(p, seconds)
	case RentContract:
		n := s.nodes[c.Node]
		if !s.online(n) {
			seconds = 0
		}
		return RentContractCost(p, n.Resources, seconds)
	default:
		n := s.nodes[c.Node]
		if !s.online(n) {
			seconds = 0
		}
		_, rented := s.rentByNode[c.Node]
		return NodeContractCost(p, c.Used, uint64(len(c.PublicIPs)), seconds, c.UnbilledNU, !rented)
	}
}
