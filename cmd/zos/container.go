package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/container"
	"github.com/zosgrid/zos/container/supervise"
	"github.com/zosgrid/zos/internal/starttrace"
)

const defaultContainerRoot = "/var/lib/zos/containers"

func newContainerCmd() *cobra.Command {
	var root string
	cmd := &cobra.Command{
		Use:     "container",
		Short:   "Run and manage isolated containers (runc libcontainer)",
		GroupID: groupTools,
		Long: `Containers run an image's root filesystem read-only under a per-container
writable overlay, in their own mount, pid, uts, ipc, net, cgroup and user
namespaces (container root is an unprivileged host uid), with Docker's default
capabilities, no_new_privs, a seccomp filter, masked /proc and /sys paths and
cgroup limits. Needs root.

An IMAGE is an flist (X.fl: mounted lazily with FUSE, signature checked against
--trust keys, image config from its metadata), a root filesystem directory, or a
bundle directory holding rootfs/ and image.json (an OCI image config giving
Entrypoint, Cmd, Env, WorkingDir, User).`,
	}
	cmd.PersistentFlags().StringVar(&root, "root", defaultContainerRoot, "state directory of containers")
	rt := func() (*container.Runtime, error) {
		self, err := os.Executable()
		if err != nil {
			return nil, err
		}
		root, err := filepath.Abs(root)
		if err != nil {
			return nil, err
		}
		return container.New(root, self, slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelWarn})),
			flistImages{self: self, root: root})
	}
	cmd.AddCommand(newContainerRunCmd(rt), newContainerPsCmd(rt), newContainerLogsCmd(rt),
		newContainerStatsCmd(rt), newContainerExecCmd(rt), newContainerStopCmd(rt),
		newContainerStartCmd(rt), newContainerRmCmd(rt), newContainerInspectCmd(rt),
		newContainerRecoverCmd(rt), newContainerGrowCmd(rt), newContainerPruneCmd(rt), newContainerSuperviseCmd(rt))
	return cmd
}

type runtimeFunc func() (*container.Runtime, error)

func newContainerRunCmd(rt runtimeFunc) *cobra.Command {
	var (
		c                   container.Config
		env, vols           []string
		entrypoint, restart string
		memory              string
		detach, rm, noVerif bool
		trust, stores       []string
		insecure            bool
		cacheDir            string
	)
	cmd := &cobra.Command{
		Use:   "run [flags] IMAGE|X.fl|HUB-URL [-- CMD ARGS...]",
		Short: "Create and start a container (in the foreground unless --detach)",
		Long: `Create a container from IMAGE and run it. In the foreground the container's output
is shown and the command exits with the container's exit status; Ctrl-C stops it.
With --detach a supervisor process keeps it running (and restarts it per --restart)
and the container's name is printed.

IMAGE is an unpacked root filesystem directory, a signed .fl, or the
http(s) URL of one on a hub (for example
http://HUB/api/v1/flists/USER/app:latest): it is downloaded into the
node's image directory and mounted lazily like a local .fl (--trust
applies).`,
		Args: cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			ctx := cmd.Context()
			created := func() {}
			made := false // the container was created
			var img container.Rootfs
			if strings.HasPrefix(args[0], "http://") || strings.HasPrefix(args[0], "https://") {
				var done func(bool)
				if args[0], done, err = r.FetchImage(ctx, args[0]); err != nil {
					return err
				}
				// Released once the container is created (it then
				// references the download) or the run failed before.
				defer done(false)
				created = func() { done(true) }
			}
			if strings.HasSuffix(args[0], ".fl") {
				abs, err := filepath.Abs(args[0])
				if err != nil {
					return err
				}
				args[0] = abs
				for _, t := range trust {
					c.ImageArgs = append(c.ImageArgs, "--trust", t)
				}
				for _, s := range stores {
					c.ImageArgs = append(c.ImageArgs, "--store", s)
				}
				if insecure {
					c.ImageArgs = append(c.ImageArgs, "--insecure")
				}
				if cacheDir != "" {
					c.ImageArgs = append(c.ImageArgs, "--cache", cacheDir)
				}
				// The mount process starts while the image config is
				// read and the container recorded.
				ahead := r.PrepareAhead(ctx, abs, c.ImageArgs)
				defer func() { ahead(made) }()
				if img.Image, err = (flistImages{root: r.Root()}).Image(ctx, abs, c.ImageArgs); err != nil {
					return err
				}
			} else if img, err = (container.DirRootfs{}).Rootfs(ctx, args[0]); err != nil {
				return err
			}
			c.Image, c.Lower, c.Env = args[0], img.Lower, env
			if c.ID == "" {
				c.ID = fmt.Sprintf("c%x", time.Now().UnixNano()&0xffffffffff)
			}
			if cmd.Flags().Changed("entrypoint") {
				c.Entrypoint = []string{}
				if entrypoint != "" {
					c.Entrypoint = []string{entrypoint}
				}
			}
			if len(args) > 1 && args[1] == "--" {
				args = append(args[:1], args[2:]...)
			}
			if len(args) > 1 {
				c.Cmd = args[1:]
			}
			c.Resolve(img.Image)
			if memory != "" {
				if c.MemoryBytes, err = container.ParseBytes(memory); err != nil {
					return err
				}
			}
			if c.Restart, err = container.ParseRestartPolicy(restart); err != nil {
				return err
			}
			for _, v := range vols {
				vol, err := container.ParseVolume(v)
				if err != nil {
					return err
				}
				c.Volumes = append(c.Volumes, vol)
			}
			c.ExecVerify = !noVerif
			if c.NetNS == "none" {
				c.NetNS = ""
			}
			if err := r.Create(ctx, c); err != nil {
				return err
			}
			created()
			made = true
			starttrace.Mark("cli", "container created (image config read, state written)")
			if detach {
				if err := r.Start(ctx, c.ID); err != nil {
					return err
				}
				fmt.Fprintln(cmd.OutOrStdout(), c.ID)
				return nil
			}
			st, err := r.Supervise(ctx, c.ID, container.SuperviseOptions{Output: cmd.OutOrStdout(), StopOnCancel: true})
			if rm {
				if rerr := r.Remove(context.WithoutCancel(ctx), c.ID, true); rerr != nil && err == nil {
					err = rerr
				}
			}
			if err != nil {
				return err
			}
			if st.OOMKilled {
				fmt.Fprintln(cmd.ErrOrStderr(), "zos: container was killed: out of memory")
			}
			if st.ExitCode != 0 {
				return exitError{code: st.ExitCode}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringVar(&c.ID, "name", "", "container name (default: generated)")
	f.StringArrayVarP(&env, "env", "e", nil, "set an environment variable KEY=VALUE (repeatable)")
	f.StringVarP(&c.WorkDir, "workdir", "w", "", "working directory inside the container (default: image's)")
	f.StringVarP(&c.User, "user", "u", "", "UID[:GID] or NAME[:GROUP] to run as, names from the image's /etc/passwd and /etc/group (default: image's, else 0)")
	f.Float64Var(&c.CPUs, "cpus", 0, "CPU limit in cores (e.g. 0.5)")
	f.StringVarP(&memory, "memory", "m", "", "memory limit (e.g. 256M); exceeding it OOM-kills")
	f.Int64Var(&c.PidsLimit, "pids-limit", 0, "maximum number of processes")
	f.StringArrayVarP(&vols, "volume", "v", nil, "HOSTDIR:TARGET[:ro], or SIZE:TARGET for a new sparse virtual disk (repeatable)")
	f.StringVar(&restart, "restart", "no", "restart policy: no, always, unless-stopped, on-failure[:N]")
	f.BoolVarP(&detach, "detach", "d", false, "run in the background and print the container name")
	f.BoolVar(&rm, "rm", false, "remove the container when it exits (foreground only)")
	f.StringVar(&entrypoint, "entrypoint", "", "override the image's entrypoint")
	f.StringVar(&c.Hostname, "hostname", "", "hostname (default: the container name)")
	f.StringVar(&c.NetNS, "netns", "none", "network namespace path to join; none = a fresh empty one")
	f.BoolVar(&c.NoUserNS, "no-userns", false, "run container root as host root (weaker isolation)")
	f.BoolVar(&c.NoInit, "no-init", false, "run the entrypoint as PID 1 instead of zos init")
	f.BoolVar(&noVerif, "no-exec-verify", false, "allow executing, or loading as libraries, files that are not part of the image (and executable memfds)")
	f.StringVar(&c.Services, "services", "", "directory in the image with zinit-style YAML services for zos init")
	f.StringVar(&c.Corex, "corex", "", "with --services: serve the corex API (services, logs, terminal) on ADDR in the container's netns; token in STATE/c/NAME/corex.token")
	f.StringArrayVar(&trust, "trust", nil, "flist images: public key (ed25519:hex or a file) whose signature is accepted (repeatable)")
	f.BoolVar(&insecure, "insecure", false, "flist images: accept unsigned or untrusted flists")
	f.StringArrayVar(&stores, "store", nil, "flist images: block store URL (default: the flist's routes)")
	f.StringVar(&cacheDir, "cache", "", "flist images: node-wide block cache directory (default: zos flist mount's)")
	return cmd
}

func newContainerPsCmd(rt runtimeFunc) *cobra.Command {
	var all bool
	cmd := &cobra.Command{
		Use:   "ps",
		Short: "List containers (running ones unless --all)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			list, err := r.List(cmd.Context())
			if err != nil {
				return err
			}
			tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(tw, "NAME\tSTATE\tPID\tEXIT\tRESTARTS\tIMAGE\tCOMMAND")
			for _, i := range list {
				if !all && i.Status.State != container.StateRunning && i.Status.State != container.StateRestarting {
					continue
				}
				fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%s\t%s\n", i.Config.ID, i.Status.State, i.Status.Pid,
					i.Status.ExitCode, i.Status.Restarts, i.Config.Image, strings.Join(i.Config.Args(), " "))
			}
			return tw.Flush()
		},
	}
	cmd.Flags().BoolVarP(&all, "all", "a", false, "also list exited and created containers")
	return cmd
}

func newContainerLogsCmd(rt runtimeFunc) *cobra.Command {
	var follow bool
	cmd := &cobra.Command{
		Use:   "logs NAME",
		Short: "Print a container's output (stdout and stderr, rotated files first)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			return r.Logs(cmd.Context(), args[0], cmd.OutOrStdout(), follow)
		},
	}
	cmd.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing new output until the container exits")
	return cmd
}

func newContainerStatsCmd(rt runtimeFunc) *cobra.Command {
	return containerJSONCmd(rt, "stats NAME", "Print a running container's cgroup counters as JSON (cpu, memory, io, pids)",
		func(r *container.Runtime, ctx context.Context, name string) (any, error) { return r.Stats(ctx, name) })
}

// containerJSONCmd is a command that reads one thing about a named container
// and prints it as JSON.
func containerJSONCmd(rt runtimeFunc, use, short string, read func(*container.Runtime, context.Context, string) (any, error)) *cobra.Command {
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			v, err := read(r, cmd.Context(), args[0])
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), v)
		},
	}
}

func newContainerExecCmd(rt runtimeFunc) *cobra.Command {
	var (
		env  []string
		wd   string
		user string
	)
	cmd := &cobra.Command{
		Use:   "exec NAME CMD [ARGS...]",
		Short: "Run a command inside a running container; exits with its status",
		Args:  cobra.MinimumNArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			code, err := r.Exec(cmd.Context(), args[0], container.ExecOptions{Args: args[1:], Env: env, WorkDir: wd, User: user,
				Stdin: cmd.InOrStdin(), Stdout: cmd.OutOrStdout(), Stderr: cmd.ErrOrStderr()})
			if err != nil {
				return err
			}
			if code != 0 {
				return exitError{code: code}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.SetInterspersed(false)
	f.StringArrayVarP(&env, "env", "e", nil, "extra environment variable KEY=VALUE")
	f.StringVarP(&wd, "workdir", "w", "", "working directory (default: the container's)")
	f.StringVarP(&user, "user", "u", "", "UID[:GID] or NAME[:GROUP] from the container's /etc/passwd (default: the container's)")
	return cmd
}

func newContainerStopCmd(rt runtimeFunc) *cobra.Command {
	var grace time.Duration
	cmd := &cobra.Command{
		Use:   "stop NAME...",
		Short: "Stop containers: SIGTERM, then SIGKILL after the grace period; no restart",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			var errs []error
			for _, id := range args {
				errs = append(errs, r.Stop(cmd.Context(), id, grace))
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().DurationVarP(&grace, "time", "t", 10*time.Second, "grace period before SIGKILL")
	return cmd
}

func newContainerStartCmd(rt runtimeFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "start NAME",
		Short: "Start a created or exited container in the background",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			return r.Start(cmd.Context(), args[0])
		},
	}
}

func newContainerRmCmd(rt runtimeFunc) *cobra.Command {
	var force bool
	cmd := &cobra.Command{
		Use:   "rm NAME...",
		Short: "Remove containers with their writable layer, logs, disks, mounts and cgroups",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			var errs []error
			for _, id := range args {
				errs = append(errs, r.Remove(cmd.Context(), id, force))
			}
			return errors.Join(errs...)
		},
	}
	cmd.Flags().BoolVarP(&force, "force", "f", false, "kill a running container first")
	return cmd
}

func newContainerInspectCmd(rt runtimeFunc) *cobra.Command {
	return containerJSONCmd(rt, "inspect NAME", "Print a container's config and status as JSON",
		func(r *container.Runtime, ctx context.Context, name string) (any, error) { return r.Inspect(ctx, name) })
}

func newContainerGrowCmd(rt runtimeFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "grow NAME TARGET SIZE",
		Short: "Grow a container's virtual disk (the volume at TARGET) to SIZE, e.g. 2G",
		Long: `Grow the sparse virtual disk mounted at TARGET in container NAME. A running
container's disk grows online: the container keeps running and sees the new size
at once (the kernel requires CAP_SYS_RESOURCE; without it, stop the container
first). A stopped container's disk is checked and grown offline. Disks never
shrink.`,
		Args: cobra.ExactArgs(3),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			size, err := container.ParseBytes(args[2])
			if err != nil {
				return err
			}
			return r.GrowDisk(cmd.Context(), args[0], args[1], size)
		},
	}
}

func newContainerPruneCmd(rt runtimeFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "prune",
		Short: "Remove downloaded images (run by hub URL) that no container uses",
		Long: `Remove the .fl files that run downloaded from a URL into the image directory
and that no container, running or stopped, references, and print each with its
size and the total space freed. rm already removes the download of its last container;
prune clears what a run that failed or was killed before creating its container
left behind. Image files given by path are never touched.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			pruned, err := r.PruneImages(cmd.Context())
			var total int64
			for _, p := range pruned {
				fmt.Fprintf(cmd.OutOrStdout(), "deleted %s (%s)\n", p.Path, human(p.Bytes))
				total += p.Bytes
			}
			fmt.Fprintf(cmd.OutOrStdout(), "Total reclaimed space: %s\n", human(total))
			return err
		},
	}
}

func newContainerRecoverCmd(rt runtimeFunc) *cobra.Command {
	return &cobra.Command{
		Use:   "recover",
		Short: "Adopt or restart containers that lost their supervisor (after a zos or machine restart)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			r, err := rt()
			if err != nil {
				return err
			}
			ids, err := r.Recover(cmd.Context())
			for _, id := range ids {
				fmt.Fprintln(cmd.OutOrStdout(), id)
			}
			return err
		},
	}
}

func newContainerSuperviseCmd(rt runtimeFunc) *cobra.Command {
	return &cobra.Command{
		Use:    "supervise NAME",
		Short:  "Supervise one container (started by run --detach, start and recover)",
		Hidden: true,
		Args:   cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			r, err := rt()
			if err != nil {
				container.SignalReady(err)
				return err
			}
			_, err = r.Supervise(cmd.Context(), args[0], container.SuperviseOptions{Started: container.SignalReady})
			if errors.Is(err, context.Canceled) {
				return nil // the container runs on; the next supervisor adopts it
			}
			return err
		},
	}
}

func newInitCmd() *cobra.Command {
	return &cobra.Command{
		Use:     "init [--seccomp] [--memfd-noexec] [--exec] [--services DIR] [--log-dir DIR] [-- CMD ARGS...]",
		Short:   "PID 1 of a container: reap zombies, forward signals, run the entrypoint or services",
		GroupID: groupServices,
		Long: `zos init is the process manager that runs as PID 1 inside zos containers. It
reaps orphaned zombies and forwards signals. Given CMD it runs it and exits with
its status; given --services DIR it runs every DIR/NAME.yaml unit (exec, after,
test, oneshot, restart, env), restarting crashed services, with one log file per
service under --log-dir (default /var/log/zos) and prefixed output on stdout.
--seccomp installs the container's seccomp filter first; --memfd-noexec waits
until the runtime has made memfds non-executable (vm.memfd_noexec=2); --exec
replaces zos init with CMD (for containers run with --no-init, and for exec).`,
		DisableFlagParsing: true,
		RunE: func(cmd *cobra.Command, args []string) error {
			if wantsHelp(args) {
				return cmd.Help()
			}
			return runInit(cmd.Context(), args, cmd.OutOrStdout(), cmd.ErrOrStderr())
		},
	}
}

// runInit is `zos init` with its arguments (after "init").
func runInit(ctx context.Context, args []string, stdout, stderr io.Writer) error {
	if code := supervise.Main(ctx, args, stdout, stderr); code != 0 {
		return exitError{code: code}
	}
	return nil
}

// containerInitArgs returns the arguments of a `zos init` command line that
// main can run without the command tree (everything but a help request).
func containerInitArgs(argv []string) ([]string, bool) {
	if len(argv) < 2 || argv[1] != "init" || wantsHelp(argv[2:]) {
		return nil, false
	}
	return argv[2:], true
}

// wantsHelp says whether zos init's arguments ask for help (before "--").
func wantsHelp(args []string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if a == "-h" || a == "--help" {
			return true
		}
	}
	return false
}
