package ledger

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
)

// Error classes of transactions. Code maps each to the result code the
// chain reports.
var (
	ErrDecode       = errors.New("ledger: malformed transaction")
	ErrBadSignature = errors.New("ledger: bad signature")
	ErrBadNonce     = errors.New("ledger: wrong nonce")
	ErrNoAccount    = errors.New("ledger: unknown account")
	ErrFunds        = errors.New("ledger: insufficient funds")
	ErrNotFound     = errors.New("ledger: not found")
	ErrExists       = errors.New("ledger: already exists")
	ErrTaken        = errors.New("ledger: name taken")
	ErrNotOwner     = errors.New("ledger: not owner")
	ErrInvalid      = errors.New("ledger: invalid")
	ErrState        = errors.New("ledger: not allowed in this state")
	ErrCapacity     = errors.New("ledger: not enough capacity")
)

var codes = []error{nil, ErrDecode, ErrBadSignature, ErrBadNonce, ErrNoAccount, ErrFunds, ErrNotFound,
	ErrExists, ErrTaken, ErrNotOwner, ErrInvalid, ErrState, ErrCapacity}

// Code returns the result code of err: 0 for nil, a small positive number
// per class, and 99 for anything else.
func Code(err error) uint32 {
	if err == nil {
		return 0
	}
	for i, c := range codes[1:] {
		if errors.Is(err, c) {
			return uint32(i + 1)
		}
	}
	return 99
}

// MaxTxSize bounds an encoded transaction.
const MaxTxSize = 64 << 10

// Tx is a signed transaction. Sig is the signer's ed25519 signature of
// SignBytes(chainID): the domain, chain id, signer, nonce, type and the exact
// message bytes, each length-prefixed.
type Tx struct {
	Signer key.Public      `json:"signer"`
	Nonce  uint64          `json:"nonce"`
	Type   string          `json:"type"`
	Msg    json.RawMessage `json:"msg"`
	Sig    []byte          `json:"sig"`
}

// SignBytes returns what the signer signs.
func (tx *Tx) SignBytes(chainID string) []byte {
	var b []byte
	str := func(s []byte) {
		b = binary.BigEndian.AppendUint64(b, uint64(len(s)))
		b = append(b, s...)
	}
	str([]byte("zos-ledger-tx-v1"))
	str([]byte(chainID))
	str(tx.Signer[:])
	b = binary.BigEndian.AppendUint64(b, tx.Nonce)
	str([]byte(tx.Type))
	str(tx.Msg)
	return b
}

// NewTx builds and signs a transaction carrying msg.
func NewTx(chainID string, k key.Private, nonce uint64, msg Msg) ([]byte, error) {
	body, err := json.Marshal(msg)
	if err != nil {
		return nil, fmt.Errorf("ledger: encode %s: %w", msg.TxType(), err)
	}
	tx := Tx{Signer: k.Public(), Nonce: nonce, Type: msg.TxType(), Msg: body}
	tx.Sig = k.Sign(tx.SignBytes(chainID))
	return json.Marshal(tx)
}

// DecodeTx parses a transaction and checks its signature (no state needed).
func DecodeTx(chainID string, raw []byte) (*Tx, Msg, error) {
	tx, msg, err := decodeTx(raw)
	if err != nil {
		return nil, nil, err
	}
	if !tx.Signer.Verify(tx.SignBytes(chainID), tx.Sig) {
		return nil, nil, ErrBadSignature
	}
	return tx, msg, nil
}

// decodeTx parses a transaction without checking its signature.
func decodeTx(raw []byte) (*Tx, Msg, error) {
	if len(raw) > MaxTxSize {
		return nil, nil, fmt.Errorf("%w: %d bytes, at most %d", ErrDecode, len(raw), MaxTxSize)
	}
	var tx Tx
	if err := json.Unmarshal(raw, &tx); err != nil {
		return nil, nil, fmt.Errorf("%w: %v", ErrDecode, err)
	}
	msg, err := decodeMsg(tx.Type, tx.Msg)
	if err != nil {
		return nil, nil, err
	}
	return &tx, msg, nil
}

// Msg is the body of a transaction. The set of messages is closed; see
// decodeMsg.
type Msg interface{ TxType() string }

func decodeMsg(typ string, body []byte) (Msg, error) {
	var m Msg
	switch typ {
	case "transfer":
		m = &Transfer{}
	case "twin.create":
		m = &TwinCreate{}
	case "twin.update":
		m = &TwinUpdate{}
	case "group.create":
		m = &GroupCreate{}
	case "group.propose":
		m = &GroupPropose{}
	case "group.approve":
		m = &GroupApprove{}
	case "farm.create":
		m = &FarmCreate{}
	case "farm.add_ip":
		m = &FarmAddIP{}
	case "node.register":
		m = &NodeRegister{}
	case "node.uptime":
		m = &NodeUptime{}
	case "node.report":
		m = &NodeReport{}
	case "contract.create_node":
		m = &CreateNodeContract{}
	case "contract.update":
		m = &UpdateContract{}
	case "contract.cancel":
		m = &CancelContract{}
	case "contract.create_name":
		m = &CreateNameContract{}
	case "contract.create_rent":
		m = &CreateRentContract{}
	default:
		return nil, fmt.Errorf("%w: unknown transaction type %q", ErrDecode, typ)
	}
	if err := json.Unmarshal(body, m); err != nil {
		return nil, fmt.Errorf("%w: %s: %v", ErrDecode, typ, err)
	}
	return m, nil
}

// Transfer moves units from the signer to another account.
type Transfer struct {
	To     key.Public `json:"to"`
	Amount uint64     `json:"amount"`
}

// TwinCreate gives the signer's account a twin.
type TwinCreate struct {
	Relay  string `json:"relay,omitempty"`
	EncKey []byte `json:"enc_key,omitempty"`
}

// TwinUpdate changes the signer's twin's relay and encryption key.
type TwinUpdate TwinCreate

// GroupCreate makes a group twin whose members act for it together.
type GroupCreate struct {
	Members   []Member `json:"members"`
	Threshold uint64   `json:"threshold"`
}

// Action is a transaction a group performs once enough members approve.
type Action struct {
	Type string          `json:"type"`
	Msg  json.RawMessage `json:"msg"`
}

// GroupPropose proposes an action for a group; the proposer approves it.
type GroupPropose struct {
	Group  uint32 `json:"group"`
	Action Action `json:"action"`
}

// GroupApprove adds the signer's twin's approval to a proposal. The proposal
// executes when the approvals' weights reach the group's threshold.
type GroupApprove struct {
	Proposal uint64 `json:"proposal"`
}

// FarmCreate creates a farm owned by the signer's twin.
type FarmCreate struct {
	Name      string     `json:"name"`
	PublicIPs []PublicIP `json:"public_ips,omitempty"`
}

// FarmAddIP adds a public IP to a farm the signer owns.
type FarmAddIP struct {
	Farm    uint32 `json:"farm"`
	IP      string `json:"ip"`
	Gateway string `json:"gateway"`
}

// NodeRegister registers the signer's twin as a node of a farm.
type NodeRegister struct {
	Farm         uint32        `json:"farm"`
	Resources    grid.Capacity `json:"resources"`
	Location     Location      `json:"location"`
	Interfaces   []Interface   `json:"interfaces,omitempty"`
	PublicConfig *PublicConfig `json:"public_config,omitempty"`
}

// NodeUptime is a node's periodic liveness report.
type NodeUptime struct {
	Uptime uint64 `json:"uptime"`
}

// NodeReport carries a node's per-contract consumption.
type NodeReport struct {
	Reports []ContractReport `json:"reports"`
}

// ContractReport is what one contract used: capacity now, and public
// network bytes since the last report.
type ContractReport struct {
	Contract uint64        `json:"contract"`
	Used     grid.Capacity `json:"used"`
	NetBytes uint64        `json:"net_bytes"`
}

// CreateNodeContract registers a deployment hash on a node.
type CreateNodeContract struct {
	Node      uint32        `json:"node"`
	Hash      grid.Hash     `json:"hash"`
	Data      string        `json:"data,omitempty"`
	PublicIPs uint32        `json:"public_ips,omitempty"`
	Capacity  grid.Capacity `json:"capacity"`
}

// UpdateContract changes a node contract's deployment hash.
type UpdateContract struct {
	Contract uint64        `json:"contract"`
	Hash     grid.Hash     `json:"hash"`
	Data     string        `json:"data,omitempty"`
	Capacity grid.Capacity `json:"capacity"`
}

// CancelContract cancels a contract; what is owed is billed first.
type CancelContract struct {
	Contract uint64 `json:"contract"`
}

// CreateNameContract reserves a gateway name.
type CreateNameContract struct {
	Name string `json:"name"`
}

// CreateRentContract rents a whole node.
type CreateRentContract struct {
	Node uint32 `json:"node"`
}

// TxType implementations.
func (*Transfer) TxType() string           { return "transfer" }
func (*TwinCreate) TxType() string         { return "twin.create" }
func (*TwinUpdate) TxType() string         { return "twin.update" }
func (*GroupCreate) TxType() string        { return "group.create" }
func (*GroupPropose) TxType() string       { return "group.propose" }
func (*GroupApprove) TxType() string       { return "group.approve" }
func (*FarmCreate) TxType() string         { return "farm.create" }
func (*FarmAddIP) TxType() string          { return "farm.add_ip" }
func (*NodeRegister) TxType() string       { return "node.register" }
func (*NodeUptime) TxType() string         { return "node.uptime" }
func (*NodeReport) TxType() string         { return "node.report" }
func (*CreateNodeContract) TxType() string { return "contract.create_node" }
func (*UpdateContract) TxType() string     { return "contract.update" }
func (*CancelContract) TxType() string     { return "contract.cancel" }
func (*CreateNameContract) TxType() string { return "contract.create_name" }
func (*CreateRentContract) TxType() string { return "contract.create_rent" }

// NewAction wraps a message as a group action.
func NewAction(m Msg) (Action, error) {
	b, err := json.Marshal(m)
	if err != nil {
		return Action{}, err
	}
	return Action{Type: m.TxType(), Msg: b}, nil
}
