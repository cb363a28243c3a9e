// Package zdbtest runs the project's real zdb server in-process for the
// tests of packages that use zdb as a backend (flist stores, the hub).
//
// May import: zdb, zdb/server and the standard library.
// Must never be imported by: non-test code.
package zdbtest
