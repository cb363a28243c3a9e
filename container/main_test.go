package container_test

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"
	"testing"

	"github.com/zosgrid/zos/container"
	"github.com/zosgrid/zos/container/supervise"
	"github.com/zosgrid/zos/internal/zostest"
)

// Keep libcontainer's namespace-joining helper threads off the main
// thread (see cmd/zos/main.go).
func init() { runtime.LockOSThread() }

// TestMain lets the test binary play the zos binary's other roles: the
// libcontainer init, `zos init` inside containers, and the detached
// supervisor (`zos container supervise --root R ID`).
func TestMain(m *testing.M) {
	if container.IsLibcontainerInit() {
		container.LibcontainerInit()
	}
	if len(os.Args) > 1 && os.Args[1] == "init" {
		os.Exit(supervise.Main(context.Background(), os.Args[2:], os.Stdout, os.Stderr))
	}
	if len(os.Args) == 6 && os.Args[1] == "container" && os.Args[2] == "supervise" {
		ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
		defer stop()
		r, err := container.New(os.Args[4], "", nil, nil)
		if err != nil {
			container.SignalReady(err)
			os.Exit(1)
		}
		_, err = r.Supervise(ctx, os.Args[5], container.SuperviseOptions{Started: container.SignalReady})
		if err != nil && ctx.Err() == nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// busyboxImage builds a bundle (rootfs/ + image.json) from Debian's
// busybox-static, with the given image config JSON.
func busyboxImage(t testing.TB, imageJSON string) string {
	t.Helper()
	zostest.RequiresRoot(t)
	bb := zostest.RequiresBinary(t, "busybox")
	dir := t.TempDir()
	root := filepath.Join(dir, "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "usr/bin"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "bin/busybox"), b, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, a := range strings.Fields("sh echo cat ls id ps sleep true false mount env pwd cp chmod kill insmod hostname touch dd head wc yes seq printf test grep mkdir tee") {
		if err := os.Symlink("busybox", filepath.Join(root, "bin", a)); err != nil {
			t.Fatal(err)
		}
	}
	if imageJSON != "" {
		if err := os.WriteFile(filepath.Join(dir, "image.json"), []byte(imageJSON), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return dir
}
