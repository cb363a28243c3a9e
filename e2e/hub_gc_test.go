//go:build e2e

package e2e

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestHubGC imports an image into a hub's block store without uploading
// its .fl: `zos hub gc` counts and then deletes exactly those blocks, after
// which the .fl is refused for its missing blocks. Only admin keys collect.
func TestHubGC(t *testing.T) {
	img := hubBusyboxImage(t)
	reg, _ := hubRegistry(t, "", "")
	ref := reg + "/zos/busybox:1"
	hubPush(t, ref, img, nil)
	dir := t.TempDir()
	userKey, adminKey := filepath.Join(dir, "user.key"), filepath.Join(dir, "admin.key")
	mustZos(t, "key", "new", "-o", userKey)
	mustZos(t, "key", "new", "-o", adminKey)
	admins := filepath.Join(dir, "admins")
	os.WriteFile(admins, []byte(strings.TrimSpace(mustZos(t, "key", "pub", adminKey))+"\n"), 0o644)

	zdbAddr := hubZdb(t, "hub-blocks", "hub-meta")
	hubAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hub := startZos(t, "hub", "--listen", hubAddr, "--blocks", "zdb://"+zdbAddr+"/hub-blocks", "--meta", "zdb://"+zdbAddr+"/hub-meta",
		"--admin-keys", admins)
	waitTCP(t, hub, hubAddr)
	hubURL := "http://" + hubAddr

	fl := filepath.Join(dir, "app.fl")
	_, fresh := hubNewBlocks(t, mustZos(t, "flist", "import", "--store", "hub+"+hubURL+"?key="+userKey, "-o", fl, ref))
	if fresh == 0 {
		t.Fatal("import uploaded no blocks")
	}
	if _, errOut, code := zos(t, "hub", "gc", "--hub", hubURL, "--key", userKey); code == 0 || !strings.Contains(errOut, "admin") {
		t.Errorf("gc by a user key: exit %d: %s", code, errOut)
	}
	// Young blocks are kept by the default grace period.
	if out := mustZos(t, "hub", "gc", "--hub", hubURL, "--key", adminKey); !strings.Contains(out, fmt.Sprintf("%d younger than 1h0m0s", fresh)) ||
		!strings.Contains(out, "deleted 0 ") {
		t.Errorf("gc with the default grace:\n%s", out)
	}
	time.Sleep(time.Until(time.Now().Truncate(time.Second).Add(time.Second + 10*time.Millisecond))) // zdb times are in seconds
	if out := mustZos(t, "hub", "gc", "--hub", hubURL, "--key", adminKey, "--grace", "0s", "--dry-run"); !strings.Contains(out, fmt.Sprintf("would delete %d ", fresh)) {
		t.Errorf("dry run:\n%s", out)
	}
	if out := mustZos(t, "hub", "gc", "--hub", hubURL, "--key", adminKey, "--grace", "0s"); !strings.Contains(out, fmt.Sprintf("deleted %d ", fresh)) {
		t.Errorf("gc:\n%s", out)
	}
	if _, errOut, code := zos(t, "hub", "upload", fl, "--hub", hubURL, "--key", userKey); code == 0 || !strings.Contains(errOut, fmt.Sprintf("%d blocks missing", fresh)) {
		t.Errorf("upload after gc: exit %d: %s", code, errOut)
	}
}
