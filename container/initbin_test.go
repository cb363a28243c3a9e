package container_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/zosgrid/zos/container"
)

// TestInitBinary: containers get the zos-init beside the zos binary when
// there is an executable one, else zos itself.
func TestInitBinary(t *testing.T) {
	dir := t.TempDir()
	self := filepath.Join(dir, "zos")
	if got := container.InitBinary(self); got != self {
		t.Errorf("no zos-init: %s, want %s", got, self)
	}
	beside := filepath.Join(dir, "zos-init")
	if err := os.WriteFile(beside, []byte("#!/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := container.InitBinary(self); got != self {
		t.Errorf("zos-init not executable: %s, want %s", got, self)
	}
	os.Chmod(beside, 0o755)
	if got := container.InitBinary(self); got != beside {
		t.Errorf("zos-init beside zos: %s, want %s", got, beside)
	}
}
