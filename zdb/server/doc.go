// Package server owns the 0-db wire protocol on top of the zdb engine:
// connections over TCP and unix sockets, 0-db's command table (prefix
// matched, in its order), reply shapes and error strings, admin and
// namespace authentication (plain and SECURE challenge), WAIT, MIRROR,
// hooks, and the translation of zdb errors into RESP errors (the only place
// that happens).
//
// Each connection executes every request already in its read buffer, then
// commits the writes of that batch (one group commit shared with other
// connections) and only then sends all replies with one write: a reply never
// acknowledges a write that is not in the files.
//
// While there are no more clients than Ps, each waits for its next request
// in a blocking read on a goroutine of its own; past that, an event loop per
// P serves the waiting clients as redis-server does (loop.go), and gives a
// client back to a goroutine for whatever may block.
//
// May import: zdb, resp, the standard library and golang.org/x/sys.
// Must never be imported by: zdb, resp.
package server
