// Package flisttest holds test helpers shared by the flist packages: a
// source tree with every kind of entry, and a comparison of two trees
// (content, types, modes, owners, times, xattrs, hard links).
//
// May import: the standard library, testing, x/sys/unix.
// Must never be imported by: non-test code.
package flisttest
