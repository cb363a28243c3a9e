// Package startgc spares the zos processes that zos itself starts (zos init
// in containers, the flist mount behind a container image, the detached
// container supervisor) a garbage collection during the Go runtime's start:
// the package inits of the zos binary allocate past the first collection's
// goal, so every start paid one (about 11 ms of CPU of 90, measured on
// `zos version`). The parent starts the child with GOGC=off and a marker
// (Environ); the child turns the collector back on and unsets both first
// thing in main (Restore), so its own children never inherit them. A GOGC
// set by the user is left alone.
//
// May import: the standard library.
// Must never be imported by: nothing forbids it.
package startgc
