// Package guard is the exec guard: a fanotify FAN_OPEN_EXEC_PERM watch on a
// filesystem (a container's overlay) that lets a program start only if the
// SHA-256 of its content is in an allowed set (the image's files), so a
// binary written into the writable layer cannot be run. Scripts are checked
// too (the kernel opens them for exec), as is their interpreter.
//
// Not covered: shared libraries mapped executable by the dynamic loader
// (it opens them for reading, which FAN_OPEN_EXEC_PERM does not see), and
// memfd_create+execveat (no file on the watched filesystem). Closing the
// guard removes the watch (pending launches are allowed by the kernel).
//
// May import: the standard library and x/sys.
// Must never be imported by: grid, resp, ledger, flist.
package guard
