package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/zosgrid/zos/flist"
)

var (
	// ErrNotFound means the store does not hold the block. It wraps
	// flist.ErrNotFound, so consumers that only know the format (the
	// mount cache) can recognise it.
	ErrNotFound = fmt.Errorf("store: block %w", flist.ErrNotFound)
	// ErrReadOnly means the store cannot take writes (http).
	ErrReadOnly = errors.New("store: read-only store")
	// ErrClosed means the store was closed.
	ErrClosed = errors.New("store: closed")
	// ErrBadURL means a store URL or route could not be parsed.
	ErrBadURL = errors.New("store: bad store URL")
)

// Store holds encrypted blocks by id. See the package doc for the contract.
type Store interface {
	Get(ctx context.Context, id flist.ID) ([]byte, error)
	Set(ctx context.Context, id flist.ID, data []byte) error
	Has(ctx context.Context, id flist.ID) (bool, error)
	Close() error
}

// checkGet enforces the Get contract for stores that read raw bytes.
func checkGet(id flist.ID, data []byte) ([]byte, error) {
	if !flist.CheckID(id, data) {
		return nil, errCorrupt(id)
	}
	return data, nil
}

func errCorrupt(id flist.ID) error {
	return &corruptError{id: id}
}

type corruptError struct{ id flist.ID }

func (e *corruptError) Error() string {
	return "store: block " + e.id.String() + ": content does not match id"
}
func (e *corruptError) Unwrap() error { return flist.ErrCorruptBlock }
