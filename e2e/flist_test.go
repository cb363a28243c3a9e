//go:build e2e

package e2e

import (
	"errors"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/flist/flisttest"
	"github.com/zosgrid/zos/internal/zostest"
)

func flistMounted(mp string) bool {
	b, _ := os.ReadFile("/proc/self/mounts")
	return strings.Contains(string(b), " "+mp+" ")
}

// mountType is the file system type of the mount at mp ("" if none).
func mountType(mp string) string {
	b, _ := os.ReadFile("/proc/self/mounts")
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) > 2 && f[1] == mp {
			return f[2]
		}
	}
	return ""
}

func TestFlistCLI(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	flisttest.MakeTree(t, src)
	storeURL := "dir://" + filepath.Join(dir, "store")
	fl := filepath.Join(dir, "x.fl")

	out := mustZos(t, "flist", "pack", src, "-o", fl, "--store", storeURL, "--tag", "version=1")
	if !strings.Contains(out, "7 files") || !strings.Contains(out, "dedup ratio") {
		t.Fatalf("pack summary: %s", out)
	}
	// Packing again uploads nothing.
	out = mustZos(t, "flist", "pack", src, "-o", fl, "--store", storeURL, "--tag", "version=1")
	if !strings.Contains(out, " 0 new blocks") {
		t.Fatalf("second pack uploaded blocks: %s", out)
	}
	out = mustZos(t, "flist", "inspect", fl)
	for _, want := range []string{"/usr/bin/tool", "-> ../small.txt", "tag: version = 1", "route: 00-ff " + storeURL, "unsigned"} {
		if !strings.Contains(out, want) {
			t.Errorf("inspect lacks %q:\n%s", want, out)
		}
	}
	mustZos(t, "flist", "verify", fl)

	keyFile := filepath.Join(dir, "k")
	pub := strings.TrimSpace(mustZos(t, "key", "new", "-o", keyFile))
	other := strings.TrimSpace(mustZos(t, "key", "new", "-o", filepath.Join(dir, "other")))

	// Unsigned: refused without --insecure.
	if _, errOut, code := zos(t, "flist", "unpack", fl, filepath.Join(dir, "u0"), "--trust", pub); code == 0 || !strings.Contains(errOut, "not signed") {
		t.Fatalf("unsigned flist unpacked (exit %d): %s", code, errOut)
	}
	mustZos(t, "flist", "sign", fl, "--key", keyFile)
	if _, errOut, code := zos(t, "flist", "unpack", fl, filepath.Join(dir, "u1"), "--trust", other); code == 0 || !strings.Contains(errOut, "trusted") {
		t.Fatalf("untrusted flist unpacked (exit %d): %s", code, errOut)
	}
	dest := filepath.Join(dir, "unpacked")
	mustZos(t, "flist", "unpack", fl, dest, "--trust", pub)
	root := os.Geteuid() == 0
	flisttest.Compare(t, flisttest.Scan(t, src, root), flisttest.Scan(t, dest, root))

	t.Run("mount", func(t *testing.T) {
		zostest.RequiresFUSE(t)
		mp := filepath.Join(dir, "mp")
		os.Mkdir(mp, 0o755)
		svc := startZos(t, "flist", "mount", fl, mp, "--trust", pub, "--cache", filepath.Join(dir, "cache"), "--cache-size", "64M")
		zostest.WaitFor(t, 30*time.Second, func() error {
			if !flistMounted(mp) {
				return errors.New("not mounted yet")
			}
			return nil
		})
		flisttest.Compare(t, flisttest.Scan(t, src, true), flisttest.Scan(t, mp, true))
		if err := svc.stop(t); err != nil {
			t.Fatalf("mount did not stop cleanly on SIGTERM: %v", err)
		}
		if flistMounted(mp) {
			t.Fatal("still mounted after SIGTERM")
		}
		// Every file is cached now: the next mount is the kernel's
		// (overlayfs over an EROFS image), same tree; the umount command
		// ends it and its process.
		svc = startZos(t, "flist", "mount", fl, mp, "--insecure", "--cache", filepath.Join(dir, "cache"))
		zostest.WaitFor(t, 30*time.Second, func() error {
			if !strings.Contains(svc.logs.String(), "mounted ") {
				return errors.New("not mounted yet")
			}
			return nil
		})
		if out := svc.logs.String(); !strings.Contains(out, "served by the kernel") || !strings.Contains(mountType(mp), "overlay") {
			t.Fatalf("cached flist not mounted by the kernel (%s): %s", mountType(mp), out)
		}
		flisttest.Compare(t, flisttest.Scan(t, src, true), flisttest.Scan(t, mp, true))
		mustZos(t, "flist", "umount", mp)
		select {
		case err := <-svc.done:
			if err != nil {
				t.Fatalf("mount process after umount: %v", err)
			}
		case <-time.After(10 * time.Second):
			t.Fatal("mount process still running 10 s after umount")
		}
		if flistMounted(mp) {
			t.Fatal("still mounted after umount")
		}
		// --kernel=false keeps FUSE.
		svc = startZos(t, "flist", "mount", fl, mp, "--insecure", "--kernel=false", "--cache", filepath.Join(dir, "cache"))
		zostest.WaitFor(t, 30*time.Second, func() error {
			if !flistMounted(mp) {
				return errors.New("not mounted yet")
			}
			return nil
		})
		if typ := mountType(mp); !strings.HasPrefix(typ, "fuse") {
			t.Fatalf("--kernel=false mounted %s", typ)
		}
		if err := svc.stop(t); err != nil {
			t.Fatal(err)
		}
	})

	// Tags change the metadata: signatures are dropped and mount refuses.
	mustZos(t, "flist", "tag", fl, "author=someone")
	if _, errOut, code := zos(t, "flist", "unpack", fl, filepath.Join(dir, "u2"), "--trust", pub); code == 0 {
		t.Fatalf("re-tagged flist still trusted: %s", errOut)
	}

	// A corrupt block in the store fails verify.
	var victim string
	filepath.Walk(filepath.Join(dir, "store"), func(p string, info os.FileInfo, err error) error {
		if err == nil && info.Mode().IsRegular() && victim == "" {
			victim = p
		}
		return nil
	})
	os.WriteFile(victim, []byte("tampered"), 0o644)
	out, _, code := zos(t, "flist", "verify", fl)
	if code == 0 || !strings.Contains(out, "1 bad") {
		t.Fatalf("verify of a tampered store passed (exit %d): %s", code, out)
	}
}

// TestFlistZdbStore packs into a `zos zdb` server (a real 0-db compatible
// process), then verifies and unpacks from it through the flist's routes.
func TestFlistZdbStore(t *testing.T) {
	dir := t.TempDir()
	src := filepath.Join(dir, "src")
	os.Mkdir(src, 0o755)
	flisttest.MakeTree(t, src)
	port := freePort(t)
	addr := "127.0.0.1:" + strconv.Itoa(port)
	svc := startZos(t, "zdb", "--listen", "127.0.0.1", "--port", strconv.Itoa(port), "--data", filepath.Join(dir, "zdata"), "--index", filepath.Join(dir, "zindex"))
	waitTCP(t, svc, addr)
	fl := filepath.Join(dir, "z.fl")
	out := mustZos(t, "flist", "pack", src, "-o", fl, "--store", "zdb://"+addr)
	if !strings.Contains(out, "10 new blocks") {
		t.Fatalf("pack to zdb: %s", out)
	}
	if out := mustZos(t, "flist", "verify", fl); !strings.Contains(out, "0 bad") {
		t.Fatalf("verify: %s", out)
	}
	dest := filepath.Join(dir, "out")
	mustZos(t, "flist", "unpack", fl, dest, "--insecure")
	root := os.Geteuid() == 0
	flisttest.Compare(t, flisttest.Scan(t, src, root), flisttest.Scan(t, dest, root))
}
