package grid

import (
	"errors"
	"fmt"
)

// Verification errors. ErrUnauthorized covers every case where the
// signatures do not authorise the deployment.
var (
	ErrUnauthorized = errors.New("grid: signatures do not authorise the deployment")
	ErrUnknownTwin  = errors.New("grid: unknown twin")
)

// TwinKeys looks up a twin's public key (on the ledger, or a cache of it).
type TwinKeys interface {
	TwinKey(id uint32) (TwinKey, error)
}

// Verified holds a value whose signatures were checked. Only this package
// can build one, so code that takes a Verified cannot be handed unchecked
// input.
type Verified[T any] struct {
	v       T
	hash    Hash
	signers []uint32
}

// Value returns the verified value.
func (v Verified[T]) Value() T { return v.v }

// Hash returns the hash the signatures cover.
func (v Verified[T]) Hash() Hash { return v.hash }

// Signers returns the twins whose valid signatures were counted, in the
// order of the requests.
func (v Verified[T]) Signers() []uint32 { return append([]uint32(nil), v.signers...) }

func (r *SignatureRequirement) validate(owner uint32) error {
	if r.WeightRequired == 0 {
		return fmt.Errorf("%w: signature requirement: weight_required must be positive", ErrInvalid)
	}
	var total uint64
	seen := make(map[uint32]bool, len(r.Requests))
	ownerListed := false
	for _, q := range r.Requests {
		if q.TwinID == 0 {
			return fmt.Errorf("%w: signature request for twin 0", ErrInvalid)
		}
		if seen[q.TwinID] {
			return fmt.Errorf("%w: twin %d is requested twice", ErrInvalid, q.TwinID)
		}
		seen[q.TwinID] = true
		total += uint64(q.Weight)
		if q.TwinID == owner {
			ownerListed = true
		}
	}
	if !ownerListed {
		return fmt.Errorf("%w: the owner twin %d must be among the signature requests", ErrInvalid, owner)
	}
	if total < uint64(r.WeightRequired) {
		return fmt.Errorf("%w: requests weigh %d in all, less than weight_required %d", ErrInvalid, total, r.WeightRequired)
	}
	return nil
}

// Verify checks d's signatures against the requirement it carries and
// returns it as Verified. The rules:
//   - the deployment must be valid (Validate);
//   - every signature must come from a requested twin, at most one per twin,
//     and be a valid ed25519 signature of d.Hash() by that twin's key;
//   - every required twin must have signed; the owner twin must sign too;
//   - the weights of the signers must reach WeightRequired.
//
// A requested twin that did not sign is simply absent: it adds no weight and
// is no error unless it was required.
func Verify(d Deployment, keys TwinKeys) (Verified[Deployment], error) {
	if err := d.Validate(); err != nil {
		return Verified[Deployment]{}, err
	}
	h := d.Hash()
	r := d.SignatureRequirement
	sigs := make(map[uint32][]byte, len(r.Signatures))
	for _, s := range r.Signatures {
		if _, dup := sigs[s.TwinID]; dup {
			return Verified[Deployment]{}, fmt.Errorf("%w: twin %d signed twice", ErrUnauthorized, s.TwinID)
		}
		sigs[s.TwinID] = s.Signature
	}
	requested := make(map[uint32]bool, len(r.Requests))
	for _, q := range r.Requests {
		requested[q.TwinID] = true
	}
	for _, s := range r.Signatures {
		if !requested[s.TwinID] {
			return Verified[Deployment]{}, fmt.Errorf("%w: twin %d signed but is not requested", ErrUnauthorized, s.TwinID)
		}
	}
	var weight uint64
	var signers []uint32
	for _, q := range r.Requests {
		sig, ok := sigs[q.TwinID]
		if !ok {
			if q.Required || q.TwinID == d.TwinID {
				return Verified[Deployment]{}, fmt.Errorf("%w: required twin %d did not sign", ErrUnauthorized, q.TwinID)
			}
			continue
		}
		k, err := keys.TwinKey(q.TwinID)
		if err != nil {
			return Verified[Deployment]{}, fmt.Errorf("grid: key of twin %d: %w", q.TwinID, err)
		}
		if !k.Verify(h[:], sig) {
			return Verified[Deployment]{}, fmt.Errorf("%w: bad signature by twin %d", ErrUnauthorized, q.TwinID)
		}
		weight += uint64(q.Weight)
		signers = append(signers, q.TwinID)
	}
	if weight < uint64(r.WeightRequired) {
		return Verified[Deployment]{}, fmt.Errorf("%w: signers weigh %d, %d required", ErrUnauthorized, weight, r.WeightRequired)
	}
	return Verified[Deployment]{v: d, hash: h, signers: signers}, nil
}
