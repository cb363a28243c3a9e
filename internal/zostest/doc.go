// Package zostest holds the helpers shared by the project's tests: skipping
// loudly when a test needs root or a kernel feature (CI runs as root, so such
// tests run there), a goroutine leak check for services, polling for a
// condition without sleeping blindly, and a manual clock.
//
// May import: the standard library and test-only libraries (goleak).
// Must never be imported by: non-test code.
package zostest
