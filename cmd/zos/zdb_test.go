package main

import (
	"strings"
	"testing"
)

func TestZdbProcs(t *testing.T) {
	for _, tc := range []struct{ flag, cpus, want int }{
		{0, 1, 1}, {0, 2, 1}, {0, 3, 1}, {0, 8, 4}, {3, 2, 3}, {1, 16, 1},
	} {
		if got := zdbProcs(tc.flag, tc.cpus); got != tc.want {
			t.Errorf("--procs %d on %d CPUs: GOMAXPROCS %d, want %d", tc.flag, tc.cpus, got, tc.want)
		}
	}
}

func TestZdbRefusesNegativeProcs(t *testing.T) {
	cmd := newZdbCmd()
	cmd.SetArgs([]string{"--procs", "-1", "--data", t.TempDir(), "--index", t.TempDir()})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--procs") {
		t.Fatalf("zdb --procs -1: %v, want an error naming --procs", err)
	}
}
