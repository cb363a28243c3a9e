package container

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/starttrace"
)

// RootfsProvider turns an image reference into a read-only lower layer and
// the image's run configuration. The flist mount implements it for flists;
// DirRootfs for a plain directory.
type RootfsProvider interface {
	Rootfs(ctx context.Context, ref string) (Rootfs, error)
}

// Rootfs is a prepared lower layer.
type Rootfs struct {
	// Lower is a directory holding the image's files; it is never written.
	Lower string
	// Image is the image's run configuration.
	Image ImageConfig
}

// ImageProvider serves images that must be mounted (an flist): Image reads
// the run configuration without mounting; Prepare makes the image's files
// available read-only and returns that directory and which programs may
// run. Containers of the same image share the mount, which outlives the
// process that made it (so a container can be adopted): Prepare returns at
// once when it exists. Release unmounts it; the runtime calls it when the
// last container of the image is removed.
type ImageProvider interface {
	Image(ctx context.Context, ref string, args []string) (ImageConfig, error)
	Prepare(ctx context.Context, ref string, args []string) (dir string, policy ExecPolicy, err error)
	Release(ctx context.Context, ref string, args []string) error
}

// ExecPolicy is the exec guard's rule for an image: a program may run if
// Digest of its content is in Allowed, and an ELF file written into the
// container may be opened (as a library) if its digest is in Libs (nil:
// Allowed). A nil Digest means SHA-256. With Pending set, Allowed and Libs
// come from it instead, computed while the container starts (its first
// launch waits for them; an error refuses launches). LowerVerified says
// that the mount checks every read against the metadata Allowed comes
// from, so a program run from it (and not from the writable layer) needs
// no content check (see guard.Options.LowerVerified).
type ExecPolicy struct {
	Digest        func(io.Reader) ([32]byte, error)
	Allowed       map[[32]byte]bool
	Libs          map[[32]byte]bool
	Pending       func() (allowed, libs map[[32]byte]bool, err error)
	LowerVerified bool
}

// Mounted reports whether path is a mount point.
func Mounted(path string) bool { return mounted(path) }

// DirRootfs serves images that are directories on the host. A reference is
// either a root filesystem directory, or a bundle directory holding
// `rootfs/` and an optional `image.json` (an OCI image config: {"config":
// {"Entrypoint": [...], "Cmd": [...], "Env": [...], "WorkingDir": "",
// "User": ""}}).
type DirRootfs struct{}

// Rootfs implements RootfsProvider.
func (DirRootfs) Rootfs(_ context.Context, ref string) (Rootfs, error) {
	abs, err := filepath.Abs(ref)
	if err != nil {
		return Rootfs{}, fmt.Errorf("container: image %q: %w", ref, err)
	}
	st, err := os.Stat(abs)
	if err != nil {
		return Rootfs{}, fmt.Errorf("container: image %q: %w", ref, err)
	}
	if !st.IsDir() {
		return Rootfs{}, fmt.Errorf("%w: image %q is not a directory", ErrInvalidConfig, ref)
	}
	r := Rootfs{Lower: abs}
	if st, err := os.Stat(filepath.Join(abs, "rootfs")); err == nil && st.IsDir() {
		r.Lower = filepath.Join(abs, "rootfs")
		b, err := os.ReadFile(filepath.Join(abs, "image.json"))
		switch {
		case errors.Is(err, os.ErrNotExist):
		case err != nil:
			return Rootfs{}, fmt.Errorf("container: image config: %w", err)
		default:
			img, err := DecodeImageConfig(b)
			if err != nil {
				return Rootfs{}, err
			}
			r.Image = img
		}
	}
	return r, nil
}

// DecodeImageConfig parses an OCI image config document (only the `config`
// object is used).
func DecodeImageConfig(b []byte) (ImageConfig, error) {
	var doc struct {
		Config *ImageConfig `json:"config"`
	}
	if err := json.Unmarshal(b, &doc); err != nil {
		return ImageConfig{}, fmt.Errorf("%w: image config: %v", ErrInvalidConfig, err)
	}
	if doc.Config == nil {
		return ImageConfig{}, nil
	}
	for _, e := range doc.Config.Env {
		if !strings.Contains(e, "=") {
			return ImageConfig{}, fmt.Errorf("%w: image config env %q is not KEY=VALUE", ErrInvalidConfig, e)
		}
	}
	if wd := doc.Config.WorkingDir; wd != "" && !filepath.IsAbs(wd) {
		return ImageConfig{}, fmt.Errorf("%w: image config working dir %q is not absolute", ErrInvalidConfig, wd)
	}
	return *doc.Config, nil
}

// usernsFD returns an fd of a user namespace mapping 0..idRange-1 to
// base..base+idRange-1, for idmapped mounts. A namespace is only reachable
// through a process, so a child is made in it; as runc does for its
// id-mapped mounts, the child is put in PTRACE_TRACEME mode so that it stops
// at its execve, before the program runs (no program start is paid, and
// any executable will do: our own). It is killed once its namespace is open.
func usernsFD(base uint32) (*os.File, error) {
	m := []syscall.SysProcIDMap{{ContainerID: 0, HostID: int(base), Size: idRange}}
	proc, err := os.StartProcess("/proc/self/exe", []string{"zos-userns-holder"}, &os.ProcAttr{
		Sys: &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWUSER, UidMappings: m, GidMappings: m,
			GidMappingsEnableSetgroups: false, Ptrace: true},
	})
	if err != nil {
		return nil, fmt.Errorf("container: idmap helper: %w", err)
	}
	f, openErr := os.Open(fmt.Sprintf("/proc/%d/ns/user", proc.Pid))
	proc.Kill()
	proc.Wait()
	if openErr != nil {
		return nil, fmt.Errorf("container: idmap helper: %w", openErr)
	}
	return f, nil
}

// pendingUserns is the user namespace of an id map, made in the background
// (usernsFD starts and kills a child: a few ms) while the image is
// prepared.
type pendingUserns struct {
	done chan struct{}
	f    *os.File
	err  error
}

func startUserns(base uint32) *pendingUserns {
	p := &pendingUserns{done: make(chan struct{})}
	go func() {
		// The child is traced by the thread that starts it (Ptrace).
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		p.f, p.err = usernsFD(base)
		close(p.done)
	}()
	return p
}

// take waits for the namespace; the caller closes it.
func (p *pendingUserns) take() (*os.File, error) {
	<-p.done
	f := p.f
	p.f = nil
	return f, p.err
}

// close lets go of a namespace nobody took.
func (p *pendingUserns) close() {
	if p == nil {
		return
	}
	<-p.done
	if p.f != nil {
		p.f.Close()
	}
}

// idmapMount makes target a view of src in which every uid/gid k appears as
// base+k (so the lower layer's root-owned files belong to container root),
// through the user namespace ns of that map.
func idmapMount(src, target string, ns *pendingUserns, readonly bool) error {
	nsf, err := ns.take()
	if err != nil {
		return err
	}
	defer nsf.Close()
	starttrace.Mark("cli", "user namespace for the id map ready")
	fd, err := unix.OpenTree(unix.AT_FDCWD, src, unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC|unix.AT_RECURSIVE)
	if err != nil {
		return fmt.Errorf("container: open_tree %s: %w", src, err)
	}
	defer unix.Close(fd)
	attr := &unix.MountAttr{Attr_set: unix.MOUNT_ATTR_IDMAP, Userns_fd: uint64(nsf.Fd())}
	if readonly {
		attr.Attr_set |= unix.MOUNT_ATTR_RDONLY
	}
	if err := unix.MountSetattr(fd, "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, attr); err != nil {
		return fmt.Errorf("container: idmap %s: %w", src, err)
	}
	if err := unix.MoveMount(fd, "", unix.AT_FDCWD, target, unix.MOVE_MOUNT_F_EMPTY_PATH); err != nil {
		return fmt.Errorf("container: move_mount %s: %w", target, err)
	}
	return nil
}

// mountOverlay mounts the container's root: upper/work under dir, the lower
// layer (id-mapped when base != 0, through ns, made by startUserns(base);
// the caller closes it) below.
func mountOverlay(dir, lower string, base uint32, ns *pendingUserns) (rootfs string, err error) {
	rootfs = filepath.Join(dir, "rootfs")
	upper, work, lowerView := filepath.Join(dir, "upper"), filepath.Join(dir, "work"), filepath.Join(dir, "lower")
	for _, d := range []string{rootfs, upper, work, lowerView} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return "", fmt.Errorf("container: %w", err)
		}
	}
	if err := os.Chmod(upper, 0o755); err != nil {
		return "", fmt.Errorf("container: %w", err)
	}
	if err := os.Chown(upper, int(base), int(base)); err != nil {
		return "", fmt.Errorf("container: %w", err)
	}
	if mounted(rootfs) {
		return rootfs, nil // adopted: still mounted
	}
	if base != 0 {
		if !mounted(lowerView) {
			if err := idmapMount(lower, lowerView, ns, true); err != nil {
				return "", err
			}
			starttrace.Mark("cli", "id-mapped lower mounted")
		}
		lower = lowerView
	}
	opts := fmt.Sprintf("lowerdir=%s,upperdir=%s,workdir=%s", escapeOverlay(lower), escapeOverlay(upper), escapeOverlay(work))
	if err := unix.Mount("overlay", rootfs, "overlay", 0, opts); err != nil {
		return "", fmt.Errorf("container: mount overlay on %s: %w", rootfs, err)
	}
	return rootfs, nil
}

func escapeOverlay(p string) string { return overlayEscaper.Replace(p) }

// overlayEscaper is built on its first use (a 6 KB table), once per
// process rather than once per path.
var overlayEscaper = strings.NewReplacer(`\`, `\\`, `,`, `\,`, `:`, `\:`)

// mountsUnder lists mount points at or below dir, deepest first.
func mountsUnder(dir string) ([]string, error) {
	// Not /proc/self: that is the main thread's view, and libcontainer may
	// leave the main thread parked in a container's mount namespace (a
	// locked goroutine that setns'd and exited on it).
	runtime.LockOSThread()
	defer runtime.UnlockOSThread()
	f, err := os.Open("/proc/thread-self/mountinfo")
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var out []string
	sc := bufio.NewScanner(f)
	// Lines of up to 1 MB, from a buffer that grows from 4 KB: a fresh
	// 64 KB one cost 16 page faults per call, a few calls per start.
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) < 5 {
			continue
		}
		mp := unescapeMountinfo(fields[4])
		if mp == dir || strings.HasPrefix(mp, dir+"/") {
			out = append(out, mp)
		}
	}
	if err := sc.Err(); err != nil {
		return nil, err
	}
	// deepest first
	for i := 0; i < len(out); i++ {
		for j := i + 1; j < len(out); j++ {
			if len(out[j]) > len(out[i]) {
				out[i], out[j] = out[j], out[i]
			}
		}
	}
	return out, nil
}

func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+3 < len(s) {
			var v int
			if _, err := fmt.Sscanf(s[i+1:i+4], "%03o", &v); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}

func mounted(p string) bool {
	ms, err := mountsUnder(p)
	if err != nil {
		return false
	}
	for _, m := range ms {
		if m == p {
			return true
		}
	}
	return false
}

// unmountAll detaches every mount at or below dir (deepest first).
func unmountAll(dir string) error {
	ms, err := mountsUnder(dir)
	if err != nil {
		return fmt.Errorf("container: read mounts: %w", err)
	}
	var errs []error
	for _, m := range ms {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.ENOENT) {
			errs = append(errs, fmt.Errorf("container: unmount %s: %w", m, err))
		}
	}
	return errors.Join(errs...)
}
