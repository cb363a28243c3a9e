package main

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/binary"
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
	"github.com/zosgrid/zos/internal/atomicfile"
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
	os.Remove(dir + recordSuffix)
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
	if rec, ok := p.loadRecord(ref, args, false); ok {
		if rec.Config == nil {
			return container.ImageConfig{}, nil
		}
		return decodeFlistImageConfig(rec.Config)
	}
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
	// FUSE even when the image is all cached: containers with a user
	// namespace see the image through an id-mapped mount, and an overlayfs
	// mount (the kernel mount) cannot be id-mapped (EINVAL on 6.18).
	cmd := exec.Command(p.self, append([]string{"flist", "mount", ref, dir, "--kernel=false"}, args...)...)
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
	rec, ok := p.loadRecord(ref, args, true)
	if !ok {
		if rec, err = p.buildRecord(ctx, ref, args); err != nil {
			return nil, nil, err
		}
	}
	allowed = make(map[[32]byte]bool, len(rec.Allowed))
	for _, d := range rec.Allowed {
		allowed[d] = true
	}
	libs = make(map[[32]byte]bool, len(rec.Libs))
	for _, d := range rec.Libs {
		libs[d] = true
	}
	return allowed, libs, nil
}

// imageRecord is what the runtime takes from an flist's verified metadata:
// the image config and the exec guard's sets (the digests of the
// executables, and of every regular file for libraries). Building it
// verifies the signature over all the metadata and walks the whole tree,
// 0.15 s and 0.56 s of CPU for an image of 43 k files, at every container
// start. So the first build is kept beside the image's mount directory,
// whose name already stands for the .fl path and the trust flags, and the
// next starts take it while the .fl file is the one it was built from:
// same inode, size and times (rewriting or replacing the file changes
// them). Only root can write there, as everywhere in the runtime's state.
//
// The file (dir + recordSuffix) is the magic line, the stamp (5 x u64),
// the config (u32 length, bytes; length 0xffffffff: none), then the two
// sets (u32 count, 32-byte digests each), little-endian: the config is read
// without the sets, and the sets without decoding.
type imageRecord struct {
	File    fileStamp
	Config  []byte // nil: the flist holds no image config
	Allowed [][32]byte
	Libs    [][32]byte
}

type fileStamp struct {
	Dev, Ino           uint64
	Size, Mtime, Ctime int64
}

const (
	recordSuffix = ".image"
	recordMagic  = "zos-image-record 1\n"
	noConfig     = 0xffffffff
)

func stampFile(path string) (fileStamp, bool) {
	var st syscall.Stat_t
	if err := syscall.Stat(path, &st); err != nil || st.Mode&syscall.S_IFMT != syscall.S_IFREG {
		return fileStamp{}, false
	}
	return fileStamp{Dev: st.Dev, Ino: st.Ino, Size: st.Size, Mtime: st.Mtim.Nano(), Ctime: st.Ctim.Nano()}, true
}

func (r *imageRecord) encode() []byte {
	b := []byte(recordMagic)
	for _, v := range []uint64{r.File.Dev, r.File.Ino, uint64(r.File.Size), uint64(r.File.Mtime), uint64(r.File.Ctime)} {
		b = binary.LittleEndian.AppendUint64(b, v)
	}
	if r.Config == nil {
		b = binary.LittleEndian.AppendUint32(b, noConfig)
	} else {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(r.Config)))
		b = append(b, r.Config...)
	}
	for _, set := range [][][32]byte{r.Allowed, r.Libs} {
		b = binary.LittleEndian.AppendUint32(b, uint32(len(set)))
		for _, d := range set {
			b = append(b, d[:]...)
		}
	}
	return b
}

// errRecord is a record file that does not parse: it is rebuilt.
var errRecord = errors.New("bad image record")

// decodeRecordHead parses the stamp and the config of a record, and
// returns the rest (the sets).
func decodeRecordHead(b []byte) (r *imageRecord, rest []byte, err error) {
	b, ok := bytes.CutPrefix(b, []byte(recordMagic))
	if !ok || len(b) < 5*8+4 {
		return nil, nil, errRecord
	}
	r = &imageRecord{}
	u := func(i int) uint64 { return binary.LittleEndian.Uint64(b[8*i:]) }
	r.File = fileStamp{Dev: u(0), Ino: u(1), Size: int64(u(2)), Mtime: int64(u(3)), Ctime: int64(u(4))}
	b = b[5*8:]
	n := binary.LittleEndian.Uint32(b)
	b = b[4:]
	if n != noConfig {
		if uint64(n) > uint64(len(b)) {
			return nil, nil, errRecord
		}
		r.Config, b = bytes.Clone(b[:n]), b[n:]
	}
	return r, b, nil
}

func (r *imageRecord) decodeSets(b []byte) error {
	for _, set := range []*[][32]byte{&r.Allowed, &r.Libs} {
		if len(b) < 4 {
			return errRecord
		}
		n := uint64(binary.LittleEndian.Uint32(b))
		b = b[4:]
		if n*32 > uint64(len(b)) {
			return errRecord
		}
		*set = make([][32]byte, n)
		for i := range *set {
			copy((*set)[i][:], b[32*i:])
		}
		b = b[32*n:]
	}
	if len(b) != 0 {
		return errRecord
	}
	return nil
}

// loadRecord returns the record of ref if there is one built from the
// file as it is now; with sets false, without its sets.
func (p flistImages) loadRecord(ref string, args []string, sets bool) (*imageRecord, bool) {
	if p.root == "" {
		return nil, false
	}
	now, ok := stampFile(ref)
	if !ok {
		return nil, false
	}
	b, err := readRecordFile(p.dir(ref, args)+recordSuffix, sets)
	if err != nil {
		return nil, false
	}
	rec, rest, err := decodeRecordHead(b)
	if err != nil || rec.File != now {
		return nil, false
	}
	if sets && rec.decodeSets(rest) != nil {
		return nil, false
	}
	return rec, true
}

// recordHeadMax bounds what is read of a record for its config alone: the
// sets of a large image are megabytes, and the config a few KiB (a larger
// one does not fit, and is read from the flist instead).
const recordHeadMax = 64 << 10

// readRecordFile reads a record file, or without sets only its first
// recordHeadMax bytes.
func readRecordFile(path string, sets bool) ([]byte, error) {
	if sets {
		return os.ReadFile(path)
	}
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b := make([]byte, recordHeadMax)
	n, err := io.ReadFull(f, b)
	if err != nil && !errors.Is(err, io.ErrUnexpectedEOF) && !errors.Is(err, io.EOF) {
		return nil, err
	}
	return b[:n], nil
}

// buildRecord reads the record from the flist, and keeps it if the file
// did not change meanwhile.
func (p flistImages) buildRecord(ctx context.Context, ref string, args []string) (*imageRecord, error) {
	before, stamped := stampFile(ref)
	f, err := p.open(ctx, ref, args)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	rec := &imageRecord{File: before}
	if rec.Config, err = f.ImageConfig(ctx); errors.Is(err, flist.ErrNotFound) {
		rec.Config = nil
	} else if err != nil {
		return nil, err
	}
	tree, err := f.Tree(ctx)
	if err != nil {
		return nil, err
	}
	for _, e := range tree.ExecSet() {
		rec.Allowed = append(rec.Allowed, e.Digest)
	}
	tree.Walk(func(_ string, in *flist.Inode) error {
		if in.IsRegular() {
			rec.Libs = append(rec.Libs, flist.DigestOfKeys(tree.Blocks[in.Ino]))
		}
		return nil
	})
	if after, ok := stampFile(ref); p.root != "" && stamped && ok && after == before {
		// Only a cost if lost: the next start builds it again.
		atomicfile.Write(p.dir(ref, args)+recordSuffix, rec.encode(), 0o600)
	}
	return rec, nil
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
