package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"runtime"
	"runtime/pprof"
	"strconv"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/resp"
	"github.com/zosgrid/zos/zdb"
	"github.com/zosgrid/zos/zdb/replica"
	"github.com/zosgrid/zos/zdb/server"
)

func newZdbCmd() *cobra.Command {
	var (
		listen, socket, dataDir, indexDir, mode, admin, hook, logfile string
		port                                                          int
		datasize, maxsize                                             int64
		protect, sync, verbose, compatPw, dualnet                     bool
		synctime                                                      int
		replicaOf, replicaAuth                                        string
		compactAt                                                     float64
		cacheSize                                                     int64
		cpuProfile                                                    string
		procs                                                         int
	)
	cmd := &cobra.Command{
		Use:     "zdb",
		Short:   "Run a zdb server (0-db compatible key-value store, redis protocol)",
		GroupID: groupServices,
		Long: `zdb is an always-append key-value store, a drop-in replacement for 0-db: same
commands, replies and on-disk format (data v3, index v4), so directories and clients move
between the two. Data lives in namespaces; each has append-only data files under --data
and index files under --index.

Writes are acknowledged only once they are in the files (page cache); with --sync only
once they are on disk. Writes that arrive together share one write and one fsync.
On start a torn or corrupt tail (after a crash) is detected by CRC, truncated and logged.

Namespace passwords are kept as salted hashes in a side file 0-db ignores, unless
--compat-passwords keeps them in clear in 0-db's descriptor (needed for 0-db to open the
directory with its passwords, and for SELECT ... SECURE).

The server logs "zdb ready" when it accepts clients and stops cleanly on SIGTERM.`,
		Example: `  zos zdb --data /var/zdb/data --index /var/zdb/index --admin s3cret
  redis-cli -p 9900 SET hello world`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := zdb.ParseMode(mode)
			if err != nil {
				return err
			}
			if procs < 0 {
				return fmt.Errorf("--procs %d: want 0 (half the CPUs) or more", procs)
			}
			setProcs(cmd, zdbProcs(procs, runtime.GOMAXPROCS(0)))
			out := io.Writer(os.Stderr)
			if logfile != "" {
				f, err := os.OpenFile(logfile, os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o600)
				if err != nil {
					return err
				}
				defer f.Close()
				out = f
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(out, &slog.HandlerOptions{Level: level}))
			if cpuProfile != "" {
				stopProfile, err := startCPUProfile(cpuProfile)
				if err != nil {
					return err
				}
				defer stopProfile()
			}
			start := time.Now()
			var srv *server.Server // set before any client can write
			db, err := zdb.Open(zdb.Options{
				OnJump: func(j zdb.Jump) {
					if srv != nil {
						srv.JumpHook(j)
					}
				},
				MissingData: func(ns, path string) error {
					if srv == nil {
						return errors.New("zdb server not started yet")
					}
					return srv.MissingDataHook(ns, path)
				},
				DataDir: dataDir, IndexDir: indexDir, Mode: m, DataSize: datasize,
				Sync: sync, SyncTime: time.Duration(synctime) * time.Second,
				CompatPasswords: compatPw, Logger: log, CacheSize: cacheSize,
			})
			if err != nil {
				return err
			}
			defer db.Close()
			for _, r := range db.Repairs() {
				log.Warn("zdb repaired on open", "repair", r.String())
			}
			if maxsize > 0 {
				ns, _ := db.Namespace(zdb.DefaultNamespace)
				if err := ns.Update(func(s *zdb.Settings) { s.MaxSize = uint64(maxsize) }); err != nil {
					return err
				}
			}
			srv, err = server.New(db, server.Config{
				Listen: listen, Port: port, Socket: socket, DualNet: dualnet,
				Admin: admin, Protect: protect, Hook: hook, Logger: log, AutoCompact: compactAt,
				ReadOnly: replicaOf != "",
			})
			if err != nil {
				return err
			}
			if protect && admin == "" {
				return errors.New("--protect needs --admin")
			}
			if err := srv.Listen(); err != nil {
				return err
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), syscall.SIGTERM, syscall.SIGINT)
			defer stop()
			if replicaOf != "" {
				done := startReplica(ctx, db, srv, replicaOf, replicaAuth, log)
				defer func() { stop(); <-done }()
			}
			var addrs []string
			for _, a := range srv.Addrs() {
				addrs = append(addrs, a.String())
			}
			log.Info("zdb ready", "listen", addrs, "data", dataDir, "index", indexDir,
				"mode", m.String(), "namespaces", len(db.List()), "startup", time.Since(start).Round(time.Millisecond))
			err = srv.Serve(ctx)
			log.Info("zdb stopped")
			return err
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1", "address to listen on")
	f.IntVar(&port, "port", 9900, "TCP port (0 picks a free one)")
	f.StringVar(&socket, "socket", "", "unix socket path (replaces TCP unless --dualnet)")
	f.BoolVar(&dualnet, "dualnet", false, "listen on TCP and the unix socket")
	f.StringVar(&dataDir, "data", "./zdb-data", "data files directory")
	f.StringVar(&indexDir, "index", "./zdb-index", "index files directory")
	f.StringVar(&mode, "mode", "", "force every namespace to user or seq mode (default: each namespace chooses, new ones are user)")
	f.Int64Var(&datasize, "datasize", zdb.DefaultDataSize, "size in bytes at which data files rotate (max 4 GiB)")
	f.StringVar(&admin, "admin", "", "admin password (without it every client is admin, as in 0-db)")
	f.BoolVar(&protect, "protect", false, "make the default namespace read-only unless selected with the admin password")
	f.Int64Var(&maxsize, "maxsize", 0, "size limit in bytes of the default namespace (0 = none)")
	f.BoolVar(&sync, "sync", false, "fsync before acknowledging every write (group commit)")
	f.IntVar(&synctime, "synctime", 0, "fsync at most this many seconds after the last fsync (0 = off)")
	f.StringVar(&hook, "hook", "", "executable run on events (ready, close, namespace-*, jump-*, missing-data)")
	f.BoolVar(&verbose, "verbose", false, "debug logging")
	f.StringVar(&logfile, "logfile", "", "write logs to this file instead of stderr")
	f.BoolVar(&compatPw, "compat-passwords", false, "keep namespace passwords in clear in 0-db's descriptor")
	f.StringVar(&replicaOf, "replica-of", "", "follow the primary at HOST:PORT (this server becomes a read-only secondary)")
	f.StringVar(&replicaAuth, "replica-auth", "", "admin password of the primary (or env ZDB_REPLICA_AUTH)")
	f.Int64Var(&cacheSize, "cache", 64<<20, "bytes of RAM for values read with pread, where a data file cannot be mapped (GETs read through maps of the data files), shared by all namespaces (-1 = none)")
	f.Float64Var(&compactAt, "compact-threshold", 0.5, "compact a namespace automatically once this share of its data is dead (0 = never)")
	f.IntVar(&procs, "procs", 0, "CPUs the server runs on at once (GOMAXPROCS; 0 = half the CPUs, at least 1): the clients share the machine, and fewer scheduler threads cost fewer context switches per request")
	// For performance work: profile the server under a benchmark, then
	// `go tool pprof bin/zos FILE`. The profile is written on a clean stop.
	f.StringVar(&cpuProfile, "cpuprofile", "", "write a CPU profile to this file until the server stops")
	f.MarkHidden("cpuprofile")
	cmd.AddCommand(newZdbCheckCmd(), newZdbCompactCmd())
	return cmd
}

// setProcs sets GOMAXPROCS to n for a command's --procs flag, unless the
// flag was left at its default and the user set GOMAXPROCS.
func setProcs(cmd *cobra.Command, n int) {
	if cmd.Flags().Changed("procs") || os.Getenv("GOMAXPROCS") == "" {
		runtime.GOMAXPROCS(n)
	}
}

// zdbProcs is the GOMAXPROCS for --procs n on a machine where the Go
// default is cpus. Half by default: measured on 2 CPUs with redis-benchmark
// on the same machine, one scheduler thread instead of two served 64 B
// SET/GET at -c 50 25-40% faster (the request path is a read and a write
// system call; with two threads most of the rest went to waking and
// parking them), and no row slower beyond the noise.
func zdbProcs(n, cpus int) int {
	if n > 0 {
		return n
	}
	return max(1, cpus/2)
}

// startCPUProfile profiles the process into path until the returned
// function is called.
func startCPUProfile(path string) (func(), error) {
	f, err := os.Create(path)
	if err != nil {
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	if err := pprof.StartCPUProfile(f); err != nil {
		f.Close()
		return nil, fmt.Errorf("cpu profile: %w", err)
	}
	return func() {
		pprof.StopCPUProfile()
		f.Close()
	}, nil
}

func newZdbCompactCmd() *cobra.Command {
	var host, socket, ns string
	var port int
	cmd := &cobra.Command{
		Use:   "compact [--namespace NS]",
		Short: "Compact a namespace of a running zdb server online",
		Long: `compact asks a running server to rewrite a namespace's older files keeping only the
live keys and the history of live keys, then swap them in atomically. The namespace
keeps serving reads and writes meanwhile; disk usage drops by the dead records.
Cursors (SCAN, KEYCUR, HISTORY) handed out before a compaction may become invalid.
In a seq-mode namespace ids are file positions: there the index stays as it is and
only the values of deleted ids leave the data files (each id keeps its key, value
and history, and new ids continue where they were).

The server also compacts on its own when --compact-threshold of a namespace is dead.
The admin password is read from the ZDB_ADMIN environment variable when the server
runs with --admin. This sends "COMPACT <namespace>" over the redis protocol.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			network, addr := "tcp", net.JoinHostPort(host, strconv.Itoa(port))
			if socket != "" {
				network, addr = "unix", socket
			}
			conn, err := net.DialTimeout(network, addr, 5*time.Second)
			if err != nil {
				return err
			}
			defer conn.Close()
			r, w := resp.NewReader(conn), resp.NewWriter(conn)
			if pw := os.Getenv("ZDB_ADMIN"); pw != "" {
				w.Command([]byte("AUTH"), []byte(pw))
			}
			w.Command([]byte("COMPACT"), []byte(ns))
			if err := w.Flush(); err != nil {
				return err
			}
			fmt.Fprintf(cmd.ErrOrStderr(), "compacting namespace %s...\n", ns)
			if os.Getenv("ZDB_ADMIN") != "" {
				if v, err := r.ReadValue(); err != nil {
					return err
				} else if err := v.Err(); err != nil {
					return fmt.Errorf("auth: %w", err)
				}
			}
			v, err := r.ReadValue()
			if err != nil {
				return err
			}
			if err := v.Err(); err != nil {
				return fmt.Errorf("compact %s: %w", ns, err)
			}
			fmt.Fprintln(cmd.OutOrStdout(), string(v.Str))
			return nil
		},
	}
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "server address")
	cmd.Flags().IntVar(&port, "port", 9900, "server port")
	cmd.Flags().StringVar(&socket, "socket", "", "server unix socket (instead of host and port)")
	cmd.Flags().StringVar(&ns, "namespace", zdb.DefaultNamespace, "namespace to compact")
	return cmd
}

func newZdbCheckCmd() *cobra.Command {
	var dataDir, indexDir string
	var namespaces []string
	cmd := &cobra.Command{
		Use:   "check --data DIR --index DIR [--namespace NS]...",
		Short: "Verify a stopped zdb's files offline (changes nothing)",
		Long: `check reads every namespace (or the ones named) and verifies descriptors, file headers,
every index entry against its data record (bounds, key, length, CRC32C), every data
record's CRC, history links, and that no file has a torn tail. It changes nothing.
Run it on a stopped server: a running one may be mid-write.

Exit status 0 means consistent; 1 prints every problem found.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			rep, err := zdb.Verify(dataDir, indexDir, namespaces...)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			for _, p := range rep.Problems {
				fmt.Fprintln(w, "problem:", p)
			}
			fmt.Fprintf(w, "checked %d namespaces, %d index entries, %d data records: ",
				len(rep.Namespaces), rep.Entries, rep.Records)
			if !rep.OK() {
				fmt.Fprintf(w, "%d problems\n", len(rep.Problems))
				return fmt.Errorf("zdb check: %d problems found", len(rep.Problems))
			}
			fmt.Fprintln(w, "consistent")
			return nil
		},
	}
	cmd.Flags().StringVar(&dataDir, "data", "./zdb-data", "data files directory")
	cmd.Flags().StringVar(&indexDir, "index", "./zdb-index", "index files directory")
	cmd.Flags().StringSliceVar(&namespaces, "namespace", nil, "namespace to check (repeatable; default all)")
	return cmd
}

// startReplica follows the primary in the background until ctx ends; the
// returned channel closes when the follower has stopped.
func startReplica(ctx context.Context, db *zdb.DB, srv *server.Server, primary, auth string, log *slog.Logger) <-chan struct{} {
	if auth == "" {
		auth = os.Getenv("ZDB_REPLICA_AUTH")
	}
	f := replica.New(db, replica.Config{Primary: primary, Password: auth, Logger: log})
	srv.SetReplicaStatus(f)
	done := make(chan struct{})
	go func() {
		defer close(done)
		f.Run(ctx)
	}()
	return done
}
