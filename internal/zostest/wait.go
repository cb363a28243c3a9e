package zostest

import (
	"testing"
	"time"
)

// WaitFor polls cond until it returns nil or the timeout passes, then fails t
// with the last error. Use it instead of sleeps: it returns as soon as the
// condition holds.
func WaitFor(t testing.TB, timeout time.Duration, cond func() error) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	delay := time.Millisecond
	for {
		err := cond()
		if err == nil {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("condition not met after %v: %v", timeout, err)
		}
		time.Sleep(delay)
		if delay < 100*time.Millisecond {
			delay *= 2
		}
	}
}
