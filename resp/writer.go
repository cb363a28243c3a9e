package resp

import (
	"io"
	"slices"
	"strconv"
)

// Writer appends RESP2 values to an in-memory buffer; Flush sends them all in
// one write. It is built for servers that answer a whole pipelined batch
// at once, and for clients that pipeline requests.
type Writer struct {
	w   io.Writer
	buf []byte
}

// NewWriter returns a Writer that flushes to w.
func NewWriter(w io.Writer) *Writer {
	return &Writer{w: w, buf: make([]byte, 0, 16<<10)}
}

// Len is the number of bytes waiting to be flushed.
func (w *Writer) Len() int { return len(w.buf) }

// Flush writes the buffered bytes. The buffer is kept for reuse unless a
// large reply made it grow past 1 MiB.
func (w *Writer) Flush() error {
	if len(w.buf) == 0 {
		return nil
	}
	_, err := w.w.Write(w.buf)
	w.Reset()
	return err
}

// Bytes returns the buffered, unflushed bytes (for tests and fuzzing).
func (w *Writer) Bytes() []byte { return w.buf }

// Simple appends a simple string (+s). s must not contain CR or LF.
func (w *Writer) Simple(s string) {
	w.buf = append(w.buf, '+')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// Error appends an error reply (-s). s must not contain CR or LF.
func (w *Writer) Error(s string) {
	w.buf = append(w.buf, '-')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// Int appends an integer reply.
func (w *Writer) Int(n int64) {
	w.buf = append(w.buf, ':')
	w.buf = strconv.AppendInt(w.buf, n, 10)
	w.buf = append(w.buf, '\r', '\n')
}

// Bulk appends a bulk string.
func (w *Writer) Bulk(b []byte) {
	w.buf = append(w.buf, '$')
	w.buf = strconv.AppendInt(w.buf, int64(len(b)), 10)
	w.buf = append(w.buf, '\r', '\n')
	w.buf = append(w.buf, b...)
	w.buf = append(w.buf, '\r', '\n')
}

// BulkString appends a bulk string from a Go string.
func (w *Writer) BulkString(s string) {
	w.buf = append(w.buf, '$')
	w.buf = strconv.AppendInt(w.buf, int64(len(s)), 10)
	w.buf = append(w.buf, '\r', '\n')
	w.buf = append(w.buf, s...)
	w.buf = append(w.buf, '\r', '\n')
}

// BulkHeader appends only the header of a bulk string of n bytes; the caller
// appends exactly n bytes with Raw and then calls BulkEnd. It lets a server
// read a value straight into the reply buffer.
func (w *Writer) BulkHeader(n int) {
	w.buf = append(w.buf, '$')
	w.buf = strconv.AppendInt(w.buf, int64(n), 10)
	w.buf = append(w.buf, '\r', '\n')
}

// Grow returns a slice of n bytes appended to the buffer, for the caller to
// fill (for example with a pread), after BulkHeader. The bytes are not
// zeroed (they may hold earlier replies): the caller must overwrite all of
// them, or Truncate them away.
func (w *Writer) Grow(n int) []byte {
	l := len(w.buf)
	w.buf = slices.Grow(w.buf, n)[:l+n]
	return w.buf[l : l+n]
}

// Sent drops the first n buffered bytes, which the caller wrote itself
// (a server writing to a non-blocking socket, where a write may take only
// part of the replies).
func (w *Writer) Sent(n int) {
	if n >= len(w.buf) {
		w.Reset()
		return
	}
	w.buf = w.buf[:copy(w.buf, w.buf[n:])]
}

// Reset drops the buffered bytes, keeping the buffer for reuse unless a
// large reply made it grow past 1 MiB.
func (w *Writer) Reset() {
	if cap(w.buf) > 1<<20 {
		w.buf = make([]byte, 0, 16<<10)
	} else {
		w.buf = w.buf[:0]
	}
}

// Truncate drops everything appended after the buffer held n bytes (see Len);
// it undoes a partial reply when reading its payload failed.
func (w *Writer) Truncate(n int) { w.buf = w.buf[:n] }

// BulkEnd terminates a bulk string started with BulkHeader.
func (w *Writer) BulkEnd() { w.buf = append(w.buf, '\r', '\n') }

// Nil appends a null bulk string ($-1).
func (w *Writer) Nil() { w.buf = append(w.buf, "$-1\r\n"...) }

// Array appends an array header of n elements; the caller appends them.
func (w *Writer) Array(n int) {
	w.buf = append(w.buf, '*')
	w.buf = strconv.AppendInt(w.buf, int64(n), 10)
	w.buf = append(w.buf, '\r', '\n')
}

// Command appends a request: an array of bulk strings.
func (w *Writer) Command(args ...[]byte) {
	w.Array(len(args))
	for _, a := range args {
		w.Bulk(a)
	}
}

// Raw appends bytes that are already RESP-encoded.
func (w *Writer) Raw(b []byte) { w.buf = append(w.buf, b...) }
