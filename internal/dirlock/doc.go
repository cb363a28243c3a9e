// Package dirlock serialises processes that share a state directory: an
// flock on the file .lock inside it. One piece of code for what the
// container runtime (id ranges, image downloads), the network state and
// the flist cache's pins each need.
//
// May import: the standard library and golang.org/x/sys/unix.
// Must never be imported by: nothing restricted (it is shared, leaf code).
package dirlock
