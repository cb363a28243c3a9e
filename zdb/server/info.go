package server

import (
	"fmt"
	"strings"
	"syscall"
	"time"

	"github.com/zosgrid/zos/zdb"
)

func cmdInfo(s *Server, c *client, args [][]byte) bool {
	var b strings.Builder
	now := time.Now()
	fmt.Fprintf(&b, "# server\n")
	fmt.Fprintf(&b, "server_name: 0-db (zdb)\n")
	fmt.Fprintf(&b, "server_revision: zos\n")
	fmt.Fprintf(&b, "engine_revision: zos\n")
	fmt.Fprintf(&b, "instance_id: %d\n", s.instanceID)
	fmt.Fprintf(&b, "boot_time: %d\n", s.boot.Unix())
	fmt.Fprintf(&b, "uptime: %d\n", int64(now.Sub(s.boot).Seconds()))
	fmt.Fprintf(&b, "\n# clients\n")
	fmt.Fprintf(&b, "clients_lifetime: %d\n", s.stats.clients.Load())
	fmt.Fprintf(&b, "\n# internals\n")
	fmt.Fprintf(&b, "sequential_key_size: %d\n", zdb.SeqKeySize)
	fmt.Fprintf(&b, "data_version: 3\n")
	fmt.Fprintf(&b, "index_version: 4\n")
	fmt.Fprintf(&b, "\n# stats\n")
	fmt.Fprintf(&b, "commands_executed: %d\n", s.stats.cmds.Load())
	fmt.Fprintf(&b, "commands_failed: %d\n", s.stats.failed.Load())
	fmt.Fprintf(&b, "commands_unauthorized: %d\n", s.stats.unauthorized.Load())
	fmt.Fprintf(&b, "network_tx_bytes: %d\n", s.stats.tx.Load())
	if rs := s.replicaStatus(); rs != nil {
		fmt.Fprintf(&b, "\n# replication\n")
		for _, l := range rs.InfoLines() {
			b.WriteString(l)
			b.WriteByte('\n')
		}
	}
	c.w.BulkString(b.String())
	return true
}

func (s *Server) replicaStatus() ReplicaStatus {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.replica
}

func yesno(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func cmdNsinfo(s *Server, c *client, args [][]byte) bool {
	if !argsValidate(c, args, 2, false) {
		return true
	}
	if len(args[1]) > zdb.MaxNamespaceName {
		c.w.Error("Namespace too long")
		return true
	}
	ns, err := s.db.Namespace(string(args[1]))
	if err != nil {
		c.w.Error("Namespace not found")
		return true
	}
	st, set := ns.Stats(), ns.Settings()
	var b strings.Builder
	fmt.Fprintf(&b, "# namespace\n")
	fmt.Fprintf(&b, "name: %s\n", ns.Name())
	fmt.Fprintf(&b, "entries: %d\n", st.Entries)
	fmt.Fprintf(&b, "public: %s\n", yesno(set.Public))
	fmt.Fprintf(&b, "worm: %s\n", yesno(set.Worm))
	fmt.Fprintf(&b, "locked: %s\n", yesno(set.Lock))
	fmt.Fprintf(&b, "frozen: %s\n", yesno(set.Freeze))
	fmt.Fprintf(&b, "password: %s\n", yesno(set.HasPassword))
	fmt.Fprintf(&b, "data_size_bytes: %d\n", st.Payload)
	fmt.Fprintf(&b, "data_size_mb: %.2f\n", float64(st.Payload)/(1<<20))
	fmt.Fprintf(&b, "data_limits_bytes: %d\n", set.MaxSize)
	fmt.Fprintf(&b, "index_size_bytes: %d\n", st.IndexRAM)
	fmt.Fprintf(&b, "index_size_kb: %.2f\n", float64(st.IndexRAM)/1024)
	// 0-db prints the next id byte-swapped.
	fmt.Fprintf(&b, "next_internal_id: 0x%016x\n", bswap64(st.NextID))
	fmt.Fprintf(&b, "mode: %s\n", set.Mode)
	fmt.Fprintf(&b, "stats_index_io_errors: 0\n")
	fmt.Fprintf(&b, "stats_index_io_error_last: 0\n")
	fmt.Fprintf(&b, "stats_index_faults: 0\n")
	fmt.Fprintf(&b, "stats_data_io_errors: 0\n")
	fmt.Fprintf(&b, "stats_data_io_error_last: 0\n")
	fmt.Fprintf(&b, "stats_data_faults: 0\n")
	if set.MaxSize > 0 {
		avail := int64(set.MaxSize) - st.Payload
		if avail < 0 {
			avail = 0
		}
		fmt.Fprintf(&b, "space_available: %d\n", avail)
	}
	opts := s.db.Options()
	for _, d := range []struct{ name, path string }{{"index", opts.IndexDir}, {"data", opts.DataDir}} {
		var fs syscall.Statfs_t
		if syscall.Statfs(d.path, &fs) == nil {
			free := fs.Bavail * uint64(fs.Bsize)
			fmt.Fprintf(&b, "%s_disk_freespace_bytes: %d\n", d.name, free)
			fmt.Fprintf(&b, "%s_disk_freespace_mb: %.2f\n", d.name, float64(free)/(1<<20))
		}
	}
	fmt.Fprintf(&b, "data_disk_size_bytes: %d\n", st.DataSize)
	fmt.Fprintf(&b, "index_disk_size_bytes: %d\n", st.IndexSize)
	if c.master {
		if pw, ok := ns.ClearPassword(); ok {
			fmt.Fprintf(&b, "password_raw: %s\n", pw)
		}
	}
	if c.admin {
		fmt.Fprintf(&b, "data_path: %s/%s\n", opts.DataDir, ns.Name())
		fmt.Fprintf(&b, "data_active: %s/%s/d%d\n", opts.DataDir, ns.Name(), st.CurrentFile)
		fmt.Fprintf(&b, "index_path: %s/%s\n", opts.IndexDir, ns.Name())
		fmt.Fprintf(&b, "index_active: %s/%s/i%d\n", opts.IndexDir, ns.Name(), st.CurrentFile)
		fmt.Fprintf(&b, "data_current_id: %d\n", st.CurrentFile)
		fmt.Fprintf(&b, "data_current_offset: %d\n", st.DataOffset)
	}
	c.w.BulkString(b.String())
	return true
}

func bswap64(v uint64) uint64 {
	var r uint64
	for i := 0; i < 8; i++ {
		r = r<<8 | v&0xff
		v >>= 8
	}
	return r
}
