package grid

import (
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"fmt"
	"sort"
)

// hashDomain starts every deployment encoding, so a deployment hash can never
// be confused with a hash of something else.
const hashDomain = "zos-deployment-v1"

// Hash is a SHA-256 deployment hash.
type Hash [sha256.Size]byte

// String returns the hash in lower-case hex.
func (h Hash) String() string { return hex.EncodeToString(h[:]) }

// IsZero reports whether h is unset.
func (h Hash) IsZero() bool { return h == Hash{} }

// MarshalText implements encoding.TextMarshaler (hex).
func (h Hash) MarshalText() ([]byte, error) { return []byte(h.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler (64 hex digits).
func (h *Hash) UnmarshalText(b []byte) error {
	p, err := ParseHash(string(b))
	if err != nil {
		return err
	}
	*h = p
	return nil
}

// ParseHash parses 64 hex digits.
func ParseHash(s string) (Hash, error) {
	var h Hash
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != len(h) {
		return Hash{}, fmt.Errorf("%w: hash must be %d hex digits", ErrInvalid, 2*len(h))
	}
	copy(h[:], b)
	return h, nil
}

// encoder writes the canonical length-prefixed encoding. It is the only
// place that knows the byte layout of hashed data.
type encoder struct{ buf []byte }

func (e *encoder) u64(v uint64) { e.buf = binary.BigEndian.AppendUint64(e.buf, v) }

func (e *encoder) boolean(v bool) {
	if v {
		e.u64(1)
	} else {
		e.u64(0)
	}
}

func (e *encoder) str(s string) {
	e.u64(uint64(len(s)))
	e.buf = append(e.buf, s...)
}

func (e *encoder) bytes(b []byte) {
	e.u64(uint64(len(b)))
	e.buf = append(e.buf, b...)
}

func (e *encoder) strs(ss []string) {
	e.u64(uint64(len(ss)))
	for _, s := range ss {
		e.str(s)
	}
}

// strMap encodes a map as a list of key, value pairs sorted by key.
func (e *encoder) strMap(m map[string]string) {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	e.u64(uint64(len(keys)))
	for _, k := range keys {
		e.str(k)
		e.str(m[k])
	}
}

// Encode returns the canonical encoding of d that its hash covers.
func (d *Deployment) Encode() []byte {
	e := &encoder{}
	e.str(hashDomain)
	e.u64(uint64(d.Version))
	e.u64(uint64(d.TwinID))
	e.str(d.Metadata)
	e.str(d.Description)
	e.u64(uint64(len(d.Workloads)))
	for i := range d.Workloads {
		w := &d.Workloads[i]
		e.u64(uint64(w.Version))
		e.str(w.Name)
		e.str(string(w.Type))
		e.str(w.Metadata)
		e.str(w.Description)
		if w.Data == nil {
			e.boolean(false)
		} else {
			e.boolean(true)
			w.Data.encode(e)
		}
	}
	r := &d.SignatureRequirement
	e.u64(uint64(len(r.Requests)))
	for _, q := range r.Requests {
		e.u64(uint64(q.TwinID))
		e.boolean(q.Required)
		e.u64(uint64(q.Weight))
	}
	e.u64(uint64(r.WeightRequired))
	return e.buf
}

// Hash returns SHA-256 of d's canonical encoding. The contract id, the
// signatures and the workload results are not part of it.
func (d *Deployment) Hash() Hash { return sha256.Sum256(d.Encode()) }
