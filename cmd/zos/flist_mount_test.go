package main

import (
	"strings"
	"testing"
)

func TestMountProcs(t *testing.T) {
	for _, tc := range []struct{ flag, cpus, want int }{
		{0, 1, 8}, {0, 2, 8}, {0, 4, 16}, {3, 2, 3}, {1, 16, 1},
	} {
		if got := mountProcs(tc.flag, tc.cpus); got != tc.want {
			t.Errorf("--procs %d on %d CPUs: GOMAXPROCS %d, want %d", tc.flag, tc.cpus, got, tc.want)
		}
	}
}

func TestFlistMountRefusesNegativeProcs(t *testing.T) {
	cmd := newFlistMountCmd()
	cmd.SetArgs([]string{"--procs", "-1", "x.fl", t.TempDir()})
	cmd.SilenceUsage, cmd.SilenceErrors = true, true
	err := cmd.Execute()
	if err == nil || !strings.Contains(err.Error(), "--procs") {
		t.Fatalf("flist mount --procs -1: %v, want an error naming --procs", err)
	}
}
