// Package resp owns the RESP2 wire protocol: a Reader that parses client
// requests (arrays of bulk strings, with 0-db's limits) and server replies,
// and a Writer that appends replies to one buffer so a whole pipelined batch
// goes out with a single write.
//
// The Reader hands out argument slices that point into its own buffer and
// stay valid only until the next call: a server that keeps an argument must
// copy it. Malformed input gives an error wrapping ErrProtocol; oversized
// input gives ErrTooManyArgs or ErrArgTooLarge. After any of those the stream
// is out of sync and the connection should be closed.
//
// A server may also drive the Reader itself from a non-blocking socket: Fill
// reads once (ErrWouldBlock when there is nothing yet, which does not
// stick), Peek looks at the buffered requests without consuming them, Next
// takes them; Writer.Sent drops the part of the replies a short write sent.
//
// May import: the standard library only.
// Must never be imported by: nothing below it; resp imports no engine.
package resp
