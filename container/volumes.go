package container

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
// bytes. A disk in use grows online (the kernel needs CAP_SYS_RESOURCE for
// that); a stopped container's disk is checked and grown offline.
func (r *Runtime) GrowDisk(id string, target string, size int64) error {
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
		if err := os.Truncate(img, size); err != nil {
			return fmt.Errorf("container: grow disk: %w", err)
		}
		var out []byte
		if mounted(mnt) {
			// the loop device learns the new size, then ext4 grows online
			dev, derr := exec.Command("findmnt", "-n", "-o", "SOURCE", mnt).Output()
			if derr != nil {
				return fmt.Errorf("container: grow disk: %w", derr)
			}
			devPath := string(trimNL(dev))
			if out, err = exec.Command("losetup", "-c", devPath).CombinedOutput(); err != nil {
				return fmt.Errorf("container: grow disk: %v: %s", err, out)
			}
			out, err = exec.Command("resize2fs", devPath).CombinedOutput()
		} else {
			if out, err = exec.Command("e2fsck", "-f", "-p", img).CombinedOutput(); err != nil {
				return fmt.Errorf("container: grow disk: check: %v: %s", err, out)
			}
			out, err = exec.Command("resize2fs", img).CombinedOutput()
		}
		if err != nil {
			return fmt.Errorf("container: grow disk: %v: %s", err, out)
		}
		c.Volumes[i].SizeBytes = size
		return writeJSON(r.configPath(id), c)
	}
	return fmt.Errorf("%w: no virtual disk at %s", ErrInvalidConfig, target)
}

func trimNL(b []byte) []byte {
	for len(b) > 0 && (b[len(b)-1] == '\n' || b[len(b)-1] == ' ') {
		b = b[:len(b)-1]
	}
	return b
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
