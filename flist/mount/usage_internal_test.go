package mount

import "testing"

// TestUsageEstimateSeesOtherProcesses: an idle process's estimate (what
// speculative fetches check) includes what other processes counted since.
func TestUsageEstimateSeesOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	idle, err := openUsage(dir, 1<<20)
	if err != nil {
		t.Fatal(err)
	}
	busy, err := openUsage(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := busy.add(5000); err != nil {
		t.Fatal(err)
	}
	if got := idle.estimate(); got != 5000 {
		t.Fatalf("idle process estimates %d bytes, the other counted 5000", got)
	}
	if _, err := idle.add(100); err != nil { // pending, under its batch
		t.Fatal(err)
	}
	if got := idle.estimate(); got != 5100 {
		t.Fatalf("estimate %d, want 5100 (its own pending 100 included)", got)
	}
}
