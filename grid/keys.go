package grid

import (
	"fmt"

	"github.com/zosgrid/zos/key"
)

// TwinKey is the ed25519 public key of a twin (a user, farmer, node or group
// identity). It is a distinct type from NodeKey so the two cannot be mixed
// up; it has no String method, so it is not printed by accident.
type TwinKey struct{ pub key.Public }

// NodeKey is the ed25519 public key a node signs its reports and results
// with.
type NodeKey struct{ pub key.Public }

// NewTwinKey wraps a public key as a twin key.
func NewTwinKey(p key.Public) TwinKey { return TwinKey{pub: p} }

// NewNodeKey wraps a public key as a node key.
func NewNodeKey(p key.Public) NodeKey { return NodeKey{pub: p} }

// Public returns the underlying key.
func (k TwinKey) Public() key.Public { return k.pub }

// Public returns the underlying key.
func (k NodeKey) Public() key.Public { return k.pub }

// IsZero reports whether the key is unset.
func (k TwinKey) IsZero() bool { return k.pub.IsZero() }

// IsZero reports whether the key is unset.
func (k NodeKey) IsZero() bool { return k.pub.IsZero() }

// Verify reports whether sig is the twin's signature of msg.
func (k TwinKey) Verify(msg, sig []byte) bool { return !k.pub.IsZero() && k.pub.Verify(msg, sig) }

// Verify reports whether sig is the node's signature of msg.
func (k NodeKey) Verify(msg, sig []byte) bool { return !k.pub.IsZero() && k.pub.Verify(msg, sig) }

// MarshalText implements encoding.TextMarshaler ("ed25519:<hex>").
func (k TwinKey) MarshalText() ([]byte, error) { return k.pub.MarshalText() }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *TwinKey) UnmarshalText(b []byte) error {
	if err := k.pub.UnmarshalText(b); err != nil {
		return fmt.Errorf("grid: twin key: %w", err)
	}
	return nil
}

// MarshalText implements encoding.TextMarshaler ("ed25519:<hex>").
func (k NodeKey) MarshalText() ([]byte, error) { return k.pub.MarshalText() }

// UnmarshalText implements encoding.TextUnmarshaler.
func (k *NodeKey) UnmarshalText(b []byte) error {
	if err := k.pub.UnmarshalText(b); err != nil {
		return fmt.Errorf("grid: node key: %w", err)
	}
	return nil
}
