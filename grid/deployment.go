package grid

import (
	"encoding/json"
	"errors"
	"fmt"

	"github.com/zosgrid/zos/key"
)

// ErrInvalid is returned for a deployment or workload that is malformed.
var ErrInvalid = errors.New("grid: invalid")

// MaxWorkloads bounds the workloads of one deployment.
const MaxWorkloads = 256

// Deployment is what a user (or a group of users) asks one node to run,
// under one node contract on the ledger.
type Deployment struct {
	Version              uint32               `json:"version"`
	TwinID               uint32               `json:"twin_id"`
	ContractID           uint64               `json:"contract_id"`
	Metadata             string               `json:"metadata,omitempty"`
	Description          string               `json:"description,omitempty"`
	SignatureRequirement SignatureRequirement `json:"signature_requirement"`
	Workloads            []Workload           `json:"workloads"`
}

// Workload is one unit of a deployment.
type Workload struct {
	Version     uint32
	Name        string
	Type        WorkloadType
	Data        WorkloadData
	Metadata    string
	Description string
	Result      *Result
}

// Result is what the node reports for a workload. It is not hashed or
// signed by the user.
type Result struct {
	Created uint64          `json:"created"`
	State   string          `json:"state"`
	Message string          `json:"message,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// SignatureRequirement says who must sign a deployment.
type SignatureRequirement struct {
	Requests       []SignatureRequest `json:"requests"`
	WeightRequired uint32             `json:"weight_required"`
	Signatures     []Signature        `json:"signatures,omitempty"`
}

// SignatureRequest lists one twin that may (or must) sign, and its weight.
type SignatureRequest struct {
	TwinID   uint32 `json:"twin_id"`
	Required bool   `json:"required"`
	Weight   uint32 `json:"weight"`
}

// Signature is one twin's ed25519 signature of the deployment hash.
type Signature struct {
	TwinID    uint32 `json:"twin_id"`
	Signature []byte `json:"signature"`
}

// DecodeDeployment parses the JSON form of a deployment and validates it.
func DecodeDeployment(b []byte) (Deployment, error) {
	var d Deployment
	if err := json.Unmarshal(b, &d); err != nil {
		return Deployment{}, fmt.Errorf("%w: deployment: %v", ErrInvalid, err)
	}
	if err := d.Validate(); err != nil {
		return Deployment{}, err
	}
	return d, nil
}

// Validate checks the deployment alone: names unique and valid, workload
// versions not newer than the deployment, each workload's data valid, and a
// signature requirement that can be met.
func (d *Deployment) Validate() error {
	if d.TwinID == 0 {
		return fmt.Errorf("%w: deployment: twin_id is required", ErrInvalid)
	}
	if len(d.Workloads) > MaxWorkloads {
		return fmt.Errorf("%w: deployment: %d workloads, at most %d", ErrInvalid, len(d.Workloads), MaxWorkloads)
	}
	seen := make(map[string]bool, len(d.Workloads))
	for _, w := range d.Workloads {
		if err := ValidateName(w.Name); err != nil {
			return fmt.Errorf("deployment workload: %w", err)
		}
		if seen[w.Name] {
			return fmt.Errorf("%w: deployment: workload name %q used twice", ErrInvalid, w.Name)
		}
		seen[w.Name] = true
		if w.Version > d.Version {
			return fmt.Errorf("%w: workload %q: version %d is newer than the deployment's %d", ErrInvalid, w.Name, w.Version, d.Version)
		}
		if w.Data == nil {
			return fmt.Errorf("%w: workload %q has no data", ErrInvalid, w.Name)
		}
		want, err := newWorkloadData(w.Type)
		if err != nil {
			return err
		}
		if fmt.Sprintf("%T", want) != fmt.Sprintf("%T", w.Data) {
			return fmt.Errorf("%w: workload %q: data does not match type %q", ErrInvalid, w.Name, w.Type)
		}
		if err := w.Data.Validate(); err != nil {
			return fmt.Errorf("workload %q: %w", w.Name, err)
		}
	}
	return d.SignatureRequirement.validate(d.TwinID)
}

// Capacity is the sum of what the deployment's workloads reserve.
func (d *Deployment) Capacity() Capacity {
	var c Capacity
	for _, w := range d.Workloads {
		if w.Data != nil {
			c = c.Add(w.Data.Capacity())
		}
	}
	return c
}

// Sign adds twin's signature of the deployment hash, replacing an earlier
// signature by the same twin.
func (d *Deployment) Sign(twin uint32, k key.Private) {
	h := d.Hash()
	sig := k.Sign(h[:])
	r := &d.SignatureRequirement
	for i := range r.Signatures {
		if r.Signatures[i].TwinID == twin {
			r.Signatures[i].Signature = sig
			return
		}
	}
	r.Signatures = append(r.Signatures, Signature{TwinID: twin, Signature: sig})
}
