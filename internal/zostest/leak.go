package zostest

import (
	"testing"

	"go.uber.org/goleak"
)

// CheckLeaks fails t if goroutines started during the test are still running
// when it ends (after all t.Cleanup functions registered later have run, so
// a service's Close registered after this call is taken into account).
func CheckLeaks(t testing.TB, ignore ...goleak.Option) {
	t.Helper()
	opts := append([]goleak.Option{goleak.IgnoreCurrent()}, ignore...)
	t.Cleanup(func() {
		if err := goleak.Find(opts...); err != nil {
			t.Errorf("goroutine leak: %v", err)
		}
	})
}
