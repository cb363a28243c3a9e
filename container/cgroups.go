package container

import (
	"bufio"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/opencontainers/runc/libcontainer"
)

// memCgroup is the cgroup directory holding the memory controller files:
// the v1 memory hierarchy, or the unified (v2) directory.
func memCgroup(paths map[string]string) string {
	if p, ok := paths["memory"]; ok {
		return p
	}
	return paths[""]
}

// oomKills reads how many processes the kernel OOM-killed in a memory
// cgroup: "oom_kill N" in memory.oom_control (v1) or memory.events (v2).
func oomKills(dir string) (uint64, error) {
	if dir == "" {
		return 0, fmt.Errorf("container: no memory cgroup")
	}
	for _, name := range []string{"memory.events", "memory.oom_control"} {
		f, err := os.Open(filepath.Join(dir, name))
		if err != nil {
			continue
		}
		sc := bufio.NewScanner(f)
		for sc.Scan() {
			k, v, ok := strings.Cut(sc.Text(), " ")
			if ok && k == "oom_kill" {
				f.Close()
				return strconv.ParseUint(strings.TrimSpace(v), 10, 64)
			}
		}
		f.Close()
	}
	return 0, fmt.Errorf("container: no oom_kill counter in %s", dir)
}

// Stats is a snapshot of a running container's resource use.
type Stats struct {
	CPUNanos      uint64 `json:"cpu_ns"`
	MemoryBytes   uint64 `json:"memory_bytes"`
	MemoryLimit   uint64 `json:"memory_limit,omitempty"`
	MemoryMax     uint64 `json:"memory_max_bytes,omitempty"`
	Pids          uint64 `json:"pids"`
	PidsLimit     uint64 `json:"pids_limit,omitempty"`
	IOReadBytes   uint64 `json:"io_read_bytes"`
	IOWriteBytes  uint64 `json:"io_write_bytes"`
	OOMKills      uint64 `json:"oom_kills"`
	ExecDenied    uint64 `json:"exec_denied,omitempty"`
	CgroupVersion int    `json:"cgroup_version"`
}

// Stats reads a running container's cgroup counters (v1 or v2).
func (r *Runtime) Stats(ctx context.Context, id string) (Stats, error) {
	if _, err := r.loadConfig(id); err != nil {
		return Stats{}, err
	}
	lc, err := libcontainer.Load(r.lcRoot(), id)
	if err != nil {
		return Stats{}, fmt.Errorf("container: %s is not running", id)
	}
	s, err := lc.Stats()
	if err != nil {
		return Stats{}, fmt.Errorf("container: stats of %s: %w", id, err)
	}
	var out Stats
	if cg := s.CgroupStats; cg != nil {
		out.CPUNanos = cg.CpuStats.CpuUsage.TotalUsage
		out.MemoryBytes = cg.MemoryStats.Usage.Usage
		out.MemoryMax = cg.MemoryStats.Usage.MaxUsage
		out.MemoryLimit = cg.MemoryStats.Usage.Limit
		out.Pids = cg.PidsStats.Current
		out.PidsLimit = cg.PidsStats.Limit
		for _, e := range cg.BlkioStats.IoServiceBytesRecursive {
			switch strings.ToLower(e.Op) {
			case "read":
				out.IOReadBytes += e.Value
			case "write":
				out.IOWriteBytes += e.Value
			}
		}
	}
	if st, err := lc.State(); err == nil {
		out.OOMKills, _ = oomKills(memCgroup(st.CgroupPaths))
		out.CgroupVersion = 1
		if _, ok := st.CgroupPaths["memory"]; !ok {
			out.CgroupVersion = 2
		}
	}
	out.ExecDenied = r.loadStatus(id).ExecDenied
	return out, nil
}
