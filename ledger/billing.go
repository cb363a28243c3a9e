package ledger

import (
	"math/big"

	"github.com/zosgrid/zos/grid"
)

const gib = 1 << 30

func rat(n uint64) *big.Rat { return new(big.Rat).SetUint64(n) }

func ratFrac(a, b uint64) *big.Rat {
	return new(big.Rat).SetFrac(new(big.Int).SetUint64(a), new(big.Int).SetUint64(b))
}

func maxRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) >= 0 {
		return a
	}
	return b
}

func minRat(a, b *big.Rat) *big.Rat {
	if a.Cmp(b) <= 0 {
		return a
	}
	return b
}

// floor returns ⌊r⌋ for r ≥ 0, saturating at the largest uint64.
func floor(r *big.Rat) uint64 {
	q := new(big.Int).Quo(r.Num(), r.Denom())
	if !q.IsUint64() {
		if q.Sign() < 0 {
			return 0
		}
		return ^uint64(0)
	}
	return q.Uint64()
}

// CU returns the compute units of a capacity, exactly:
// min(max(mru/4, cru/2), max(mru/8, cru), max(mru/2, cru/4)), mru in GiB.
func CU(c grid.Capacity) *big.Rat {
	mru := ratFrac(c.MRU, gib)
	cru := rat(c.CRU)
	q := func(x *big.Rat, d int64) *big.Rat { return new(big.Rat).Quo(x, big.NewRat(d, 1)) }
	return minRat(minRat(maxRat(q(mru, 4), q(cru, 2)), maxRat(q(mru, 8), cru)), maxRat(q(mru, 2), q(cru, 4)))
}

// SU returns the storage units of a capacity, exactly: hru/1200 + sru/200,
// both in GiB.
func SU(c grid.Capacity) *big.Rat {
	return new(big.Rat).Add(ratFrac(c.HRU, gib*1200), ratFrac(c.SRU, gib*200))
}

// Discount levels, from the balance divided by the projected monthly cost.
var discountLevels = []struct {
	name    string
	months  *big.Rat
	percent int64 // price multiplier in percent
}{
	{"gold", big.NewRat(18, 1), 40},
	{"silver", big.NewRat(6, 1), 60},
	{"bronze", big.NewRat(3, 1), 70},
	{"default", big.NewRat(3, 2), 80},
}

const secondsPerMonth = 30 * 24 * 3600

// Discount returns the discount level and the price multiplier for a
// balance that must pay amount for seconds of use: the level is balance
// divided by the monthly cost (amount·secondsPerMonth/seconds).
func Discount(balance uint64, amount *big.Rat, seconds uint64) (string, *big.Rat) {
	if amount.Sign() == 0 || seconds == 0 {
		return "none", big.NewRat(1, 1)
	}
	monthly := new(big.Rat).Mul(amount, ratFrac(secondsPerMonth, seconds))
	level := new(big.Rat).Quo(rat(balance), monthly)
	for _, l := range discountLevels {
		if level.Cmp(l.months) >= 0 {
			return l.name, big.NewRat(l.percent, 100)
		}
	}
	return "none", big.NewRat(1, 1)
}

// Cost is the price of some use over some time, before the discount.
type Cost struct {
	CU, SU   *big.Rat
	IPs      uint64
	Capacity *big.Rat // units for CU, SU, IPv4 (or the name, or the rent)
	Network  uint64   // units for reported traffic
}

// Total returns Capacity + Network.
func (c Cost) Total() *big.Rat { return new(big.Rat).Add(c.Capacity, rat(c.Network)) }

// perHour returns price·units·seconds/3600.
func perHour(price uint64, units *big.Rat, seconds uint64) *big.Rat {
	r := new(big.Rat).Mul(rat(price), units)
	return r.Mul(r, ratFrac(seconds, 3600))
}

// NodeContractCost prices a node contract: (CU·cu + SU·su + IPs·ipv4) per
// hour over seconds, plus unbilled network units. With billResources false
// (the node is rented, the renter pays through the rent contract) only IPs
// and network are priced.
func NodeContractCost(p Pricing, used grid.Capacity, ips uint64, seconds uint64, unbilledNU uint64, billResources bool) Cost {
	c := Cost{CU: CU(used), SU: SU(used), IPs: ips, Capacity: new(big.Rat), Network: unbilledNU}
	if billResources {
		c.Capacity.Add(c.Capacity, perHour(p.CU, c.CU, seconds))
		c.Capacity.Add(c.Capacity, perHour(p.SU, c.SU, seconds))
	}
	c.Capacity.Add(c.Capacity, perHour(p.IPv4, rat(ips), seconds))
	return c
}

// RentContractCost prices renting a whole node: the node's CU and SU with
// the dedicated discount.
func RentContractCost(p Pricing, node grid.Capacity, seconds uint64) Cost {
	c := Cost{CU: CU(node), SU: SU(node), Capacity: new(big.Rat)}
	c.Capacity.Add(perHour(p.CU, c.CU, seconds), perHour(p.SU, c.SU, seconds))
	c.Capacity.Mul(c.Capacity, ratFrac(100-min(p.DedicatedDiscountPercent, 100), 100))
	return c
}

// NameContractCost prices a gateway name.
func NameContractCost(p Pricing, seconds uint64) Cost {
	return Cost{CU: new(big.Rat), SU: new(big.Rat), Capacity: perHour(p.UniqueName, rat(1), seconds)}
}

// NetworkCost prices reported public traffic: bytes/10⁹ · nu, floored.
func NetworkCost(p Pricing, bytes uint64) uint64 {
	return floor(new(big.Rat).Mul(ratFrac(bytes, 1_000_000_000), rat(p.NU)))
}

// Estimate is what a contract would cost over seconds for a balance, with
// the same code billing uses; `zos ledger estimate` prints it.
type Estimate struct {
	MilliCU  uint64 `json:"milli_cu"`
	MilliSU  uint64 `json:"milli_su"`
	Amount   uint64 `json:"amount"`
	Discount string `json:"discount"`
	Paid     uint64 `json:"paid"`
}

// EstimateNodeContract estimates a node contract using capacity c and ips
// public IPs for seconds, paid from balance.
func EstimateNodeContract(p Pricing, c grid.Capacity, ips, seconds, balance uint64) Estimate {
	cost := NodeContractCost(p, c, ips, seconds, 0, true)
	return finish(cost, seconds, balance)
}

func finish(cost Cost, seconds, balance uint64) Estimate {
	total := cost.Total()
	level, mult := Discount(balance, total, seconds)
	return Estimate{
		MilliCU:  floor(new(big.Rat).Mul(cost.CU, rat(1000))),
		MilliSU:  floor(new(big.Rat).Mul(cost.SU, rat(1000))),
		Amount:   floor(total),
		Discount: level,
		Paid:     floor(new(big.Rat).Mul(total, mult)),
	}
}
