// Package storetest is the conformance suite of the flist/store.Store
// contract: every store (dir, zdb, http, router, the hub's) runs Run with a
// factory, and is done when it passes.
//
// May import: the standard library, testing, flist, flist/store.
// Must never be imported by: non-test code.
package storetest
