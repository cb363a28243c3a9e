package guard

import (
	"bytes"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/zostest"
)

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
	if out, err := exec.Command(good, "ok").CombinedOutput(); err != nil || string(out) != "ok\n" {
		t.Errorf("allowed binary: %v %q", err, out)
	}
	if err := exec.Command(bad, "no").Run(); err == nil {
		t.Error("a binary not in the allowed set ran")
	}
	if g.Denied() != 1 || g.Allowed() != 1 {
		t.Errorf("denied %d allowed %d", g.Denied(), g.Allowed())
	}
	// Rewriting the allowed file changes its content: denied from then on.
	os.WriteFile(good, append(b, 'x'), 0o755)
	if err := exec.Command(good, "x").Run(); err == nil {
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
		go func() { ran <- exec.Command(prog, "ok").Run() }()
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
		if err := exec.Command(prog, "no").Run(); err == nil {
			t.Error("a program ran although the allowed set could not be computed")
		}
	})
}
