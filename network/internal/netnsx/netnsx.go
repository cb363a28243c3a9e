package netnsx

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"runtime"

	"github.com/vishvananda/netns"
	"golang.org/x/sys/unix"
)

// Dir is where named namespaces are bind-mounted, as `ip netns` does.
const Dir = "/var/run/netns"

// Path returns the bind-mount path of the named namespace.
func Path(name string) string { return filepath.Join(Dir, name) }

// Do runs fn on a thread that is inside the namespace at path ("" means the
// caller's own namespace, and fn simply runs). Sockets and devices fn
// creates belong to that namespace. fn must not start goroutines that expect
// to inherit the namespace.
func Do(path string, fn func() error) error {
	if path == "" {
		return fn()
	}
	target, err := netns.GetFromPath(path)
	if err != nil {
		return fmt.Errorf("netns: open %s: %w", path, err)
	}
	defer target.Close()
	return DoHandle(target, fn)
}

// DoHandle is Do with an already opened namespace.
func DoHandle(target netns.NsHandle, fn func() error) error {
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: current: %w", err)
	}
	defer orig.Close()
	if err := netns.Set(target); err != nil {
		runtime.UnlockOSThread()
		return fmt.Errorf("netns: enter: %w", err)
	}
	ferr := fn()
	if err := netns.Set(orig); err != nil {
		// The thread stays locked and dies with this goroutine, so the
		// wrong namespace never leaks to other goroutines.
		return errors.Join(ferr, fmt.Errorf("netns: restore: %w", err))
	}
	runtime.UnlockOSThread()
	return ferr
}

// Open returns a handle on the namespace at path, or the caller's own
// namespace when path is "".
func Open(path string) (netns.NsHandle, error) {
	if path == "" {
		h, err := netns.Get()
		if err != nil {
			return netns.None(), fmt.Errorf("netns: current: %w", err)
		}
		return h, nil
	}
	h, err := netns.GetFromPath(path)
	if err != nil {
		return netns.None(), fmt.Errorf("netns: open %s: %w", path, err)
	}
	return h, nil
}

// Exists reports whether the named namespace exists.
func Exists(name string) bool {
	_, err := os.Stat(Path(name))
	return err == nil
}

// Create creates the named namespace if it does not exist and returns its
// path. The calling thread's namespace is left as it was.
func Create(name string) (string, error) {
	p := Path(name)
	if Exists(name) {
		return p, nil
	}
	if err := os.MkdirAll(Dir, 0o755); err != nil {
		return "", fmt.Errorf("netns: %w", err)
	}
	var cerr error
	// NewNamed unshares the thread into the new namespace; DoHandle-like
	// bookkeeping puts the thread back.
	runtime.LockOSThread()
	orig, err := netns.Get()
	if err != nil {
		runtime.UnlockOSThread()
		return "", fmt.Errorf("netns: current: %w", err)
	}
	defer orig.Close()
	h, cerr := netns.NewNamed(name)
	if cerr == nil {
		h.Close()
	}
	if err := netns.Set(orig); err != nil {
		return "", errors.Join(cerr, fmt.Errorf("netns: restore: %w", err))
	}
	runtime.UnlockOSThread()
	if cerr != nil {
		return "", fmt.Errorf("netns: create %s: %w", name, cerr)
	}
	return p, nil
}

// Delete removes the named namespace; a missing one is not an error. Links
// inside it are destroyed by the kernel once nothing holds it open.
func Delete(name string) error {
	p := Path(name)
	if err := unix.Unmount(p, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("netns: unmount %s: %w", name, err)
	}
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("netns: delete %s: %w", name, err)
	}
	return nil
}

// SetSysctl writes value to /proc/sys/<key> inside the namespace at path
// (for example "net/ipv4/ip_forward"). Only net/ keys are per namespace.
func SetSysctl(path, key, value string) error {
	return Do(path, func() error {
		if err := os.WriteFile(filepath.Join("/proc/sys", key), []byte(value), 0o644); err != nil {
			return fmt.Errorf("netns: sysctl %s: %w", key, err)
		}
		return nil
	})
}

// NoBridgeFilter stops bridged frames in the namespace at path from going
// through the IP filter hooks (br_netfilter): the namespace filters at the
// IP layer only, and skipping the bridge hooks saves work on every packet.
// Kernels without br_netfilter have nothing to turn off.
func NoBridgeFilter(path string) error {
	for _, f := range []string{"iptables", "ip6tables", "arptables"} {
		err := SetSysctl(path, "net/bridge/bridge-nf-call-"+f, "0")
		if err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
	}
	return nil
}
