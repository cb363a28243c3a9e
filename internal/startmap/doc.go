// Package startmap maps the pages of the running zos binary's code and data
// in three system calls when it starts, and the heap its package inits are
// about to touch in one more, instead of taking a page fault on the first
// touch of each. A start of bin/zos (the CLI, libcontainer's
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
// The heap: the package inits of bin/zos allocate about 0.5 MB spread
// over about 1.5 MB of fresh spans of many size classes (each span's heap
// bits sit at its end, so a new span touches two pages at once), about 220
// page faults of about 12 us here, where MADV_POPULATE_WRITE maps a page
// for about 1 us. The package's Go init, first thing, maps the heap from
// the lowest page it has touched below its frontier to 1 MB past it: the
// pages the allocator hands out next (lowest address first), most of which
// the start would have touched anyway. Measured on top of the segments:
// `zos version` about 560 -> 320 to 500 page faults (the count moves with
// the page cache's state of the binary), 1.5 ms less CPU. Its cost
// is memory: the runtime counts fresh heap pages as released, so pages
// mapped ahead stay in a process's RSS, uncounted by the runtime and never
// returned by its scavenger, until later allocations use them (+0.46 MB
// anonymous RSS measured in the foreground `zos container run` that
// supervises a container, +0.77 MB in an idle `zos init`). zos-init, PID 1
// of every container, does not import the package: there it saved 72
// faults (about 1 ms) for 0.7 MB more per container. HeapAgain does it
// once more for libcontainer's init, which execs, so nothing it maps stays.
//
// It works from a C constructor, before the Go runtime starts, except in
// libcontainer's init (see the constructor), and from its Go init, which
// runs before every package that allocates much (it imports only C,
// syscall, time and unsafe); import it from a main package. Without
// MADV_POPULATE_* (Linux before 5.14) it does nothing.
//
// May import: C (cgo), syscall, time and unsafe only (its Go init must run
// early).
// Must never be imported by: anything but main packages.
package startmap
