// Package freeport hands out TCP ports that stay free for a child process to
// listen on. The usual trick — listen on port 0, close, pass the number on —
// races: between the close and the child's bind, any other process on the
// machine may be given the same port by the kernel (another test's listener
// on port 0, or the local end of an outgoing connection). Reserve instead
// keeps a socket bound to the port, not listening, with SO_REUSEADDR: the
// kernel then never hands the port out automatically, while a child that
// listens with SO_REUSEADDR (Go's net.Listen, redis, 0-db, …) can still bind
// it, as often as it is restarted, until the reservation is released.
//
// Used by the end-to-end tests (e2e), the benchmarks (bench/…) and the tests
// that must give a server a port before it starts or restart it on the same
// one (zdb/replica).
//
// May import: the standard library only.
// Must never be imported by: production code (it is test and benchmark support).
package freeport
