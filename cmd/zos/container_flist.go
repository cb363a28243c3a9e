package main

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/container"
	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/pack/oci"
	"github.com/zosgrid/zos/internal/startgc"
)

// flistImages serves flist images to the container runtime: the image
// config comes from the flist's metadata; the files from a `zos flist
// mount` process started per container (so the mount outlives a
// supervisor that dies, and the container can be adopted); the exec guard
// allows the executables of the signed metadata.
//
// args are `zos flist mount` flags: --trust KEY, --insecure, --store URL,
// --cache DIR, --cache-size N.
type flistImages struct{ self, root string }

// dir is where an flist is mounted for containers: one mount per flist and
// mount arguments, shared by every container of it.
func (p flistImages) dir(ref string, args []string) string {
	h := sha256.New()
	fmt.Fprintf(h, "%q", append([]string{ref}, args...))
	return filepath.Join(p.root, "images", hex.EncodeToString(h.Sum(nil))[:32])
}

// Release implements container.ImageProvider: unmounting ends the mount process.
func (p flistImages) Release(_ context.Context, ref string, args []string) error {
	dir := p.dir(ref, args)
	if container.Mounted(dir) {
		if err := syscall.Unmount(dir, syscall.MNT_DETACH); err != nil {
			return err
		}
	}
	os.Remove(dir + ".log")
	os.Remove(dir + ".lock")
	return os.Remove(dir)
}

func (p flistImages) open(ctx context.Context, ref string, args []string) (*flist.FList, error) {
	var trust []string
	insecure := false
	for i := 0; i < len(args); i++ {
		switch args[i] {
		case "--insecure":
			insecure = true
		case "--trust":
			if i+1 < len(args) {
				trust = append(trust, args[i+1])
				i++
			}
		}
	}
	return openFlist(ctx, ref, trust, insecure, io.Discard)
}

// Image implements container.ImageProvider.
func (p flistImages) Image(ctx context.Context, ref string, args []string) (container.ImageConfig, error) {
	f, err := p.open(ctx, ref, args)
	if err != nil {
		return container.ImageConfig{}, err
	}
	defer f.Close()
	b, err := f.ImageConfig(ctx)
	if errors.Is(err, flist.ErrNotFound) {
		return container.ImageConfig{}, nil
	}
	if err != nil {
		return container.ImageConfig{}, err
	}
	return decodeFlistImageConfig(b)
}

// decodeFlistImageConfig reads the image config an flist holds in either of
// its two forms: the summary `zos flist import` stores (oci.ImageConfig,
// always with a digest) or the OCI config file given to `zos flist pack
// --image-config` (its run settings under "config", and no digest).
func decodeFlistImageConfig(b []byte) (container.ImageConfig, error) {
	var imported oci.ImageConfig
	if err := json.Unmarshal(b, &imported); err == nil && imported.Digest != "" {
		// Re-encoded in the OCI form so that one function validates both.
		b, err = json.Marshal(map[string]container.ImageConfig{"config": {
			Entrypoint: imported.Entrypoint, Cmd: imported.Cmd, Env: imported.Env,
			WorkingDir: imported.WorkingDir, User: imported.User,
		}})
		if err != nil {
			return container.ImageConfig{}, err
		}
	}
	return container.DecodeImageConfig(b)
}

// Prepare implements container.ImageProvider.
func (p flistImages) Prepare(ctx context.Context, ref string, args []string) (string, container.ExecPolicy, error) {
	dir := p.dir(ref, args)
	policy, err := p.prepare(ctx, ref, args, dir)
	return dir, policy, err
}

func (p flistImages) prepare(ctx context.Context, ref string, args []string, dir string) (container.ExecPolicy, error) {
	// The allowed set (programs of the signed metadata, and every file's
	// content for libraries) is built from the whole tree: the exec guard
	// builds it while the container starts. The mount checks every block
	// it serves against the same metadata, so the image's own programs
	// run unhashed (LowerVerified).
	pctx := context.WithoutCancel(ctx)
	policy := container.ExecPolicy{Digest: flist.ContentDigest, LowerVerified: true, Pending: func() (allowed, libs map[[32]byte]bool, err error) {
		return p.execSets(pctx, ref, args)
	}}
	if container.Mounted(dir) {
		return policy, nil // shared with other containers, or adopted
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return policy, err
	}
	os.Chmod(filepath.Dir(dir), 0o711)
	// One mount per image even when its containers start together.
	lock, err := os.OpenFile(dir+".lock", os.O_CREATE|os.O_RDWR, 0o600)
	if err != nil {
		return policy, err
	}
	defer lock.Close()
	if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
		return policy, err
	}
	if container.Mounted(dir) {
		return policy, nil
	}
	logf, err := os.OpenFile(dir+".log", os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
	if err != nil {
		return policy, err
	}
	defer logf.Close()
	cmd := exec.Command(p.self, append([]string{"flist", "mount", ref, dir}, args...)...)
	cmd.Env = startgc.Environ(os.Environ())
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		return policy, fmt.Errorf("start flist mount: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := waitMounted(ctx, dir, exited, 60*time.Second); err != nil {
		cmd.Process.Kill()
		if errors.Is(err, errMountExited) {
			b, _ := os.ReadFile(filepath.Clean(dir + ".log"))
			return policy, fmt.Errorf("%w: %s", err, lastLine(b))
		}
		return policy, err
	}
	// The mount shows up before the FUSE INIT handshake is done, and the
	// id-mapping support is negotiated there: a request on the mount waits
	// for it.
	if _, err := os.ReadDir(dir); err != nil {
		return policy, fmt.Errorf("flist mount: %w", err)
	}
	return policy, nil
}

var errMountExited = errors.New("flist mount exited")

// waitMounted waits until dir is a mount point, woken by the kernel's
// notification of mount table changes (poll on mountinfo signals POLLPRI
// after each mount or unmount) rather than by polling on a timer. It fails
// when exited yields (the mount process ended), ctx ends or after timeout.
func waitMounted(ctx context.Context, dir string, exited <-chan error, timeout time.Duration) error {
	// The calling thread's mount namespace is the one we mount in.
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	mi, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	defer mi.Close()
	deadline := time.Now().Add(timeout)
	for !container.Mounted(dir) {
		select {
		case err := <-exited:
			return fmt.Errorf("%w (%v)", errMountExited, err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("flist mount: not mounted after %s", timeout)
		}
		// The short timeout only bounds how late an exit or a
		// cancellation is seen; a mount wakes the poll at once.
		fds := []unix.PollFd{{Fd: int32(mi.Fd()), Events: unix.POLLPRI}}
		if _, err := unix.Poll(fds, 50); err != nil && !errors.Is(err, unix.EINTR) {
			return fmt.Errorf("flist mount: poll mountinfo: %w", err)
		}
	}
	return nil
}

// execSets returns the exec guard's sets of an flist: the digests of the
// executables of its signed metadata, and of every file's content (shared
// libraries are often not executable, mode 0644: a copy of any file of the
// signed image may be opened as one).
func (p flistImages) execSets(ctx context.Context, ref string, args []string) (allowed, libs map[[32]byte]bool, err error) {
	f, err := p.open(ctx, ref, args)
	if err != nil {
		return nil, nil, err
	}
	tree, err := f.Tree(ctx)
	f.Close()
	if err != nil {
		return nil, nil, err
	}
	allowed = map[[32]byte]bool{}
	for _, e := range tree.ExecSet() {
		allowed[e.Digest] = true
	}
	libs = map[[32]byte]bool{}
	tree.Walk(func(_ string, in *flist.Inode) error {
		if in.IsRegular() {
			libs[flist.DigestOfKeys(tree.Blocks[in.Ino])] = true
		}
		return nil
	})
	return allowed, libs, nil
}

func lastLine(b []byte) string {
	s := string(b)
	for len(s) > 0 && s[len(s)-1] == '\n' {
		s = s[:len(s)-1]
	}
	for i := len(s) - 1; i >= 0; i-- {
		if s[i] == '\n' {
			return s[i+1:]
		}
	}
	return s
}
