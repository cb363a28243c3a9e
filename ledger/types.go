package ledger

import (
	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
)

// Pricing is the price list, in units per hour (CU, SU, IPv4, name) or per
// GB transferred (NU).
type Pricing struct {
	CU         uint64 `json:"cu"`
	SU         uint64 `json:"su"`
	NU         uint64 `json:"nu"`
	IPv4       uint64 `json:"ipv4"`
	UniqueName uint64 `json:"unique_name"`
	// DedicatedDiscountPercent is the discount a rent contract (a whole
	// node) gets on the node's CU and SU.
	DedicatedDiscountPercent uint64 `json:"dedicated_discount_percent"`
}

// DefaultPricing is the reference grid's genesis price list.
func DefaultPricing() Pricing {
	return Pricing{CU: 100_000, SU: 50_000, NU: 15_000, IPv4: 40_000, UniqueName: 2_500, DedicatedDiscountPercent: 50}
}

// Params are the chain's rules, fixed at genesis.
type Params struct {
	// BlockSeconds is how many seconds one block stands for in billing.
	BlockSeconds uint64 `json:"block_seconds"`
	// BillingFrequency is the billing cycle in blocks: contract id c is
	// billed at the heights h with h % BillingFrequency == c % BillingFrequency.
	BillingFrequency uint64 `json:"billing_frequency"`
	// GracePeriod is how many blocks a contract stays in grace before it is
	// deleted for lack of funds.
	GracePeriod uint64 `json:"grace_period"`
	// NodeOffline is how many blocks after its last uptime report a node
	// counts as offline; contracts on an offline node are not billed for
	// capacity.
	NodeOffline uint64  `json:"node_offline"`
	Pricing     Pricing `json:"pricing"`
	// TxFee is what every transaction costs its signer, in units, paid to
	// the treasury before the message runs and kept even if the message
	// fails, so no account can fill blocks for free. 0 disables fees.
	TxFee uint64 `json:"tx_fee"`
}

// DefaultTxFee is 0.0001 USD at the reference pricing (10⁷ units = 1 USD).
const DefaultTxFee = 1000

// DefaultParams suits a chain with one-second blocks: hourly billing, a
// 14-day grace period, nodes offline after 2 hours without a report, and a
// fee of DefaultTxFee per transaction.
func DefaultParams() Params {
	return Params{BlockSeconds: 1, BillingFrequency: 3600, GracePeriod: 14 * 24 * 3600, NodeOffline: 7200, Pricing: DefaultPricing(), TxFee: DefaultTxFee}
}

// Genesis is the initial state.
type Genesis struct {
	ChainID  string           `json:"chain_id"`
	Params   Params           `json:"params"`
	Treasury key.Public       `json:"treasury"`
	Balances []GenesisBalance `json:"balances"`
}

// GenesisBalance funds one account at genesis.
type GenesisBalance struct {
	Account key.Public `json:"account"`
	Amount  uint64     `json:"amount"`
}

// Account holds a balance and the next nonce the account must use.
type Account struct {
	Balance uint64 `json:"balance"`
	Nonce   uint64 `json:"nonce"`
}

// Twin is the addressable identity of a user, farmer or node. A group twin
// has no key of its own: its members act for it through proposals, and its
// account is GroupAccount(id).
type Twin struct {
	ID      uint32     `json:"id"`
	Account key.Public `json:"account"`
	Relay   string     `json:"relay,omitempty"`
	EncKey  []byte     `json:"enc_key,omitempty"`
	Group   *Group     `json:"group,omitempty"`
}

// Key returns the twin's signing key (zero for a group).
func (t *Twin) Key() grid.TwinKey {
	if t.Group != nil {
		return grid.TwinKey{}
	}
	return grid.NewTwinKey(t.Account)
}

// Group is the membership of a group twin.
type Group struct {
	Members   []Member `json:"members"`
	Threshold uint64   `json:"threshold"`
}

// Member is one twin of a group and its weight.
type Member struct {
	Twin   uint32 `json:"twin"`
	Weight uint64 `json:"weight"`
}

// Proposal is an action a group member proposed for the group.
type Proposal struct {
	ID        uint64   `json:"id"`
	Group     uint32   `json:"group"`
	Proposer  uint32   `json:"proposer"`
	Action    Action   `json:"action"`
	Approvals []uint32 `json:"approvals"`
	Executed  bool     `json:"executed"`
	Result    string   `json:"result,omitempty"`
}

// PublicIP is one of a farm's public IPv4 addresses.
type PublicIP struct {
	IP       string `json:"ip"` // a.b.c.d/nn
	Gateway  string `json:"gateway"`
	Contract uint64 `json:"contract"` // 0 when free
}

// Farm groups nodes under one farmer twin.
type Farm struct {
	ID        uint32     `json:"id"`
	Name      string     `json:"name"`
	Twin      uint32     `json:"twin"`
	PublicIPs []PublicIP `json:"public_ips"`
}

// FreeIPs counts the farm's unreserved public IPs.
func (f *Farm) FreeIPs() uint64 {
	var n uint64
	for _, ip := range f.PublicIPs {
		if ip.Contract == 0 {
			n++
		}
	}
	return n
}

// Location is where a node is.
type Location struct {
	Country   string `json:"country"`
	City      string `json:"city"`
	Latitude  string `json:"latitude,omitempty"`
	Longitude string `json:"longitude,omitempty"`
}

// Interface is a node network interface.
type Interface struct {
	Name string   `json:"name"`
	MAC  string   `json:"mac"`
	IPs  []string `json:"ips"`
}

// PublicConfig is a node's own public addressing (for gateways).
type PublicConfig struct {
	IPv4   string `json:"ipv4"`
	GW4    string `json:"gw4"`
	IPv6   string `json:"ipv6,omitempty"`
	GW6    string `json:"gw6,omitempty"`
	Domain string `json:"domain,omitempty"`
}

// Node is a machine that runs workloads, registered by its own twin.
type Node struct {
	ID           uint32        `json:"id"`
	Farm         uint32        `json:"farm"`
	Twin         uint32        `json:"twin"`
	Resources    grid.Capacity `json:"resources"`
	Location     Location      `json:"location"`
	Interfaces   []Interface   `json:"interfaces,omitempty"`
	PublicConfig *PublicConfig `json:"public_config,omitempty"`
	Created      int64         `json:"created"`
	LastSeen     int64         `json:"last_seen"` // height of the last uptime report, 0 = never
	Uptime       uint64        `json:"uptime"`    // seconds, as reported
}

// ContractType says what a contract is for.
type ContractType string

// The contract types.
const (
	NodeContract ContractType = "node"
	NameContract ContractType = "name"
	RentContract ContractType = "rent"
)

// ContractState is where a contract is in its life.
type ContractState string

// The contract states. Deleted contracts stay readable with their bills.
const (
	StateCreated ContractState = "created"
	StateGrace   ContractState = "grace"
	StateDeleted ContractState = "deleted"
)

// Deletion causes.
const (
	CauseCanceled   = "canceled_by_user"
	CauseOutOfFunds = "out_of_funds"
)

// Contract is a node, name or rent contract.
type Contract struct {
	ID    uint64        `json:"id"`
	Twin  uint32        `json:"twin"`
	Type  ContractType  `json:"type"`
	State ContractState `json:"state"`
	Cause string        `json:"cause,omitempty"`
	// Node contracts and rent contracts.
	Node uint32 `json:"node,omitempty"`
	// Node contracts.
	Hash      grid.Hash     `json:"hash,omitempty"`
	Data      string        `json:"data,omitempty"`
	PublicIPs []string      `json:"public_ips,omitempty"`
	Declared  grid.Capacity `json:"declared"` // what the client said it deploys
	Used      grid.Capacity `json:"used"`     // what the node last reported
	// Name contracts.
	Name string `json:"name,omitempty"`
	// Billing.
	Created     int64  `json:"created"`
	LastBilled  int64  `json:"last_billed"`
	UnbilledNU  uint64 `json:"unbilled_nu"` // units owed for reported traffic
	GraceSince  int64  `json:"grace_since,omitempty"`
	Overdue     uint64 `json:"overdue,omitempty"` // units owed when grace began
	TotalBilled uint64 `json:"total_billed"`
}

// Active reports whether the contract is not deleted.
func (c *Contract) Active() bool { return c.State != StateDeleted }

// Bill is one billing of one contract.
type Bill struct {
	Contract uint64 `json:"contract"`
	Height   int64  `json:"height"`
	Seconds  uint64 `json:"seconds"`
	// CU and SU in thousandths, for reading; the amount uses exact values.
	MilliCU  uint64 `json:"milli_cu"`
	MilliSU  uint64 `json:"milli_su"`
	IPs      uint64 `json:"ips"`
	Capacity uint64 `json:"capacity_units"` // CU, SU, IPv4 or name cost
	Network  uint64 `json:"network_units"`  // NU cost
	Amount   uint64 `json:"amount"`         // before discount
	Discount string `json:"discount"`       // none, default, bronze, silver, gold
	Paid     uint64 `json:"paid"`
	Unpaid   bool   `json:"unpaid,omitempty"` // true when the balance was short (grace began)
}

// Event is something followers of the ledger (nodes, clients) react to.
type Event struct {
	Type     string `json:"type"`
	Contract uint64 `json:"contract,omitempty"`
	Node     uint32 `json:"node,omitempty"`
	Twin     uint32 `json:"twin,omitempty"`
	Amount   uint64 `json:"amount,omitempty"`
}

// Event types.
const (
	EventTwinCreated      = "twin_created"
	EventFarmCreated      = "farm_created"
	EventNodeRegistered   = "node_registered"
	EventContractCreated  = "contract_created"
	EventContractUpdated  = "contract_updated"
	EventContractCanceled = "contract_canceled"
	EventContractGrace    = "contract_grace"
	EventContractResumed  = "contract_resumed"
	EventContractDeleted  = "contract_deleted" // out of funds
	EventContractBilled   = "contract_billed"
	EventProposalCreated  = "proposal_created"
	EventProposalExecuted = "proposal_executed"
	EventTransfer         = "transfer"
)
