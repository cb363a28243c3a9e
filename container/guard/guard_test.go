package guard

import (
	"bytes"
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/zostest"
)

// launcherEnv makes the test binary a launcher: it execve's its arguments
// (argv[0] separate, so busybox picks its applet) in its own process.
const launcherEnv = "GUARD_TEST_LAUNCH"

func TestMain(m *testing.M) {
	if os.Getenv(launcherEnv) != "" && len(os.Args) > 2 {
		err := syscall.Exec(os.Args[1], os.Args[2:], os.Environ())
		os.Stderr.WriteString("launch " + os.Args[1] + ": " + err.Error() + "\n")
		os.Exit(126)
	}
	os.Exit(m.Run())
}

// launch runs prog (argv[0] argv0) in a process of its own. The guard is in
// this process, so a guarded program must never be started from it with
// os/exec: Go starts children with vfork, whose parent thread keeps its P
// until the child's execve returns, and that execve waits for this
// process's answer. Should a garbage collection stop the world meanwhile,
// it waits for that P forever and the guard never answers.
func launch(prog, argv0 string, args ...string) *exec.Cmd {
	self, err := os.Executable()
	if err != nil {
		panic(err)
	}
	cmd := exec.Command(self, append([]string{prog, argv0}, args...)...)
	cmd.Env = append(os.Environ(), launcherEnv+"=1")
	return cmd
}

func TestGuardOnTmpfs(t *testing.T) {
	zostest.RequiresRoot(t)
	bb := zostest.RequiresBinary(t, "busybox")
	dir := t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("skipped: cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	good := filepath.Join(dir, "echo")
	os.WriteFile(good, b, 0o755)
	allowed, err := HashTree(dir)
	if err != nil || len(allowed) != 1 {
		t.Fatalf("HashTree: %v %d", err, len(allowed))
	}
	bad := filepath.Join(dir, "bad", "echo")
	os.MkdirAll(filepath.Dir(bad), 0o755)
	os.WriteFile(bad, append(b, '\n'), 0o755)
	g, err := Start(dir, Options{Allowed: allowed})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	if out, err := launch(good, "echo", "ok").CombinedOutput(); err != nil || string(out) != "ok\n" {
		t.Errorf("allowed binary: %v %q", err, out)
	}
	if err := launch(bad, "echo", "no").Run(); err == nil {
		t.Error("a binary not in the allowed set ran")
	}
	if g.Denied() != 1 || g.Allowed() != 1 {
		t.Errorf("denied %d allowed %d", g.Denied(), g.Allowed())
	}
	// Rewriting the allowed file changes its content: denied from then on.
	os.WriteFile(good, append(b, 'x'), 0o755)
	if err := launch(good, "echo", "x").Run(); err == nil {
		t.Error("modified binary ran")
	}
}

// TestGuardRefusesUnknownELFOfUpper: with an upper layer, opening an ELF
// file that is in it is refused unless its content is allowed; other files
// (not ELF, or not in the upper layer) open.
func TestGuardRefusesUnknownELFOfUpper(t *testing.T) {
	zostest.RequiresRoot(t)
	bb := zostest.RequiresBinary(t, "busybox")
	dir, upper := t.TempDir(), t.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		t.Skipf("skipped: cannot mount tmpfs: %v", err)
	}
	t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	evil := append(append([]byte{}, b...), 'x')
	files := map[string][]byte{
		"good.so":  b,                   // in upper, allowed content
		"evil.so":  evil,                // in upper, unknown ELF
		"lower.so": evil,                // unknown ELF, not in upper
		"text":     []byte("\x7fELx\n"), // in upper, not ELF
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(dir, name), data, 0o644); err != nil {
			t.Fatal(err)
		}
		if name != "lower.so" {
			os.WriteFile(filepath.Join(upper, name), nil, 0o644)
		}
	}
	g, err := Start(dir, Options{Upper: upper, Allowed: map[Hash]bool{sha256sum(b): true}})
	if err != nil {
		t.Fatal(err)
	}
	defer g.Close()
	for name, want := range map[string]bool{"good.so": true, "evil.so": false, "lower.so": true, "text": true} {
		_, err := os.ReadFile(filepath.Join(dir, name))
		if (err == nil) != want {
			t.Errorf("open %s: %v, want allowed=%v", name, err, want)
		}
	}
	// A second open of the refused file is refused again (cached).
	if _, err := os.ReadFile(filepath.Join(dir, "evil.so")); err == nil {
		t.Error("evil.so opened the second time")
	}
	if g.Denied() != 2 {
		t.Errorf("denied %d, want 2", g.Denied())
	}
}

func sha256sum(b []byte) Hash {
	h, _ := SHA256(bytes.NewReader(b))
	return h
}

// BenchmarkOpen measures what the guard adds to an open: without a guard,
// with the exec watch only, and with the open watch (a cached ELF file of
// the lower layer, and an ELF file of the upper layer).
func BenchmarkOpen(b *testing.B) {
	zostest.RequiresRoot(b)
	bb := zostest.RequiresBinary(b, "busybox")
	dir, upper := b.TempDir(), b.TempDir()
	if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
		b.Skipf("skipped: cannot mount tmpfs: %v", err)
	}
	b.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
	elf, err := os.ReadFile(bb)
	if err != nil {
		b.Fatal(err)
	}
	os.WriteFile(filepath.Join(dir, "lower.so"), elf, 0o644)
	os.WriteFile(filepath.Join(dir, "upper.so"), elf, 0o644)
	os.WriteFile(filepath.Join(upper, "upper.so"), nil, 0o644)
	open := func(b *testing.B, name string) {
		p := filepath.Join(dir, name)
		for b.Loop() {
			fd, err := unix.Open(p, unix.O_RDONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				b.Fatal(err)
			}
			unix.Close(fd)
		}
	}
	b.Run("unguarded", func(b *testing.B) { open(b, "lower.so") })
	for _, c := range []struct {
		name, file string
		o          Options
	}{
		{"exec-only", "lower.so", Options{}},
		{"open-lower", "lower.so", Options{Upper: upper}},
		{"open-upper", "upper.so", Options{Upper: upper, Allowed: map[Hash]bool{sha256sum(elf): true}}},
	} {
		b.Run(c.name, func(b *testing.B) {
			g, err := Start(dir, c.o)
			if err != nil {
				b.Fatal(err)
			}
			defer g.Close()
			open(b, c.file)
		})
	}
}

// TestGuardPendingAllowedSet: with Pending, Start returns before the
// allowed set exists; a launch waits for it (then runs if allowed), and a
// failed computation refuses launches.
func TestGuardPendingAllowedSet(t *testing.T) {
	zostest.RequiresRoot(t)
	bb := zostest.RequiresBinary(t, "busybox")
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	// A tmpfs of its own: the guard watches a whole filesystem.
	tmpfsWith := func(t *testing.T) (dir, prog string) {
		dir = t.TempDir()
		if err := unix.Mount("tmpfs", dir, "tmpfs", 0, "size=16m"); err != nil {
			t.Skipf("skipped: cannot mount tmpfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(dir, unix.MNT_DETACH) })
		prog = filepath.Join(dir, "echo")
		if err := os.WriteFile(prog, b, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir, prog
	}

	t.Run("waits for the set", func(t *testing.T) {
		dir, prog := tmpfsWith(t)
		release := make(chan struct{})
		g, err := Start(dir, Options{Pending: func() (map[Hash]bool, map[Hash]bool, error) {
			<-release
			allowed, err := HashTree(dir)
			return allowed, nil, err
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		ran := make(chan error, 1)
		go func() { ran <- launch(prog, "echo", "ok").Run() }()
		select {
		case err := <-ran:
			t.Fatalf("the program ran before the allowed set was known: %v", err)
		case <-time.After(200 * time.Millisecond): // held by the guard, as it must be
		}
		close(release)
		if err := <-ran; err != nil {
			t.Errorf("allowed program, once the set was known: %v", err)
		}
	})
	t.Run("refuses without a set", func(t *testing.T) {
		dir, prog := tmpfsWith(t)
		g, err := Start(dir, Options{Pending: func() (map[Hash]bool, map[Hash]bool, error) {
			return nil, nil, errors.New("cannot hash the image")
		}})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if err := launch(prog, "echo", "no").Run(); err == nil {
			t.Error("a program ran although the allowed set could not be computed")
		}
	})
}

// TestGuardLowerVerified: on an overlay whose lower layer's filesystem has
// no file attributes (ramfs here, the flist's FUSE mount in production),
// LowerVerified lets the lower layer's programs run without hashing them,
// while a program whose data is in the writable layer is still hashed:
// one written there, and the lower one once modified in place or only
// chmod'ed (copy-up keeps the lower file's st_dev and st_ino, so this
// proves the layer is not told by stat). Without file attributes in the
// writable layer's filesystem the shortcut is off.
func TestGuardLowerVerified(t *testing.T) {
	zostest.RequiresRoot(t)
	bb := zostest.RequiresBinary(t, "busybox")
	b, err := os.ReadFile(bb)
	if err != nil {
		t.Fatal(err)
	}
	overlay := func(t *testing.T, upperFS string) (root, upper string) {
		lower, rw, root := t.TempDir(), t.TempDir(), t.TempDir()
		if err := unix.Mount("ramfs", lower, "ramfs", 0, ""); err != nil {
			t.Skipf("skipped: cannot mount ramfs: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(lower, unix.MNT_DETACH) })
		if upperFS != "" {
			if err := unix.Mount(upperFS, rw, upperFS, 0, ""); err != nil {
				t.Skipf("skipped: cannot mount %s: %v", upperFS, err)
			}
			t.Cleanup(func() { unix.Unmount(rw, unix.MNT_DETACH) })
		}
		for _, p := range []string{"a", "b", "c"} {
			if err := os.WriteFile(filepath.Join(lower, p), b, 0o755); err != nil {
				t.Fatal(err)
			}
		}
		upper, work := filepath.Join(rw, "upper"), filepath.Join(rw, "work")
		os.Mkdir(upper, 0o755)
		os.Mkdir(work, 0o755)
		opts := "lowerdir=" + lower + ",upperdir=" + upper + ",workdir=" + work
		if err := unix.Mount("overlay", root, "overlay", 0, opts); err != nil {
			t.Skipf("skipped: cannot mount overlay: %v", err)
		}
		t.Cleanup(func() { unix.Unmount(root, unix.MNT_DETACH) })
		return root, upper
	}
	var hashed atomic.Int32
	counting := func(r io.Reader) (Hash, error) {
		hashed.Add(1)
		return SHA256(r)
	}
	runs := func(p string) bool {
		return launch(p, "true").Run() == nil
	}

	t.Run("shortcut", func(t *testing.T) {
		root, upper := overlay(t, "")
		hashed.Store(0)
		// Nothing is allowed by content: only the shortcut lets a program
		// run. The sets are still being built while the lower layer's
		// programs start: they do not wait for them.
		release := make(chan struct{})
		g, err := Start(root, Options{Upper: upper, LowerVerified: true, Digest: counting,
			Pending: func() (map[Hash]bool, map[Hash]bool, error) {
				<-release
				return map[Hash]bool{}, nil, nil
			}})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		ran := make(chan bool, 1)
		go func() { ran <- runs(filepath.Join(root, "a")) && runs(filepath.Join(root, "b")) }()
		select {
		case ok := <-ran:
			if !ok {
				t.Fatal("a program of the lower layer was refused")
			}
		case <-time.After(10 * time.Second):
			close(release)
			t.Fatal("a program of the lower layer waited for the allowed sets")
		}
		close(release)
		if n := hashed.Load(); n != 0 {
			t.Errorf("lower programs were hashed %d times, want 0", n)
		}
		if err := os.Chmod(filepath.Join(root, "b"), 0o700); err != nil { // copy-up, same content
			t.Fatal(err)
		}
		f, err := os.OpenFile(filepath.Join(root, "c"), os.O_WRONLY|os.O_APPEND, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Write([]byte("x")) // modified in place
		f.Close()
		os.WriteFile(filepath.Join(root, "new"), b, 0o755)
		for _, p := range []string{"b", "c", "new"} {
			if runs(filepath.Join(root, p)) {
				t.Errorf("%s, whose data is in the writable layer, ran unchecked", p)
			}
		}
		if n := hashed.Load(); n != 3 {
			t.Errorf("%d files hashed, want 3 (the writable layer's)", n)
		}
	})

	t.Run("upper without file attributes", func(t *testing.T) {
		root, upper := overlay(t, "ramfs")
		hashed.Store(0)
		g, err := Start(root, Options{Upper: upper, LowerVerified: true, Digest: counting, Allowed: map[Hash]bool{}})
		if err != nil {
			t.Fatal(err)
		}
		defer g.Close()
		if runs(filepath.Join(root, "a")) {
			t.Error("the shortcut was taken although the writable layer's filesystem cannot be told apart")
		}
	})
}
