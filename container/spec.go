package container

import (
	"fmt"
	"math"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/zosgrid/zos/internal/startgc"
	"github.com/zosgrid/zos/internal/starttrace"
)

// initPath is where the init binary (see initBinary) appears inside a
// container.
const initPath = "/.zos/zos"

// idRange is the number of uids and gids mapped into a user namespace.
const idRange = 65536

// dockerCaps is Docker's default capability set.
var dockerCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FSETID", "CAP_FOWNER", "CAP_MKNOD",
	"CAP_NET_RAW", "CAP_SETGID", "CAP_SETUID", "CAP_SETFCAP", "CAP_SETPCAP",
	"CAP_NET_BIND_SERVICE", "CAP_SYS_CHROOT", "CAP_KILL", "CAP_AUDIT_WRITE",
}

// Docker's masked and read-only paths.
var (
	maskedPaths = []string{
		"/proc/asound", "/proc/acpi", "/proc/interrupts", "/proc/kcore", "/proc/keys",
		"/proc/latency_stats", "/proc/timer_list", "/proc/timer_stats",
		"/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/devices/virtual/powercap",
	}
	readonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// buildSpec turns a validated Config into an OCI runtime spec. rootfs is the
// overlay mount point, initBin the host path of the binary that runs as the
// container's `zos init` (see initBinary).
func buildSpec(c *Config, rootfs, initBin, corexToken string) (*specs.Spec, error) {
	uid, gid, err := resolveUser(rootfs, c.User)
	if err != nil {
		return nil, err
	}
	// The zos binary is always the first program: it installs the seccomp
	// filter (see supervise.Filter), then supervises or execs the command.
	args := []string{initPath, "init", "--seccomp"}
	if c.NoInit {
		args = append(args, "--exec")
	}
	if c.Services != "" {
		args = append(args, "--services", c.Services)
	}
	if c.Corex != "" {
		args = append(args, "--corex", c.Corex)
	}
	if cmd := c.Args(); len(cmd) > 0 {
		args = append(append(args, "--"), cmd...)
	}
	env := append([]string{"PATH=" + defaultPath}, c.Env...)
	if c.Hostname != "" {
		env = append(env, "HOSTNAME="+c.Hostname)
	}
	if starttrace.Enabled() {
		env = append(env, starttrace.Env+"=1") // zos init unsets it
	}
	if corexToken != "" {
		env = append(env, "ZOS_COREX_TOKEN="+corexToken) // zos init unsets it
	}
	env = startgc.Environ(env) // zos init unsets what it adds
	cwd := c.WorkDir
	if cwd == "" {
		cwd = "/"
	}
	noNewPrivs := true
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: rootfs},
		Process: &specs.Process{
			Args: args, Env: env, Cwd: cwd,
			User:            specs.User{UID: uint32(uid), GID: uint32(gid)},
			NoNewPrivileges: noNewPrivs,
			Capabilities: &specs.LinuxCapabilities{
				Bounding: dockerCaps, Effective: dockerCaps, Permitted: dockerCaps,
			},
			Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1048576, Soft: 1048576}},
		},
		Hostname: c.Hostname,
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			CgroupsPath: "/zos/" + c.ID,
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.IPCNamespace}, {Type: specs.UTSNamespace},
				{Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
				{Type: specs.NetworkNamespace, Path: c.NetNS},
			},
			MaskedPaths:   maskedPaths,
			ReadonlyPaths: readonlyPaths,
			Resources: &specs.LinuxResources{
				Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}},
			},
		},
	}
	s.Mounts = append(s.Mounts, specs.Mount{Destination: initPath, Type: "bind", Source: initBin,
		Options: []string{"bind", "ro", "nosuid", "nodev"}})
	if c.Hostname == "" {
		s.Hostname = c.ID
	}
	if !c.NoUserNS && c.NetNS != "" {
		// sysfs can only be mounted by the owner of the network namespace;
		// a joined one belongs to the host, so bind the host's read-only
		// (as rootless runc does). Masked paths still apply.
		for i, m := range s.Mounts {
			if m.Destination == "/sys" {
				s.Mounts[i] = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys",
					Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
	}
	if !c.NoUserNS {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: c.IDBase, Size: idRange}}
		s.Linux.UIDMappings, s.Linux.GIDMappings = m, m
	}
	r := s.Linux.Resources
	if c.MemoryBytes > 0 {
		mem := c.MemoryBytes
		r.Memory = &specs.LinuxMemory{Limit: &mem, Swap: &mem}
	}
	if c.PidsLimit > 0 {
		r.Pids = &specs.LinuxPids{Limit: c.PidsLimit}
	}
	if c.CPUs > 0 {
		period := uint64(100000)
		quota := int64(math.Round(c.CPUs * float64(period)))
		if quota < 1000 {
			quota = 1000
		}
		r.CPU = &specs.LinuxCPU{Period: &period, Quota: &quota}
	}
	return s, nil
}

// selfExe is the host path of the running zos binary.
func selfExe() (string, error) {
	p, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("container: find own binary: %w", err)
	}
	return p, nil
}
