package container

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// diskPaths are the image file and host mount point of virtual disk i.
func (r *Runtime) diskPaths(id string, i int) (img, mnt string) {
	d := filepath.Join(r.dir(id), "disks")
	return filepath.Join(d, strconv.Itoa(i)+".img"), filepath.Join(d, strconv.Itoa(i))
}

// mountVolumes creates (first time) and loop-mounts the container's virtual
// disks on the host. The loop devices are released when unmounted.
func (r *Runtime) mountVolumes(c *Config) error {
	for i, v := range c.Volumes {
		if v.Source != "" {
			st, err := os.Stat(v.Source)
			if err != nil {
				return fmt.Errorf("container: volume %s: %w", v.Source, err)
			}
			if !st.IsDir() {
				return fmt.Errorf("%w: volume %s is not a directory", ErrInvalidConfig, v.Source)
			}
			continue
		}
		img, mnt := r.diskPaths(c.ID, i)
		if err := os.MkdirAll(mnt, 0o700); err != nil {
			return fmt.Errorf("container: disk: %w", err)
		}
		if _, err := os.Stat(img); os.IsNotExist(err) {
			if err := createDisk(img, v.SizeBytes); err != nil {
				return err
			}
		}
		if mounted(mnt) {
			continue
		}
		out, err := exec.Command("mount", "-o", "loop,nosuid,nodev", img, mnt).CombinedOutput()
		if err != nil {
			return fmt.Errorf("container: mount disk %s: %v: %s", img, err, out)
		}
		if c.IDBase != 0 {
			os.Chown(mnt, int(c.IDBase), int(c.IDBase))
		}
	}
	return nil
}

// createDisk makes a sparse file of size bytes and formats it ext4.
func createDisk(img string, size int64) error {
	f, err := os.OpenFile(img+".tmp", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("container: disk: %w", err)
	}
	if err := f.Truncate(size); err != nil {
		f.Close()
		return fmt.Errorf("container: disk: %w", err)
	}
	f.Close()
	out, err := exec.Command("mkfs.ext4", "-q", "-F", "-m", "0", "-E", "root_owner=0:0", img+".tmp").CombinedOutput()
	if err != nil {
		os.Remove(img + ".tmp")
		return fmt.Errorf("container: format disk: %v: %s", err, out)
	}
	return os.Rename(img+".tmp", img)
}

// GrowDisk grows the virtual disk mounted at target in a container to size
// bytes. A mounted disk (the container runs) grows online, in place: the
// container keeps running and sees the new size at once. The kernel allows
// that only with CAP_SYS_RESOURCE; without it the error wraps
// os.ErrPermission and nothing changed. A stopped container's disk is
// checked and grown offline.
func (r *Runtime) GrowDisk(ctx context.Context, id string, target string, size int64) error {
	c, err := r.loadConfig(id)
	if err != nil {
		return err
	}
	for i, v := range c.Volumes {
		if v.Target != target || v.Source != "" {
			continue
		}
		if size <= v.SizeBytes {
			return fmt.Errorf("%w: disk at %s is %d bytes; it can only grow", ErrInvalidConfig, target, v.SizeBytes)
		}
		img, mnt := r.diskPaths(id, i)
		if mounted(mnt) {
			err = growOnline(img, mnt, size)
			if errors.Is(err, os.ErrPermission) {
				return fmt.Errorf("container: grow disk at %s of %s online: %w: growing a mounted ext4 needs "+
					"CAP_SYS_RESOURCE, which this process lacks; stop the container, then grow it: "+
					"a stopped container's disk grows offline", target, id, err)
			}
		} else {
			err = r.growOffline(ctx, id, img, size)
		}
		if err != nil {
			return fmt.Errorf("container: grow disk at %s of %s: %w", target, id, err)
		}
		c.Volumes[i].SizeBytes = size
		return writeJSON(r.configPath(id), c)
	}
	return fmt.Errorf("%w: no virtual disk at %s", ErrInvalidConfig, target)
}

// growOffline grows the image of a disk no one has mounted. The
// supervisor lock keeps the container from starting (and mounting it)
// meanwhile.
func (r *Runtime) growOffline(ctx context.Context, id, img string, size int64) error {
	lock, err := r.lock(id)
	if errors.Is(err, ErrSupervised) {
		return fmt.Errorf("the container is starting; grow again once it runs or has stopped: %w", err)
	}
	if err != nil {
		return err
	}
	defer lock.Close()
	if err := os.Truncate(img, size); err != nil {
		return err
	}
	// resize2fs wants a freshly checked filesystem; e2fsck exits 1 when
	// it corrected something, which is fine here.
	out, err := exec.CommandContext(ctx, "e2fsck", "-f", "-p", img).CombinedOutput()
	var ee *exec.ExitError
	if err != nil && !(errors.As(err, &ee) && ee.ExitCode() == 1) {
		return fmt.Errorf("check: %v: %s", err, bytes.TrimSpace(out))
	}
	if out, err := exec.CommandContext(ctx, "resize2fs", img).CombinedOutput(); err != nil {
		return fmt.Errorf("resize2fs: %v: %s", err, bytes.TrimSpace(out))
	}
	return nil
}

// ext4IocResizeFS is EXT4_IOC_RESIZE_FS, _IOW('f', 16, __u64): grow a
// mounted ext4 to the given number of blocks.
const ext4IocResizeFS = 0x40086610

// growOnline grows the mounted ext4 of image img at mnt to size bytes: the
// loop device under mnt learns the image's new size, then the kernel grows
// the filesystem in place (the ioctl resize2fs uses on a mounted
// filesystem, issued on mnt itself, so no tool has to find the mount). The
// container's bind mount of mnt shares the superblock and sees the new
// size. Without CAP_SYS_RESOURCE it fails with EPERM before changing
// anything.
func growOnline(img, mnt string, size int64) error {
	dev, err := loopDevice(img, mnt)
	if err != nil {
		return err
	}
	defer dev.Close()
	var fs unix.Statfs_t
	if err := unix.Statfs(mnt, &fs); err != nil {
		return fmt.Errorf("statfs: %w", err)
	}
	if fs.Type != unix.EXT4_SUPER_MAGIC || fs.Bsize <= 0 {
		return fmt.Errorf("%s is not an ext4 filesystem", mnt)
	}
	if !hasCapability(unix.CAP_SYS_RESOURCE) {
		return unix.EPERM
	}
	if err := os.Truncate(img, size); err != nil {
		return err
	}
	if err := unix.IoctlSetInt(int(dev.Fd()), unix.LOOP_SET_CAPACITY, 0); err != nil {
		return fmt.Errorf("loop device %s: set capacity: %w", dev.Name(), err)
	}
	dir, err := os.Open(mnt)
	if err != nil {
		return err
	}
	defer dir.Close()
	blocks := uint64(size) / uint64(fs.Bsize)
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, dir.Fd(), ext4IocResizeFS, uintptr(unsafe.Pointer(&blocks))); errno != 0 {
		return fmt.Errorf("resize ext4 to %d blocks: %w", blocks, errno)
	}
	return nil
}

// loopDevice opens the loop device mounted at mnt and checks that img is
// its backing file.
func loopDevice(img, mnt string) (*os.File, error) {
	var st unix.Stat_t
	if err := unix.Stat(mnt, &st); err != nil {
		return nil, err
	}
	// The device's name comes from sysfs: /dev/block/MAJ:MIN links are
	// udev's, and a node may not exist under that name.
	ue, err := os.ReadFile(fmt.Sprintf("/sys/dev/block/%d:%d/uevent", unix.Major(st.Dev), unix.Minor(st.Dev)))
	if err != nil {
		return nil, fmt.Errorf("device of %s: %w", mnt, err)
	}
	var name string
	for _, l := range strings.Split(string(ue), "\n") {
		if v, ok := strings.CutPrefix(l, "DEVNAME="); ok {
			name = "/dev/" + v
		}
	}
	if name == "" {
		return nil, fmt.Errorf("device of %s: no DEVNAME in sysfs", mnt)
	}
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	info, err := unix.IoctlLoopGetStatus64(int(f.Fd()))
	var ist unix.Stat_t
	if err == nil {
		err = unix.Stat(img, &ist)
	}
	if err != nil {
		f.Close()
		return nil, fmt.Errorf("loop device %s: %w", name, err)
	}
	if info.Inode != ist.Ino || info.Device != ist.Dev {
		f.Close()
		return nil, fmt.Errorf("%s is mounted from %s, which is not backed by %s", mnt, name, img)
	}
	return f, nil
}

// hasCapability says whether this thread's effective set holds capability
// c; when it cannot tell, the kernel decides later.
func hasCapability(c int) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return true
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}

// volumeMounts adds the volumes to the spec. Host directories are id-mapped
// so host root's files belong to container root. With exec verification
// volumes are noexec: only the image's files may run.
func (r *Runtime) volumeMounts(c *Config, s *specs.Spec) {
	for i, v := range c.Volumes {
		src := v.Source
		if src == "" {
			_, src = r.diskPaths(c.ID, i)
		}
		opts := []string{"rbind", "nosuid", "nodev"}
		if v.ReadOnly {
			opts = append(opts, "ro")
		}
		if c.ExecVerify {
			opts = append(opts, "noexec")
		}
		m := specs.Mount{Destination: v.Target, Type: "bind", Source: src, Options: opts}
		if c.IDBase != 0 && v.Source != "" {
			idm := []specs.LinuxIDMapping{{ContainerID: 0, HostID: c.IDBase, Size: idRange}}
			m.UIDMappings, m.GIDMappings = idm, idm
			m.Options = append(m.Options, "idmap")
		}
		s.Mounts = append(s.Mounts, m)
	}
}
