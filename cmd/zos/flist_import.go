package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/flist/pack"
	"github.com/zosgrid/zos/flist/pack/oci"
)

func newFlistImportCmd() *cobra.Command {
	var (
		out, platform, username, tmp string
		dest                         packFlags
		passwordStdin, insecure      bool
	)
	cmd := &cobra.Command{
		Use:   "import IMAGE -o OUT.fl --store URL...",
		Short: "Convert a container image (registry, docker-save tarball or OCI layout) into an flist",
		Long: `Import reads a container image straight from its layers, with no Docker daemon:

  registry     localhost:5000/app:1.2, docker.io/library/alpine:3 (or docker://REF); loopback
               and private addresses use plain HTTP, --insecure allows it for any registry;
               credentials come from --username/--password-stdin (or ZOS_REGISTRY_PASSWORD),
               else from docker login's $DOCKER_CONFIG/config.json (default ~/.docker)
  tarball      the output of "docker save" (or docker-archive:FILE[:TAG])
  OCI layout   a directory with an oci-layout file (or oci:DIR[:REF])

From a multi-arch image it picks --platform (default: this machine's). The layers are
downloaded once and checked against their digests, then merged in order as a stream -
OCI whiteouts and opaque directories applied; hard links, symlinks, devices, xattrs and
ownership kept - and packed like "zos flist pack" does: only blocks the store lacks are
uploaded, so importing the same image again uploads nothing. The image configuration
(entrypoint, cmd, env, working dir, user, ports, volumes, labels, digest) is saved in the
flist; "zos flist inspect" shows it. OUT.fl appears only when everything succeeded.`,
		Example: `  zos flist import localhost:5000/app:1.2 -o app.fl --store dir:///var/cache/blocks
  zos flist import image.tar -o app.fl --store hub+http://127.0.0.1:8090?key=me.key
  zos flist import oci:./layout:v1 --platform linux/arm64 -o app.fl --store zdb://127.0.0.1:9900/blocks`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if out == "" {
				return errors.New("flist import: -o OUT.fl is required")
			}
			password, err := registryPassword(cmd, passwordStdin)
			if err != nil {
				return fmt.Errorf("flist import: %w", err)
			}
			opts, r, err := dest.options("flist import")
			if err != nil {
				return err
			}
			defer r.Close()
			stderr := cmd.ErrOrStderr()
			tty := isTerminal(stderr)
			iopts := oci.ImportOptions{
				Source:  oci.SourceOptions{Platform: platform, Username: username, Password: password, Insecure: insecure},
				TempDir: tmp,
			}
			if tty {
				iopts.Progress = func(p oci.Progress) {
					fmt.Fprintf(stderr, "\rpull layer %d/%d: %s of %s   ", p.Layer, p.Layers, human(p.Done), human(p.Total))
				}
				opts.Progress = func(s pack.Stats) {
					fmt.Fprintf(stderr, "\rpack: %d files, %s, %d blocks (%d new)   ", s.Files, human(s.Bytes), s.Blocks, s.NewBlocks)
				}
			}
			// Pack into a temporary file next to OUT and rename it on success,
			// so a failure never leaves a half-written flist behind.
			tmpOut, err := os.CreateTemp(filepath.Dir(out), "."+filepath.Base(out)+".partial-*")
			if err != nil {
				return fmt.Errorf("flist import: %w", err)
			}
			tmpOut.Close()
			os.Remove(tmpOut.Name())
			defer os.Remove(tmpOut.Name())
			var st pack.Stats
			cfg, fst, err := oci.Import(ctx, args[0], iopts, func(ctx context.Context, tr io.Reader, imageConfig []byte) error {
				opts.ImageConfig = imageConfig
				var err error
				st, err = pack.Tar(ctx, tr, tmpOut.Name(), opts)
				return err
			})
			if tty {
				fmt.Fprintln(stderr)
			}
			if err != nil {
				return fmt.Errorf("flist import %s: %w", args[0], err)
			}
			if err := os.Rename(tmpOut.Name(), out); err != nil {
				return fmt.Errorf("flist import: %w", err)
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "imported %s (%s, %s/%s) into %s\n", args[0], cfg.Digest, cfg.OS, cfg.Architecture, out)
			fmt.Fprintf(w, "%d entries merged, %d whiteouts applied; %d files, %d dirs, %d symlinks, %d hard links, %d special\n",
				fst.Entries, fst.Whiteouts, st.Files, st.Dirs, st.Symlinks, st.HardLinks, st.Special)
			fmt.Fprintf(w, "content %s in %d blocks (%d unique), new blocks: %d (%s), dedup ratio %.2f\n",
				human(st.Bytes), st.Blocks, st.UniqueBlocks, st.NewBlocks, human(st.NewBytes), st.DedupRatio())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "flist file to write")
	f.StringVar(&platform, "platform", "", "os/arch[/variant] to pick from a multi-arch image (default: this machine's)")
	f.StringVar(&username, "username", "", "registry user name")
	f.BoolVar(&passwordStdin, "password-stdin", false, "read the registry password from the first line of stdin")
	f.BoolVar(&insecure, "insecure", false, "allow plain HTTP to any registry")
	f.StringVar(&tmp, "tmp", "", "directory for the downloaded layers while importing (default: system temp)")
	dest.addFlags(cmd, "; hub+http://HUB?key=KEYFILE uploads to a hub")
	return cmd
}

// registryPassword is the registry password of --password-stdin (the first
// line of stdin), else $ZOS_REGISTRY_PASSWORD. Never a flag: flags show in ps.
func registryPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	if !fromStdin {
		return os.Getenv("ZOS_REGISTRY_PASSWORD"), nil
	}
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return "", fmt.Errorf("reading password: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// printImageConfig shows the image configuration saved by import, for
// `zos flist inspect`.
func printImageConfig(w io.Writer, raw []byte) {
	var c oci.ImageConfig
	if err := json.Unmarshal(raw, &c); err != nil {
		fmt.Fprintf(w, "image config: %d bytes, not readable: %v\n", len(raw), err)
		return
	}
	fmt.Fprintf(w, "image: %s %s (%s/%s)\n", c.Source, c.Digest, c.OS, c.Architecture)
	q := func(ss []string) string {
		out := make([]string, len(ss))
		for i, s := range ss {
			out[i] = strconv.Quote(s)
		}
		return "[" + strings.Join(out, " ") + "]"
	}
	if len(c.Entrypoint) > 0 {
		fmt.Fprintf(w, "image entrypoint: %s\n", q(c.Entrypoint))
	}
	if len(c.Cmd) > 0 {
		fmt.Fprintf(w, "image cmd: %s\n", q(c.Cmd))
	}
	for _, e := range c.Env {
		fmt.Fprintf(w, "image env: %s\n", e)
	}
	if c.WorkingDir != "" {
		fmt.Fprintf(w, "image workdir: %s\n", c.WorkingDir)
	}
	if c.User != "" {
		fmt.Fprintf(w, "image user: %s\n", c.User)
	}
	if len(c.ExposedPorts) > 0 {
		fmt.Fprintf(w, "image ports: %s\n", strings.Join(c.ExposedPorts, " "))
	}
	if len(c.Volumes) > 0 {
		fmt.Fprintf(w, "image volumes: %s\n", strings.Join(c.Volumes, " "))
	}
	for _, k := range slices.Sorted(maps.Keys(c.Labels)) {
		fmt.Fprintf(w, "image label: %s=%s\n", k, c.Labels[k])
	}
}
