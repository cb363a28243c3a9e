// Package netnsx owns running a function inside another network namespace:
// it pins the goroutine to its OS thread, switches that thread's namespace,
// and switches back (or lets the thread die if it cannot), so no other
// goroutine ever runs in the wrong namespace. It also opens, creates and
// deletes named namespaces without disturbing the calling thread.
//
// May import: the standard library, netns.
// Must never be imported by: packages outside network/.
package netnsx
