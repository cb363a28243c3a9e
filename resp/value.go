package resp

import (
	"fmt"
	"io"
	"strconv"
)

// Kind is the type of a RESP2 value.
type Kind byte

// The RESP2 kinds.
const (
	KindSimple  Kind = '+'
	KindError   Kind = '-'
	KindInteger Kind = ':'
	KindBulk    Kind = '$'
	KindArray   Kind = '*'
)

// Value is one parsed RESP2 reply. Null bulk strings and null arrays have
// Null set.
type Value struct {
	Kind  Kind
	Null  bool
	Str   []byte // simple, error and bulk payload (a copy, owned by the caller)
	Int   int64
	Array []Value
}

// Err returns the error text of an error reply as a Go error, or nil.
func (v Value) Err() error {
	if v.Kind == KindError {
		return ReplyError(v.Str)
	}
	return nil
}

// ReplyError is an error reply received from a peer.
type ReplyError string

func (e ReplyError) Error() string { return string(e) }

// maxDepth bounds nesting of reply arrays.
const maxDepth = 8

// ReadValue reads one reply of any kind. Strings are copied out of the
// buffer, so the Value stays valid.
func (r *Reader) ReadValue() (Value, error) {
	if r.r == r.w && len(r.buf) > 1<<20 {
		r.buf = make([]byte, minBuf)
		r.r, r.w = 0, 0
	}
	for {
		v, n, err := parseValue(r.buf[r.r:r.w], 0, 0)
		if err != nil {
			return Value{}, err
		}
		if n > 0 {
			r.r += n
			return v, nil
		}
		need := r.w - r.r + 1
		if v.Kind == KindBulk {
			need = int(v.Int) // parseValue reports the needed size here
		}
		if err := r.fill(need); err != nil {
			if err == io.ErrUnexpectedEOF && r.r == r.w {
				return Value{}, io.EOF
			}
			return Value{}, err
		}
	}
}

// parseValue parses one value at b[pos:]; n == 0 means incomplete (then a
// Value of KindBulk carries in Int a lower bound of the total bytes needed).
func parseValue(b []byte, pos, depth int) (Value, int, error) {
	if pos >= len(b) {
		return Value{}, 0, nil
	}
	kind := Kind(b[pos])
	switch kind {
	case KindSimple, KindError:
		for i := pos + 1; i+1 < len(b); i++ {
			if b[i] == '\r' {
				if b[i+1] != '\n' {
					return Value{}, 0, fmt.Errorf("%w: CR not followed by LF", ErrProtocol)
				}
				s := append([]byte(nil), b[pos+1:i]...)
				return Value{Kind: kind, Str: s}, i + 2, nil
			}
		}
		if len(b)-pos > MaxArgSize {
			return Value{}, 0, fmt.Errorf("%w: status line too long", ErrProtocol)
		}
		return Value{}, 0, nil
	case KindInteger:
		n, next, ok, err := parseHeader(b, pos)
		if err != nil || !ok {
			return Value{}, 0, err
		}
		return Value{Kind: kind, Int: n}, next, nil
	case KindBulk:
		n, next, ok, err := parseHeader(b, pos)
		if err != nil || !ok {
			return Value{}, 0, err
		}
		if n < 0 {
			return Value{Kind: kind, Null: true}, next, nil
		}
		if n > MaxArgSize {
			return Value{}, 0, fmt.Errorf("%w: %d bytes (max %d)", ErrArgTooLarge, n, MaxArgSize)
		}
		end := next + int(n)
		if end+2 > len(b) {
			return Value{Kind: KindBulk, Int: int64(end + 2)}, 0, nil
		}
		if b[end] != '\r' || b[end+1] != '\n' {
			return Value{}, 0, fmt.Errorf("%w: bulk string not terminated by CRLF", ErrProtocol)
		}
		return Value{Kind: kind, Str: append([]byte{}, b[next:end]...)}, end + 2, nil
	case KindArray:
		if depth >= maxDepth {
			return Value{}, 0, fmt.Errorf("%w: arrays nested too deep", ErrProtocol)
		}
		n, next, ok, err := parseHeader(b, pos)
		if err != nil || !ok {
			return Value{}, 0, err
		}
		if n < 0 {
			return Value{Kind: kind, Null: true}, next, nil
		}
		if n > MaxArgs*4 {
			return Value{}, 0, fmt.Errorf("%w: %d elements", ErrTooManyArgs, n)
		}
		v := Value{Kind: kind, Array: make([]Value, 0, n)}
		for i := int64(0); i < n; i++ {
			e, end, err := parseValue(b, next, depth+1)
			if err != nil || end == 0 {
				return e, 0, err
			}
			v.Array = append(v.Array, e)
			next = end
		}
		return v, next, nil
	default:
		return Value{}, 0, fmt.Errorf("%w: unknown reply type %q", ErrProtocol, b[pos])
	}
}

// String renders v for logs and test failures.
func (v Value) String() string {
	switch {
	case v.Null:
		return "(nil)"
	case v.Kind == KindInteger:
		return strconv.FormatInt(v.Int, 10)
	case v.Kind == KindArray:
		s := "["
		for i, e := range v.Array {
			if i > 0 {
				s += " "
			}
			s += e.String()
		}
		return s + "]"
	case v.Kind == KindError:
		return "ERR(" + string(v.Str) + ")"
	default:
		return strconv.Quote(string(v.Str))
	}
}
