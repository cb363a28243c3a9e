package resp

import (
	"errors"
	"fmt"
	"io"
)

// Limits shared with 0-db.
const (
	// MaxArgs is the most arguments one request may carry.
	MaxArgs = 1024
	// MaxArgSize is the largest single argument (8 MiB).
	MaxArgSize = 8 << 20
	// maxLine bounds a header line (type byte, number, CRLF).
	maxLine = 64
	// minBuf is the initial and minimum read buffer size.
	minBuf = 16 << 10
)

// Errors returned by the Reader.
var (
	ErrProtocol    = errors.New("resp: protocol error")
	ErrTooManyArgs = errors.New("resp: too many arguments")
	ErrArgTooLarge = errors.New("resp: argument too large")
	// ErrNoArgs and ErrNotBulk are the protocol errors of a request with no
	// argument and of a request argument that is not a bulk string (0-db
	// answers them differently from other malformed input).
	ErrNoArgs  = fmt.Errorf("%w: empty or null request array", ErrProtocol)
	ErrNotBulk = fmt.Errorf("%w: bulk string expected", ErrProtocol)
	// ErrWouldBlock is what a non-blocking source returns when it has no
	// data yet. Unlike other read errors it does not stick: the Reader
	// reads again on the next call.
	ErrWouldBlock = errors.New("resp: no data available yet")
)

// Reader parses RESP2 from an io.Reader through its own buffer.
type Reader struct {
	rd   io.Reader
	buf  []byte
	r, w int // unread data is buf[r:w]
	args [][]byte
	// peekArgs is Peek's own scratch, so that a Peek leaves args alone
	peekArgs [][]byte
	need     int   // bytes the pending parse needs at least
	total    int64 // bytes read from the stream
	err      error // sticky read error
}

// NewReader returns a Reader reading from rd.
func NewReader(rd io.Reader) *Reader {
	return &Reader{rd: rd, buf: make([]byte, minBuf)}
}

// BytesRead is the number of bytes read from the stream so far.
func (r *Reader) BytesRead() int64 { return r.total }

// Buffered reports how many bytes are already read from the stream but not
// yet parsed. A server uses it to tell whether more pipelined requests are
// waiting before it flushes its replies.
func (r *Reader) Buffered() int { return r.w - r.r }

// fill reads more data, growing the buffer when it holds need bytes or more
// of unparsed input. It compacts the buffer first.
func (r *Reader) fill(need int) error {
	if r.err != nil {
		return r.err
	}
	if r.r > 0 {
		n := copy(r.buf, r.buf[r.r:r.w])
		r.r, r.w = 0, n
	}
	if need > len(r.buf) {
		nb := make([]byte, max(need, 2*len(r.buf)))
		copy(nb, r.buf[:r.w])
		r.buf = nb
	}
	for {
		n, err := r.rd.Read(r.buf[r.w:])
		r.w += n
		r.total += int64(n)
		if err == ErrWouldBlock {
			if n > 0 {
				return nil
			}
			return err
		}
		if err != nil {
			if err == io.EOF && r.w > 0 {
				err = io.ErrUnexpectedEOF
			}
			r.err = err
			if n > 0 {
				return nil
			}
			return err
		}
		if n > 0 {
			return nil
		}
	}
}

// ReadCommand reads one request: an array of 1..MaxArgs bulk strings. The
// returned slices alias the Reader's buffer and are valid until the next
// call. A clean EOF before any byte of a request returns io.EOF.
func (r *Reader) ReadCommand() ([][]byte, error) {
	r.shrink()
	for {
		args, n, err := r.parseCommand(r.buf[r.r:r.w])
		if err != nil {
			return nil, err
		}
		if n > 0 {
			r.r += n
			if r.r == r.w {
				r.r, r.w = 0, 0
			}
			return args, nil
		}
		// Incomplete: need more bytes. args==nil and n==0; need is in r.need.
		if err := r.fill(r.need); err != nil {
			if err == io.ErrUnexpectedEOF && r.r == r.w {
				return nil, io.EOF
			}
			return nil, err
		}
	}
}

// shrink gives back the room a large value took once it is parsed.
func (r *Reader) shrink() {
	if r.r == r.w && len(r.buf) > 1<<20 {
		r.buf = make([]byte, minBuf)
		r.r, r.w = 0, 0
	}
}

// Fill reads from the stream once, into room for at least the rest of
// the request being parsed. It is for servers that wait for readiness
// themselves and read from a non-blocking source: with nothing to read it
// returns ErrWouldBlock, and the Reader stays usable. Parse what arrived
// with Next.
func (r *Reader) Fill() error {
	r.shrink()
	return r.fill(r.need)
}

// Peek calls fn with each complete request already buffered, in order,
// without consuming any, until fn returns false. The args are valid only
// during the call. A server uses it to look ahead at a pipelined batch
// (to prefetch what it will read) before running it with Next.
func (r *Reader) Peek(fn func(args [][]byte) bool) {
	saved, need := r.args, r.need
	defer func() { r.peekArgs, r.args, r.need = r.args, saved, need }()
	r.args = r.peekArgs
	for pos := r.r; pos < r.w; {
		args, n, err := r.parseCommand(r.buf[pos:r.w])
		if err != nil || n == 0 || !fn(args) {
			return
		}
		pos += n
	}
}

// Next returns the next request if one is complete in the buffer, without
// reading from the stream; ok is false when the buffer holds no complete
// request. A server answers its buffered batch when ok turns false.
func (r *Reader) Next() (args [][]byte, ok bool, err error) {
	args, n, err := r.parseCommand(r.buf[r.r:r.w])
	if err != nil || n == 0 {
		return nil, false, err
	}
	r.r += n
	if r.r == r.w {
		r.r, r.w = 0, 0
	}
	return args, true, nil
}

// parseCommand parses one complete command from b. It returns n == 0 when b
// holds only part of a command, having set r.need to a lower bound of the
// bytes required.
func (r *Reader) parseCommand(b []byte) ([][]byte, int, error) {
	r.need = 0
	if len(b) == 0 {
		return nil, 0, nil
	}
	if b[0] != '*' {
		return nil, 0, fmt.Errorf("%w: array expected, got %q", ErrProtocol, b[0])
	}
	count, pos, ok, err := parseHeader(b, 0)
	if err != nil || !ok {
		r.need = len(b) + 1
		return nil, 0, err
	}
	if count < 1 {
		return nil, 0, ErrNoArgs
	}
	if count > MaxArgs {
		return nil, 0, fmt.Errorf("%w: %d (max %d)", ErrTooManyArgs, count, MaxArgs)
	}
	args := r.args[:0]
	for i := 0; i < int(count); i++ {
		if pos >= len(b) {
			r.need = len(b) + 1
			r.args = args
			return nil, 0, nil
		}
		if b[pos] != '$' {
			return nil, 0, fmt.Errorf("%w, got %q", ErrNotBulk, b[pos])
		}
		size, next, ok, err := parseHeader(b, pos)
		if err != nil {
			return nil, 0, err
		}
		if !ok {
			r.need = len(b) + 1
			r.args = args
			return nil, 0, nil
		}
		if size < 0 {
			return nil, 0, fmt.Errorf("%w: null bulk string in request", ErrProtocol)
		}
		if size > MaxArgSize {
			return nil, 0, fmt.Errorf("%w: %d bytes (max %d)", ErrArgTooLarge, size, MaxArgSize)
		}
		end := next + int(size)
		if end+2 > len(b) {
			r.need = end + 2
			r.args = args
			return nil, 0, nil
		}
		if b[end] != '\r' || b[end+1] != '\n' {
			return nil, 0, fmt.Errorf("%w: bulk string not terminated by CRLF", ErrProtocol)
		}
		args = append(args, b[next:end:end])
		pos = end + 2
	}
	r.args = args
	return args, pos, nil
}

// parseHeader parses "<type><int>\r\n" at b[pos:]. ok is false when the line
// is incomplete.
func parseHeader(b []byte, pos int) (n int64, next int, ok bool, err error) {
	i := pos + 1
	neg := false
	if i < len(b) && b[i] == '-' {
		neg = true
		i++
	}
	digits := 0
	for ; i < len(b); i++ {
		c := b[i]
		if c >= '0' && c <= '9' {
			if digits >= 18 {
				return 0, 0, false, fmt.Errorf("%w: number too long", ErrProtocol)
			}
			n = n*10 + int64(c-'0')
			digits++
			continue
		}
		if c != '\r' {
			return 0, 0, false, fmt.Errorf("%w: invalid character %q in length", ErrProtocol, c)
		}
		if i+1 >= len(b) {
			return 0, 0, false, nil
		}
		if b[i+1] != '\n' {
			return 0, 0, false, fmt.Errorf("%w: CR not followed by LF", ErrProtocol)
		}
		if digits == 0 {
			return 0, 0, false, fmt.Errorf("%w: missing length", ErrProtocol)
		}
		if neg {
			n = -n
		}
		return n, i + 2, true, nil
	}
	if i-pos > maxLine {
		return 0, 0, false, fmt.Errorf("%w: header line too long", ErrProtocol)
	}
	return 0, 0, false, nil
}
