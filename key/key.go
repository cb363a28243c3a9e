package key

import (
	"bytes"
	"crypto/ed25519"
	"crypto/rand"
	"encoding/hex"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
)

const (
	privatePrefix = "zos-ed25519-private:"
	publicPrefix  = "ed25519:"
)

// ErrInvalid is returned for malformed key text or key files.
var ErrInvalid = errors.New("key: invalid key")

// Private is an ed25519 private key. It deliberately has no String method.
type Private struct {
	k ed25519.PrivateKey
}

// Public is an ed25519 public key.
type Public [ed25519.PublicKeySize]byte

// New generates a fresh private key from the system's random source.
func New() (Private, error) {
	_, k, err := ed25519.GenerateKey(rand.Reader)
	if err != nil {
		return Private{}, fmt.Errorf("key: generate: %w", err)
	}
	return Private{k: k}, nil
}

// FromSeed builds a private key from a 32-byte seed (deterministic keys for
// tests and for deriving keys from another secret).
func FromSeed(seed []byte) (Private, error) {
	if len(seed) != ed25519.SeedSize {
		return Private{}, fmt.Errorf("%w: seed is %d bytes, want %d", ErrInvalid, len(seed), ed25519.SeedSize)
	}
	return Private{k: ed25519.NewKeyFromSeed(seed)}, nil
}

// IsZero reports whether p holds no key.
func (p Private) IsZero() bool { return len(p.k) == 0 }

// Public returns the public half of p.
func (p Private) Public() Public {
	var pub Public
	copy(pub[:], p.k.Public().(ed25519.PublicKey))
	return pub
}

// Sign signs msg.
func (p Private) Sign(msg []byte) []byte { return ed25519.Sign(p.k, msg) }

// Seed returns a copy of the 32-byte seed, for code that must hand the key to
// another library (for example an overlay network that derives its identity
// from the node key).
func (p Private) Seed() []byte { return bytes.Clone(p.k.Seed()) }

// Verify reports whether sig is a valid signature of msg by pub.
func (pub Public) Verify(msg, sig []byte) bool {
	return len(sig) == ed25519.SignatureSize && ed25519.Verify(pub[:], msg, sig)
}

// String returns the text form "ed25519:<hex>".
func (pub Public) String() string { return publicPrefix + hex.EncodeToString(pub[:]) }

// IsZero reports whether pub is all zeros (unset).
func (pub Public) IsZero() bool { return pub == Public{} }

// MarshalText implements encoding.TextMarshaler.
func (pub Public) MarshalText() ([]byte, error) { return []byte(pub.String()), nil }

// UnmarshalText implements encoding.TextUnmarshaler.
func (pub *Public) UnmarshalText(b []byte) error {
	p, err := ParsePublic(string(b))
	if err != nil {
		return err
	}
	*pub = p
	return nil
}

// ParsePublic parses "ed25519:<hex>" or bare hex.
func ParsePublic(s string) (Public, error) {
	s = strings.TrimPrefix(strings.TrimSpace(s), publicPrefix)
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != ed25519.PublicKeySize {
		return Public{}, fmt.Errorf("%w: public key must be %q followed by %d hex digits", ErrInvalid, publicPrefix, 2*ed25519.PublicKeySize)
	}
	var pub Public
	copy(pub[:], b)
	return pub, nil
}

// ParseAccount reads an account: a public key, or the public half of a
// private key file (what commands that name a receiver or a funded account
// accept).
func ParseAccount(s string) (Public, error) {
	if p, err := ParsePublic(s); err == nil {
		return p, nil
	}
	k, err := Load(s)
	if err != nil {
		return Public{}, fmt.Errorf("%q is neither a public key nor a key file: %w", s, err)
	}
	return k.Public(), nil
}

// Save writes p to path with mode 0600. It refuses to overwrite an existing
// file: losing an identity key is not recoverable.
func Save(path string, p Private) error {
	if p.IsZero() {
		return fmt.Errorf("%w: empty key", ErrInvalid)
	}
	if err := os.MkdirAll(filepath.Dir(path), 0o700); err != nil {
		return fmt.Errorf("key: save: %w", err)
	}
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		return fmt.Errorf("key: save: %w", err)
	}
	_, err = fmt.Fprintf(f, "%s%s\n", privatePrefix, hex.EncodeToString(p.k.Seed()))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		os.Remove(path)
		return fmt.Errorf("key: save: %w", err)
	}
	return nil
}

// Load reads a private key file written by Save.
func Load(path string) (Private, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return Private{}, fmt.Errorf("key: load: %w", err)
	}
	s := strings.TrimSpace(string(b))
	if !strings.HasPrefix(s, privatePrefix) {
		return Private{}, fmt.Errorf("%w: %s is not a zos private key file", ErrInvalid, path)
	}
	seed, err := hex.DecodeString(strings.TrimPrefix(s, privatePrefix))
	if err != nil {
		return Private{}, fmt.Errorf("%w: %s: seed is not hex", ErrInvalid, path)
	}
	return FromSeed(seed)
}
