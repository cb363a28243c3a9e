package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"runtime/pprof"
	"syscall"

	"github.com/spf13/cobra"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist/mount"
	"github.com/zosgrid/zos/internal/starttrace"
)

func defaultCacheDir() string {
	if os.Geteuid() == 0 {
		return "/var/cache/zos/flist"
	}
	if d, err := os.UserCacheDir(); err == nil {
		return filepath.Join(d, "zos", "flist")
	}
	return filepath.Join(os.TempDir(), "zos-flist-cache")
}

func newFlistMountCmd() *cobra.Command {
	var (
		src                            = flistInput{signed: true}
		cacheDir, cacheSize, ptMinFlag string
		cpuProfile                     string
		execVerify, debug, noPT        bool
		noOpen, kernel                 string
		allowOther                     bool
		readAhead, procs               int
	)
	cmd := &cobra.Command{
		Use:   "mount X.fl MOUNTPOINT",
		Short: "Mount an flist read-only with FUSE; blocks are fetched lazily and verified",
		Long: `Mount serves the flist at MOUNTPOINT until SIGTERM/SIGINT or "zos flist umount".
Blocks are fetched on first read from the store (--store, or the flist's routes), checked
(id and key), and kept in a size-bounded cache shared by every flist mounted with the same
--cache directory; sequential reads fetch the next blocks ahead. A tampered block gives EIO
and a log line naming the file and block, never wrong bytes.

The flist must be signed by a --trust key, unless --insecure. --exec-verify lets execve
run only executables of the signed metadata, each fully fetched and verified first.

SIGUSR1 prints one line "stats {JSON}" on stdout: FUSE requests served by operation
and block cache counters (what benchmarks and debugging look at).`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			logger := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			if procs < 0 {
				return fmt.Errorf("--procs %d: want 0 (4 per CPU, at least 8) or more", procs)
			}
			size, err := parseSize(cacheSize)
			if err != nil {
				return err
			}
			ptMin, err := parseSize(ptMinFlag)
			if err != nil {
				return fmt.Errorf("--passthrough-min: %w", err)
			}
			ptMinOpt := int64(ptMin)
			if ptMin == 0 {
				ptMinOpt = -1 // pass every file through
			}
			if cpuProfile != "" {
				pf, err := os.Create(cpuProfile)
				if err != nil {
					return err
				}
				defer pf.Close()
				if err := pprof.StartCPUProfile(pf); err != nil {
					return err
				}
				defer pprof.StopCPUProfile()
			}
			var noOpenOpt, autoNoOpen bool
			switch noOpen {
			case "true":
				noOpenOpt = true
			case "auto":
				autoNoOpen = true
			case "false":
			default:
				return fmt.Errorf("--no-open: %q is not true, false or auto", noOpen)
			}
			kernelMode, err := parseKernelMode(kernel)
			if err != nil {
				return err
			}
			f, r, err := src.open(ctx, args[0], cmd.ErrOrStderr())
			if err != nil {
				return err
			}
			defer f.Close()
			defer r.Close()
			starttrace.Mark("mount", "flist opened (signature checked), stores open")
			cache, err := mount.NewCache(cacheDir, int64(size), logger)
			if err != nil {
				return err
			}
			defer cache.Close()
			starttrace.Mark("mount", "cache open")
			m, err := mount.New(ctx, f, args[1], mount.Options{
				Cache: cache, Store: r, ReadAhead: readAhead, ExecVerify: execVerify,
				NoPassthrough: noPT, PassthroughMin: ptMinOpt, NoOpen: noOpenOpt, AutoNoOpen: autoNoOpen, AllowOther: allowOther, Debug: debug, Logger: logger, Kernel: kernelMode,
			})
			if err != nil {
				return err
			}
			starttrace.Mark("mount", "mounted")
			f.Close()
			// Only now: more Ps at start only made more threads (a
			// container's cold start waits for the mount).
			setProcs(cmd, mountProcs(procs, runtime.GOMAXPROCS(0)))
			by := "FUSE"
			if m.Kernel() {
				by = "the kernel, every file cached"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "mounted %s at %s (hash %s, served by %s)\n", args[0], args[1], m.Hash(), by)
			done := make(chan struct{})
			usr1 := make(chan os.Signal, 1)
			signal.Notify(usr1, syscall.SIGUSR1)
			defer signal.Stop(usr1)
			go func() {
				for {
					select {
					case <-ctx.Done():
						if err := m.Unmount(); err != nil {
							logger.Error("unmount failed", "err", err)
						}
						return
					case <-usr1:
						b, _ := json.Marshal(struct {
							Ops   mount.OpStats    `json:"ops"`
							Cache mount.CacheStats `json:"cache"`
						}{m.OpStats(), cache.Stats()})
						fmt.Fprintf(cmd.OutOrStdout(), "stats %s\n", b)
					case <-done:
						return
					}
				}
			}()
			m.Wait()
			close(done)
			return nil
		},
	}
	src.addFlags(cmd)
	fl := cmd.Flags()
	fl.StringVar(&cacheDir, "cache", defaultCacheDir(), "block cache directory, shared by every mount")
	fl.StringVar(&cacheSize, "cache-size", "10G", "cache size bound (least recently used blocks are evicted)")
	fl.IntVar(&readAhead, "read-ahead", 4, "blocks fetched ahead of sequential reads, and files ahead of a walk through the tree (0: default, -1: off)")
	fl.IntVar(&procs, "procs", 0, "threads that may run the daemon's Go code at once (GOMAXPROCS; 0 = 4 per CPU, at least 8): its requests block in disk reads")
	fl.BoolVar(&execVerify, "exec-verify", false, "refuse execve of anything but fully verified executables of the signed flist")
	fl.BoolVar(&noPT, "no-passthrough", false, "serve every read through the daemon (no FUSE passthrough)")
	fl.StringVar(&ptMinFlag, "passthrough-min", "128K", "smallest file passed through to its cache file; smaller ones are served once by the daemon, then from the kernel page cache (0: every file)")
	fl.StringVar(&noOpen, "no-open", "auto", "true: open files without a round trip to the daemon (page cache kept, no passthrough; with --exec-verify, executables are verified whole on first read); auto: when the flist's files average under 64 KiB; false: every open asks the daemon (passthrough of cached files)")
	fl.Lookup("no-open").NoOptDefVal = "true"
	fl.StringVar(&kernel, "kernel", "auto", "auto: when every file of the flist is in the cache, mount it with the kernel (overlayfs over a metadata image, reading cache files directly: local disk speed, no daemon in the path; needs root and Linux 6.12+) and FUSE otherwise; true: kernel or fail; false: always FUSE")
	fl.Lookup("kernel").NoOptDefVal = "true"
	fl.BoolVar(&allowOther, "allow-other", os.Geteuid() == 0, "let every user read the mount (default when root)")
	fl.BoolVar(&debug, "debug", false, "log every FUSE request")
	fl.StringVar(&cpuProfile, "cpu-profile", "", "write a CPU profile of the mount process to this file (go tool pprof)")
	return cmd
}

func newFlistUmountCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "umount MOUNTPOINT",
		Short: "Unmount a mounted flist (the mount process then exits)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			err := unix.Unmount(args[0], 0)
			if errors.Is(err, unix.EPERM) {
				out, ferr := exec.Command("fusermount3", "-u", args[0]).CombinedOutput()
				if ferr != nil {
					return fmt.Errorf("flist umount: %v: %s", ferr, out)
				}
				return nil
			}
			if err != nil {
				return fmt.Errorf("flist umount %s: %w", args[0], err)
			}
			return nil
		},
	}
}

func parseKernelMode(s string) (mount.KernelMode, error) {
	switch s {
	case "auto":
		if os.Geteuid() != 0 {
			return mount.KernelOff, nil // overlayfs xattrs need root
		}
		return mount.KernelAuto, nil
	case "true":
		return mount.KernelOnly, nil
	case "false":
		return mount.KernelOff, nil
	}
	return 0, fmt.Errorf("--kernel: %q is not true, false or auto", s)
}

// mountProcs is the GOMAXPROCS of a mount daemon for --procs n on a
// machine with cpus CPUs. A request the daemon serves often blocks in a
// disk read (a cache file whose pages were dropped): with one P per CPU,
// the Ps of blocked threads sat idle until the runtime took them back.
// Measured on 2 CPUs reading /usr/share through a mount (bench/flist),
// 8 instead of 2 read 6-13% faster cold and 3-13% warm.
func mountProcs(n, cpus int) int {
	if n > 0 {
		return n
	}
	return max(8, 4*cpus)
}
