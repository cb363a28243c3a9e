package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestFindLedgerEngine(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	if _, err := findLedgerEngine(); err == nil || !strings.Contains(err.Error(), "make build") {
		t.Fatalf("no engine anywhere: err = %v, want one that says how to build it", err)
	}
	dir := t.TempDir()
	engine := filepath.Join(dir, ledgerEngine)
	if err := os.WriteFile(engine, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if _, err := findLedgerEngine(); err == nil {
		t.Fatal("a non-executable zos-ledger in PATH was accepted")
	}
	if err := os.Chmod(engine, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := findLedgerEngine(); err != nil || got != engine {
		t.Fatalf("findLedgerEngine() = %q, %v; want %q", got, err, engine)
	}
}
