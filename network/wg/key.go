package wg

import (
	"crypto/rand"
	"crypto/subtle"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"

	"golang.org/x/crypto/curve25519"
)

// ErrKey is returned for malformed WireGuard keys.
var ErrKey = errors.New("wg: invalid key")

// KeySize is the length of WireGuard keys in bytes.
const KeySize = 32

// PrivateKey is a Curve25519 private key. It has no String method so that it
// is never printed by accident; MarshalText is the one way to write it out.
type PrivateKey struct{ k [KeySize]byte }

// PublicKey is a Curve25519 public key in its base64 text form on the wire.
type PublicKey [KeySize]byte

// GeneratePrivateKey returns a fresh clamped private key.
func GeneratePrivateKey() (PrivateKey, error) {
	var p PrivateKey
	if _, err := rand.Read(p.k[:]); err != nil {
		return PrivateKey{}, fmt.Errorf("wg: generate key: %w", err)
	}
	p.clamp()
	return p, nil
}

func (p *PrivateKey) clamp() {
	p.k[0] &= 248
	p.k[31] = (p.k[31] & 127) | 64
}

// IsZero reports whether p is unset.
func (p PrivateKey) IsZero() bool {
	var z [KeySize]byte
	return subtle.ConstantTimeCompare(p.k[:], z[:]) == 1
}

// Public derives the public key.
func (p PrivateKey) Public() PublicKey {
	var pub PublicKey
	out, err := curve25519.X25519(p.k[:], curve25519.Basepoint)
	if err != nil {
		// Only a low-order result fails, impossible for the base point.
		panic("wg: derive public key: " + err.Error())
	}
	copy(pub[:], out)
	return pub
}

// MarshalText writes the key in base64, the form wg(8) and the spec use.
func (p PrivateKey) MarshalText() ([]byte, error) {
	return []byte(base64.StdEncoding.EncodeToString(p.k[:])), nil
}

// UnmarshalText reads a base64 key.
func (p *PrivateKey) UnmarshalText(b []byte) error {
	k, err := decodeKey(b)
	if err != nil {
		return err
	}
	p.k = k
	p.clamp()
	return nil
}

// hex returns the lowercase hex form the UAPI uses.
func (p PrivateKey) hex() string { return hex.EncodeToString(p.k[:]) }

// IsZero reports whether k is all zeros.
func (k PublicKey) IsZero() bool { return k == PublicKey{} }

// String returns the base64 form.
func (k PublicKey) String() string { return base64.StdEncoding.EncodeToString(k[:]) }

// MarshalText writes the key in base64.
func (k PublicKey) MarshalText() ([]byte, error) { return []byte(k.String()), nil }

// UnmarshalText reads a base64 key.
func (k *PublicKey) UnmarshalText(b []byte) error {
	d, err := decodeKey(b)
	if err != nil {
		return err
	}
	*k = d
	return nil
}

// ParsePublicKey reads a base64 public key.
func ParsePublicKey(s string) (PublicKey, error) {
	var k PublicKey
	return k, k.UnmarshalText([]byte(s))
}

func (k PublicKey) hex() string { return hex.EncodeToString(k[:]) }

func decodeKey(b []byte) ([KeySize]byte, error) {
	var k [KeySize]byte
	d, err := base64.StdEncoding.DecodeString(string(b))
	if err != nil {
		return k, fmt.Errorf("%w: not base64", ErrKey)
	}
	if len(d) != KeySize {
		return k, fmt.Errorf("%w: %d bytes, want %d", ErrKey, len(d), KeySize)
	}
	copy(k[:], d)
	return k, nil
}
