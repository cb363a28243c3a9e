// Package nettest gives tests and benchmarks outside network/ (the
// end-to-end tests, bench/network) the namespace handling network/ uses
// itself: creating a named namespace with its loopback up, deleting it, and
// running a function on a thread inside it that is put back afterwards (or
// left to die if it cannot be, so no goroutine ever runs in the wrong
// namespace). It is a thin face over network/internal/netnsx, which those
// callers may not import.
//
// May import: the standard library, network/internal/netnsx, netlink, netns.
// Must never be imported by: production code (it is test and benchmark support).
package nettest
