package mount

import (
	"os"
	"path/filepath"
	"testing"
)

// TestUsageEstimateSeesOtherProcesses: an idle process's estimate (what
// speculative fetches check) includes what other processes counted since.
func TestUsageEstimateSeesOtherProcesses(t *testing.T) {
	dir := t.TempDir()
	idle, alone, err := openUsage(dir, 1<<20)
	if err != nil || !alone {
		t.Fatalf("first user: alone %v, %v", alone, err)
	}
	if err := idle.shareUse(); err != nil {
		t.Fatal(err)
	}
	busy, alone, err := openUsage(dir, 1)
	if err != nil || alone {
		t.Fatalf("second user: alone %v, %v", alone, err)
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

// TestUsageCutFileIsRewritten: a damaged total (a few bytes) reads as 0 and
// is rewritten, instead of failing every open of the cache.
func TestUsageCutFileIsRewritten(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, usageFile), []byte{1, 2, 3}, 0o600); err != nil {
		t.Fatal(err)
	}
	u, _, err := openUsage(dir, 1)
	if err != nil {
		t.Fatal(err)
	}
	if err := u.set(4096); err != nil {
		t.Fatalf("set over a cut usage file: %v", err)
	}
	if got, err := u.total(); err != nil || got != 4096 {
		t.Fatalf("total %d, %v; want 4096", got, err)
	}
}
