package container_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/zosgrid/zos/internal/zostest"
)

// libImage adds to a busybox image a dynamically linked program (built
// with gcc from testdata/libguard) with the host libraries ldd lists for
// it, a library of the image (/lib/good.so, mode 0644 like most of a
// distribution's libraries), and /src/evil: a library whose first byte is
// changed, so that it is not ELF (and not in the image's set) until a
// process in the container restores it.
func libImage(t *testing.T) (img, loader string) {
	t.Helper()
	gcc := zostest.RequiresBinary(t, "gcc")
	img = busyboxImage(t, "")
	root := filepath.Join(img, "rootfs")
	build := t.TempDir()
	cc := func(args ...string) {
		t.Helper()
		if out, err := exec.Command(gcc, args...).CombinedOutput(); err != nil {
			t.Fatalf("gcc %v: %v\n%s", args, err, out)
		}
	}
	cc("-O", "-o", filepath.Join(build, "prog"), "testdata/libguard/prog.c")
	cc("-O", "-shared", "-fPIC", `-DWHO="good"`, "-o", filepath.Join(build, "good.so"), "testdata/libguard/lib.c")
	cc("-O", "-shared", "-fPIC", `-DWHO="evil"`, "-o", filepath.Join(build, "evil.so"), "testdata/libguard/lib.c")
	put := func(src, dst string, mode os.FileMode) {
		t.Helper()
		b, err := os.ReadFile(src)
		if err != nil {
			t.Fatal(err)
		}
		if mode == 0 {
			b[0] = 'X'
			mode = 0o644
		}
		dst = filepath.Join(root, dst)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, b, mode); err != nil {
			t.Fatal(err)
		}
	}
	put(filepath.Join(build, "prog"), "bin/prog", 0o755)
	put(filepath.Join(build, "good.so"), "lib/good.so", 0o644)
	put(filepath.Join(build, "evil.so"), "src/evil", 0)
	out, err := exec.Command("ldd", filepath.Join(build, "prog")).Output()
	if err != nil {
		t.Fatalf("ldd: %v", err)
	}
	for _, line := range strings.Split(string(out), "\n") {
		f := strings.Fields(line)
		switch {
		case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
			put(f[2], f[2], 0o644) // libc: mapped, never exec'd
		case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
			put(f[0], f[0], 0o755) // the dynamic loader: exec'd by the kernel
			loader = f[0]
		}
	}
	if loader == "" {
		t.Fatalf("no dynamic loader in ldd's output:\n%s", out)
	}
	return img, loader
}

// TestExecVerifyLibraries: with the exec guard, a library written into the
// writable layer cannot be preloaded or dlopen'ed, a program written there
// cannot be run through the dynamic loader, and memfds cannot be executed, while the image's own libraries (and identical copies of them)
// load.
func TestExecVerifyLibraries(t *testing.T) {
	img, loader := libImage(t)
	r := newRuntime(t)
	c := sh(`/bin/prog own
cat /bin/prog > /tmp/prog2; echo >> /tmp/prog2; ` + loader + ` /tmp/prog2 via-loader; echo loader=$?
LD_PRELOAD=/lib/good.so /bin/prog preload-image
cp /lib/good.so /tmp/good.so; LD_PRELOAD=/tmp/good.so /bin/prog preload-copy
(printf '\177'; /bin/busybox tail -c +2 /src/evil) > /tmp/evil.so
LD_PRELOAD=/tmp/evil.so /bin/prog preload-evil 2>/dev/null
/bin/prog dlopen /tmp/evil.so
/bin/prog memfd`)
	c.ExecVerify = true
	out, st := run(t, r, img, c)
	for _, want := range []string{
		"hello own\n",
		"LOADED good\nhello preload-image\n",
		"LOADED good\nhello preload-copy\n",
		"hello preload-evil\n", // ld.so reports and ignores the refused preload
		"dlopen=refused\n",
		"memfd_exec=refused\n",
		"fexecve=refused",
		"loader=127", // the loader cannot open a program written in the container
	} {
		if !strings.Contains(out, want) {
			t.Errorf("output lacks %q:\n%s", want, out)
		}
	}
	if strings.Contains(out, "LOADED evil") || strings.Contains(out, "from-memfd") || strings.Contains(out, "via-loader") {
		t.Errorf("a library or memfd not in the image ran:\n%s", out)
	}
	if st.ExecDenied < 2 {
		t.Errorf("denied count %d, want >= 2 (preload and dlopen)", st.ExecDenied)
	}

	// Without the guard the same library loads: the test can fail.
	c.ExecVerify = false
	c.ID = ""
	out, _ = run(t, r, img, c)
	if !strings.Contains(out, "LOADED evil") || !strings.Contains(out, "dlopen=ok") || !strings.Contains(out, "hello via-loader") {
		t.Errorf("without the guard the written library should load:\n%s", out)
	}
}
