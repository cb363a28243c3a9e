// Package startheap maps the Go heap's next megabyte in one system call
// while a zos binary starts, instead of one page fault per page as the
// package inits first touch it. Every start of bin/zos (the CLI and
// libcontainer's re-executed init, twice per container start) allocates
// about 0.5 MB in package inits, spread over about 1.5 MB of fresh spans of
// many size classes (each span's heap bits sit at its end, so a new span
// touches two pages at once); on this VM each of those ~220 page faults
// costs about 12 us, while MADV_POPULATE_WRITE maps a page for about 1 us.
// The pages mapped are the ones the allocator hands out next (lowest
// address first), so most of them the start would have touched anyway.
//
// The cost is memory: the runtime counts fresh heap pages as released, so
// pages mapped ahead stay in a process's RSS, uncounted by the runtime and
// never returned by its scavenger, until later allocations use them
// (measured: +0.46 MB anonymous RSS in the foreground `zos container run`
// that supervises a container, +0.77 MB in an idle `zos init`).
// zos-init, PID 1 of every container, does not import it: there it saved
// 72 faults (about 1 ms) for 0.7 MB more per container.
//
// Again does the same later, for libcontainer's init, which execs.
//
// It works from its package init, which runs before every package that
// allocates much: it imports nothing but syscall and unsafe, so it is
// initialised as soon as syscall is; importing it from a main package is
// all it takes. Without MADV_POPULATE_WRITE (Linux before 5.14) it does
// nothing.
//
// May import: syscall and unsafe only (more would move its init later).
// Must never be imported by: anything but main packages.
package startheap
