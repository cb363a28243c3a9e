package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/sync/errgroup"
	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/pack"
	"github.com/zosgrid/zos/flist/store"
	"github.com/zosgrid/zos/key"
)

func newFlistCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "flist",
		Short:   "Pack, mount, sign and check flists (deduplicated, signed, lazily mounted filesystems)",
		GroupID: groupTools,
		Long: `An flist is a small metadata file (.fl, rfs-compatible SQLite) describing a filesystem
tree; file contents live as encrypted 512 KiB blocks in a content-addressed store and are
fetched on first read, verified, and deduplicated across every flist.

Stores are URLs: dir:///path, zdb://[user[:pass]@]host[:port][/namespace],
http(s)://host/path (read-only). Prefix one with a hex range of the block id's first byte,
"00-7f=URL", to shard; several stores for the same range replicate writes and fail over
on reads.`,
	}
	cmd.AddCommand(newFlistPackCmd(), newFlistUnpackCmd(), newFlistInspectCmd(), newFlistVerifyCmd(),
		newFlistSignCmd(), newFlistTagCmd(), newFlistMountCmd(), newFlistUmountCmd(),
		newFlistImportCmd()) // flist_import.go (branch hub)
	return cmd
}

func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

func human(n int64) string {
	const u = 1024
	if n < u {
		return fmt.Sprintf("%d B", n)
	}
	f, i := float64(n), 0
	for f >= u && i < 4 {
		f /= u
		i++
	}
	return fmt.Sprintf("%.1f %ciB", f, "BKMGT"[i])
}

func newFlistPackCmd() *cobra.Command {
	var (
		out, imageConfig string
		dest             packFlags
	)
	cmd := &cobra.Command{
		Use:   "pack DIR|TAR|- -o OUT.fl --store URL...",
		Short: "Pack a directory or a tar stream into an flist, uploading only missing blocks",
		Long: `Pack walks DIR (or reads the tar file TAR, or a tar stream on stdin with "-"), cuts
files into 512 KiB blocks, encrypts them (BLAKE2b-256, snappy, AES-256-GCM as rfs does),
uploads in parallel only the blocks the store lacks, and writes OUT.fl. It keeps file
types, modes, owners, times, hard links and xattrs (security.capability included).
Store passwords are removed from the routes saved in the flist unless --no-strip-password.`,
		Example: `  zos flist pack ./rootfs -o app.fl --store dir:///var/cache/blocks
  docker export c | zos flist pack - -o app.fl --store zdb://user:secret@hub:9900/blocks
  zos flist pack rootfs.tar -o app.fl --store 00-7f=dir:///a --store 80-ff=dir:///b`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			if out == "" {
				return errors.New("flist pack: -o OUT.fl is required")
			}
			opts, r, err := dest.options("flist pack")
			if err != nil {
				return err
			}
			defer r.Close()
			if imageConfig != "" {
				if opts.ImageConfig, err = os.ReadFile(imageConfig); err != nil {
					return fmt.Errorf("flist pack: %w", err)
				}
			}
			stderr := cmd.ErrOrStderr()
			if isTerminal(stderr) {
				start := time.Now()
				opts.Progress = func(s pack.Stats) {
					rate := float64(s.Bytes) / time.Since(start).Seconds()
					fmt.Fprintf(stderr, "\r\033[K%d files, %s read (%s/s), %d blocks, %d new (%s uploaded)",
						s.Files, human(s.Bytes), human(int64(rate)), s.Blocks, s.NewBlocks, human(s.NewBytes))
				}
			}
			var st pack.Stats
			src := args[0]
			fi, statErr := os.Stat(src)
			switch {
			case src == "-":
				st, err = pack.Tar(ctx, cmd.InOrStdin(), out, opts)
			case statErr != nil:
				return fmt.Errorf("flist pack: %w", statErr)
			case fi.IsDir():
				st, err = pack.Dir(ctx, src, out, opts)
			default:
				f, ferr := os.Open(src)
				if ferr != nil {
					return fmt.Errorf("flist pack: %w", ferr)
				}
				st, err = pack.Tar(ctx, f, out, opts)
				f.Close()
			}
			if opts.Progress != nil {
				fmt.Fprintln(stderr)
			}
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			fmt.Fprintf(w, "packed %s: %d files, %d dirs, %d symlinks, %d hard links, %d special\n", out, st.Files, st.Dirs, st.Symlinks, st.HardLinks, st.Special)
			fmt.Fprintf(w, "content %s in %d blocks (%d unique), %d new blocks uploaded (%s), dedup ratio %.2f\n",
				human(st.Bytes), st.Blocks, st.UniqueBlocks, st.NewBlocks, human(st.NewBytes), st.DedupRatio())
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVarP(&out, "out", "o", "", "flist file to write")
	f.StringVar(&imageConfig, "image-config", "", "OCI image config JSON file to save in the flist")
	dest.addFlags(cmd, "")
	return cmd
}

// packFlags are the options of the commands that write an flist (pack,
// import): the stores its blocks go to, the tags saved in it, and how many
// workers encode and upload.
type packFlags struct {
	stores, tags []string
	noStrip      bool
	workers      int
}

// addFlags registers the options on cmd; storeNote is appended to the
// --store help.
func (p *packFlags) addFlags(cmd *cobra.Command, storeNote string) {
	f := cmd.Flags()
	f.StringArrayVarP(&p.stores, "store", "s", nil, "block store URL, optionally prefixed by a range xx-yy= (repeatable)"+storeNote)
	f.StringArrayVarP(&p.tags, "tag", "t", nil, "tag KEY=VALUE to save in the flist (repeatable; rfs keys: version, description, author)")
	f.BoolVar(&p.noStrip, "no-strip-password", false, "keep store passwords in the routes saved in the flist")
	f.IntVar(&p.workers, "workers", 0, "parallel encode/upload workers (0: 4 per CPU)")
	cmd.MarkFlagRequired("store")
}

// options opens the stores and returns the pack options that write to
// them; the caller closes the router. what names the command in errors.
func (p *packFlags) options(what string) (pack.Options, *store.Router, error) {
	tags := map[string]string{}
	for _, t := range p.tags {
		k, v, ok := strings.Cut(t, "=")
		if !ok || k == "" {
			return pack.Options{}, nil, fmt.Errorf("%s: --tag wants KEY=VALUE, got %q", what, t)
		}
		tags[k] = v
	}
	r, err := store.Open(p.stores, store.Options{})
	if err != nil {
		return pack.Options{}, nil, fmt.Errorf("%s: %w", what, err)
	}
	return pack.Options{Store: r, Routes: r.Routes(!p.noStrip), Workers: p.workers, Tags: tags}, r, nil
}

// openFlist opens an flist and, unless insecure, checks its signatures.
func openFlist(ctx context.Context, path string, trust []string, insecure bool, warn io.Writer) (*flist.FList, error) {
	f, err := flist.Open(ctx, path)
	if err != nil {
		return nil, err
	}
	if insecure {
		fmt.Fprintln(warn, "warning: --insecure: flist signatures are not checked")
		return f, nil
	}
	if len(trust) == 0 {
		f.Close()
		return nil, errors.New("refusing an flist without --trust PUBKEY (or --insecure to skip signature checks)")
	}
	var keys []key.Public
	for _, t := range trust {
		k, err := parseTrust(t)
		if err != nil {
			f.Close()
			return nil, err
		}
		keys = append(keys, k)
	}
	if _, err := f.Verify(ctx, keys); err != nil {
		f.Close()
		return nil, fmt.Errorf("refusing %s: %w", path, err)
	}
	return f, nil
}

// parseTrust accepts a public key ("ed25519:hex") or a file holding one.
func parseTrust(s string) (key.Public, error) {
	if k, err := key.ParsePublic(s); err == nil {
		return k, nil
	}
	b, err := os.ReadFile(s)
	if err != nil {
		return key.Public{}, fmt.Errorf("--trust %q is neither a public key nor a readable file", s)
	}
	return key.ParsePublic(string(b))
}

// flistInput holds the options of the commands that read an flist and its
// blocks (unpack, mount, verify): the stores, and — when signed — whose
// signatures to trust.
type flistInput struct {
	signed        bool // check signatures (verify checks blocks, not signers)
	stores, trust []string
	insecure      bool
}

// addFlags registers --store and, when signed, --trust and --insecure.
func (in *flistInput) addFlags(cmd *cobra.Command) {
	fl := cmd.Flags()
	fl.StringArrayVarP(&in.stores, "store", "s", nil, "block store URL (default: the flist's routes)")
	if in.signed {
		fl.StringArrayVar(&in.trust, "trust", nil, "public key (ed25519:hex, or a file) whose signature is accepted (repeatable)")
		fl.BoolVar(&in.insecure, "insecure", false, "accept unsigned or untrusted flists")
	}
}

// open opens the flist at path (checking its signatures when signed) and the
// stores its blocks come from; the caller closes both.
func (in *flistInput) open(ctx context.Context, path string, warn io.Writer) (*flist.FList, *store.Router, error) {
	var f *flist.FList
	var err error
	if in.signed {
		f, err = openFlist(ctx, path, in.trust, in.insecure, warn)
	} else {
		f, err = flist.Open(ctx, path)
	}
	if err != nil {
		return nil, nil, err
	}
	r, err := openStores(ctx, f, in.stores)
	if err != nil {
		f.Close()
		return nil, nil, err
	}
	return f, r, nil
}

// withTree opens the flist at path and its stores (see open), reads its
// tree and runs fn with them, then closes both.
func (in *flistInput) withTree(cmd *cobra.Command, path string, fn func(ctx context.Context, tree *flist.Tree, blocks *store.Router) error) error {
	ctx := cmd.Context()
	f, r, err := in.open(ctx, path, cmd.ErrOrStderr())
	if err != nil {
		return err
	}
	defer f.Close()
	defer r.Close()
	tree, err := f.Tree(ctx)
	if err != nil {
		return err
	}
	return fn(ctx, tree, r)
}

// openStores opens --store URLs, or else the flist's own routes.
func openStores(ctx context.Context, f *flist.FList, urls []string) (*store.Router, error) {
	if len(urls) > 0 {
		return store.Open(urls, store.Options{})
	}
	routes, err := f.Routes(ctx)
	if err != nil {
		return nil, err
	}
	if len(routes) == 0 {
		return nil, errors.New("the flist has no routes: give --store URL")
	}
	return store.OpenRoutes(routes, store.Options{})
}

func newFlistUnpackCmd() *cobra.Command {
	var (
		src     = flistInput{signed: true}
		noOwner bool
		workers int
	)
	cmd := &cobra.Command{
		Use:   "unpack X.fl DIR",
		Short: "Write the whole tree of an flist into an empty directory (parallel, verified)",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return src.withTree(cmd, args[0], func(ctx context.Context, tree *flist.Tree, blocks *store.Router) error {
				return pack.Unpack(ctx, tree, blocks, args[1], pack.UnpackOptions{Workers: workers, PreserveOwner: !noOwner && os.Geteuid() == 0})
			})
		},
	}
	src.addFlags(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&noOwner, "no-owner", false, "do not chown to the recorded owners (default when not root)")
	fl.IntVar(&workers, "workers", 0, "parallel downloads (0: 4 per CPU)")
	return cmd
}

func newFlistInspectCmd() *cobra.Command {
	var summary, showConfig bool
	cmd := &cobra.Command{
		Use:   "inspect X.fl",
		Short: "Show an flist's tree, sizes, tags, routes, hash and signatures",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			f, err := flist.Open(ctx, args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			if showConfig {
				cfg, err := f.ImageConfig(ctx)
				if err != nil {
					return err
				}
				_, err = cmd.OutOrStdout().Write(append(cfg, '\n'))
				return err
			}
			tree, err := f.Tree(ctx)
			if err != nil {
				return err
			}
			w := cmd.OutOrStdout()
			var files, blocks int
			var bytes int64
			tree.Walk(func(p string, in *flist.Inode) error {
				if in.IsRegular() {
					files++
					bytes += int64(in.Size)
					blocks += len(tree.Blocks[in.Ino])
				}
				if summary {
					return nil
				}
				line := fmt.Sprintf("%s %5d:%-5d %10d %s /%s", in.FileMode(), in.UID, in.GID, in.Size, unixTime(in.Mtime), p)
				if in.IsSymlink() {
					line += " -> " + string(in.Data)
				}
				if t, ok := tree.HardLinks[in.Ino]; ok {
					line += " (hard link to inode " + fmt.Sprint(t) + ")"
				}
				for _, x := range tree.Xattrs[in.Ino] {
					line += fmt.Sprintf(" [%s]", x.Name)
				}
				fmt.Fprintln(w, line)
				return nil
			})
			h, err := f.Hash(ctx)
			if err != nil {
				return err
			}
			fmt.Fprintf(w, "hash: %s\n", h)
			fmt.Fprintf(w, "entries: %d, files: %d, content: %s in %d blocks\n", len(tree.Inodes), files, human(bytes), blocks)
			tags, _ := f.Tags(ctx)
			for _, k := range slices.Sorted(maps.Keys(tags)) {
				fmt.Fprintf(w, "tag: %s = %s\n", k, tags[k])
			}
			routes, _ := f.Routes(ctx)
			for _, r := range routes {
				fmt.Fprintf(w, "route: %02x-%02x %s\n", r.Start, r.End, r.URL)
			}
			if cfg, err := f.ImageConfig(ctx); err == nil {
				printImageConfig(w, cfg)
			}
			good, bad, err := f.ValidSigners(ctx)
			if err != nil {
				return err
			}
			if len(good)+len(bad) == 0 {
				fmt.Fprintln(w, "signatures: none (unsigned)")
			}
			for _, k := range good {
				fmt.Fprintf(w, "signature: %s valid\n", k)
			}
			for _, k := range bad {
				fmt.Fprintf(w, "signature: %s INVALID (metadata changed after signing)\n", k)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&summary, "summary", false, "skip the tree listing")
	cmd.Flags().BoolVar(&showConfig, "config", false, "print only the image configuration (JSON) saved by zos flist import")
	return cmd
}

func newFlistVerifyCmd() *cobra.Command {
	var (
		src     flistInput
		workers int
	)
	cmd := &cobra.Command{
		Use:   "verify X.fl",
		Short: "Check that every block of an flist is present and intact in the store",
		Long: `Verify fetches every distinct block of the flist from the store (--store, or the flist's
routes), checks its id, decrypts it and checks its key. It prints each missing or corrupt
block with a file that uses it, and fails if there is any.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return src.withTree(cmd, args[0], func(ctx context.Context, tree *flist.Tree, r *store.Router) error {
				type use struct {
					b    flist.Block
					path string
				}
				uses := map[flist.ID]use{}
				tree.Walk(func(p string, in *flist.Inode) error {
					for _, b := range tree.Blocks[in.Ino] {
						if _, ok := uses[b.ID]; !ok {
							uses[b.ID] = use{b, "/" + p}
						}
					}
					return nil
				})
				if workers <= 0 {
					workers = 16
				}
				g, gctx := errgroup.WithContext(ctx)
				g.SetLimit(workers)
				var mu sync.Mutex
				var bad atomic.Int64
				w := cmd.OutOrStdout()
				for _, u := range uses {
					g.Go(func() error {
						data, err := r.Get(gctx, u.b.ID)
						if err == nil {
							_, err = flist.DecodeBlock(u.b, data)
						}
						if err != nil {
							if gctx.Err() != nil {
								return gctx.Err()
							}
							bad.Add(1)
							mu.Lock()
							fmt.Fprintf(w, "BAD block %s (%s): %v\n", u.b.ID, u.path, err)
							mu.Unlock()
						}
						return nil
					})
				}
				if err := g.Wait(); err != nil {
					return err
				}
				fmt.Fprintf(w, "%d blocks checked, %d bad\n", len(uses), bad.Load())
				if bad.Load() > 0 {
					return fmt.Errorf("flist verify: %d of %d blocks missing or corrupt", bad.Load(), len(uses))
				}
				return nil
			})
		},
	}
	src.addFlags(cmd)
	cmd.Flags().IntVar(&workers, "workers", 16, "parallel block checks")
	return cmd
}

func newFlistSignCmd() *cobra.Command {
	var keyFile string
	cmd := &cobra.Command{
		Use:   "sign X.fl --key KEYFILE",
		Short: "Sign an flist's metadata hash with an ed25519 key (zos key new)",
		Long: `Sign adds an ed25519 signature over the canonical hash of all the flist's metadata
(every table, ordered) to the flist itself; several keys may sign. mount and unpack with
--trust PUBKEY accept the flist only if a trusted key signed this exact hash. The hash
printed is what deployments reference.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			priv, err := key.Load(keyFile)
			if err != nil {
				return err
			}
			h, err := flist.Sign(cmd.Context(), args[0], priv)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed %s by %s\nhash: %s\n", args[0], priv.Public(), h)
			return nil
		},
	}
	cmd.Flags().StringVarP(&keyFile, "key", "k", "", "private key file")
	cmd.MarkFlagRequired("key")
	return cmd
}

func newFlistTagCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "tag X.fl [KEY=VALUE | KEY=]...",
		Short: "List, set or delete (KEY=) tags; changing tags removes signatures",
		Args:  cobra.MinimumNArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			ctx := cmd.Context()
			w := cmd.OutOrStdout()
			if len(args) > 1 {
				tags := map[string]string{}
				for _, a := range args[1:] {
					k, v, ok := strings.Cut(a, "=")
					if !ok || k == "" {
						return fmt.Errorf("flist tag: want KEY=VALUE or KEY=, got %q", a)
					}
					tags[k] = v
				}
				n, err := flist.SetTags(ctx, args[0], tags)
				if err != nil {
					return err
				}
				if n > 0 {
					fmt.Fprintf(cmd.ErrOrStderr(), "removed %d signature(s): the metadata changed, sign again\n", n)
				}
			}
			f, err := flist.Open(ctx, args[0])
			if err != nil {
				return err
			}
			defer f.Close()
			tags, err := f.Tags(ctx)
			if err != nil {
				return err
			}
			for _, k := range slices.Sorted(maps.Keys(tags)) {
				fmt.Fprintf(w, "%s=%s\n", k, tags[k])
			}
			return nil
		},
	}
	return cmd
}

func unixTime(sec int64) string { return time.Unix(sec, 0).UTC().Format("2006-01-02 15:04") }
