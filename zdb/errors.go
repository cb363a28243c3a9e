package zdb

import "errors"

// Error classes. zdb/server maps them to 0-db's reply strings.
var (
	ErrNotFound          = errors.New("zdb: key not found")
	ErrNamespaceNotFound = errors.New("zdb: namespace not found")
	ErrNamespaceExists   = errors.New("zdb: namespace exists")
	ErrNamespaceFull     = errors.New("zdb: no space left on this namespace")
	ErrReadOnly          = errors.New("zdb: namespace is read-only (locked)")
	ErrFrozen            = errors.New("zdb: namespace is frozen")
	ErrWorm              = errors.New("zdb: namespace is in worm mode")
	ErrKeyTooLarge       = errors.New("zdb: key too large")
	ErrValueTooLarge     = errors.New("zdb: value too large")
	ErrInvalidKey        = errors.New("zdb: invalid key")
	ErrUpdateOnly        = errors.New("zdb: sequential key does not exist, only update authorized")
	ErrInvalidName       = errors.New("zdb: invalid namespace name")
	ErrInvalidCursor     = errors.New("zdb: invalid cursor")
	ErrNoMoreData        = errors.New("zdb: no more data")
	ErrCorrupt           = errors.New("zdb: corrupt data")
	ErrClosed            = errors.New("zdb: namespace closed")
	ErrModeChange        = errors.New("zdb: cannot change mode of a used namespace")
	ErrIO                = errors.New("zdb: storage failure, namespace is read-only until restart")
)
