// Package startmap maps the pages of the running zos binary's code and data
// in three system calls when it starts, instead of taking a page fault on
// the first touch of each. A start of bin/zos (the CLI, libcontainer's
// re-executed init and the flist mount behind a container, each on the
// path of a container start) touched about 250 pages of its 27 MB of
// code and read-only data and about 80 of its initialised data; in this
// VM a page fault costs tens of microseconds, while madvise
// MADV_POPULATE_READ sets up the page tables of the whole read-only part
// from the page cache in under a millisecond, and MADV_POPULATE_WRITE
// copies the 0.6 MB of .data once. Measured with perf stat on `zos
// version`, binary read back into the page cache as an installed one is:
// 730 page faults and 33 ms of CPU without, 540 and 23 ms with.
//
// The cost: .data's 0.6 MB as private pages in every process, and a binary
// not in the page cache is read whole on its first start. The read-only part
// is shared page cache (nothing is read from disk once the binary has run),
// but it counts in a process's RSS while mapped: a process still running
// two seconds after its start drops those mappings again (the pages stay
// cached and fault back in when used), so a long-running zos shows in RSS
// what it uses, not its whole binary.
//
// It works from a C constructor, before the Go runtime starts, except in
// libcontainer's init (see the constructor); import it for that effect
// only, with a blank import in a main package. Without MADV_POPULATE_*
// (Linux before 5.14) it does nothing.
//
// May import: C (cgo), syscall and time only (its Go init must run early).
// Must never be imported by: anything but main packages.
package startmap
