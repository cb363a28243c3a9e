package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/hub"
	"github.com/zosgrid/zos/hub/hubapi"
	"github.com/zosgrid/zos/key"
)

func newHubCmd() *cobra.Command {
	var (
		listen, blocks, meta, authKeys, adminKeys, publicURL, tmp string
		convert                                                   bool
		maxJobs                                                   int
		cacheMB                                                   int64
	)
	cmd := &cobra.Command{
		Use:     "hub",
		Short:   "Serve flists and their blocks over HTTP, and convert container images",
		GroupID: groupServices,
		Long: `The hub stores encrypted flist blocks and .fl files in two zdb namespaces and serves
them over an HTTP JSON API (see "zos hub --help" subcommands for a client):

  blocks   GET|HEAD /api/v1/block/ID, POST /api/v1/block, POST /api/v1/block/verify,
           and GET /blocks/XX/ID so that http://HUB/blocks is a store URL for mounts
  flists   PUT|GET|DELETE /api/v1/flists/USER/NAME, GET /api/v1/flists/USER,
           GET /api/v1/flist/HASH, PUT|DELETE /api/v1/tags/USER/TAG
  convert  POST /api/v1/convert {"image": ...}, GET /api/v1/convert/JOB (with --convert)
  ops      GET /metrics (Prometheus), GET /healthz, POST /api/v1/admin/gc (--admin-keys)

Reads are public. Writes are signed with the user's ed25519 key (zos key new), timestamped
and replay-protected; a user may only write under its own public key. An upload of a .fl
whose blocks the hub does not hold is refused with the list of missing blocks.

Backends are zdb://[:password@]host:port/namespace (create the namespaces first, e.g.
redis-cli -p 9900 NSNEW hub-blocks) or redis://host:port/db.`,
		Example: `  zos hub --blocks zdb://127.0.0.1:9900/hub-blocks --meta zdb://127.0.0.1:9900/hub-meta --convert
  zos hub upload app.fl --hub http://127.0.0.1:8090 --key me.key --tag app:latest`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			cfg := hub.Config{Blocks: blocks, Meta: meta, Logger: log, EnableConvert: convert, MaxJobs: maxJobs,
				PublicURL: publicURL, TempDir: tmp, CacheBytes: cacheMB << 20}
			if cacheMB == 0 {
				cfg.CacheBytes = -1
			}
			if authKeys != "" {
				keys, err := readAuthorizedKeys(authKeys)
				if err != nil {
					return err
				}
				cfg.AuthorizedKeys = keys
			}
			if adminKeys != "" {
				keys, err := readAuthorizedKeys(adminKeys)
				if err != nil {
					return err
				}
				cfg.AdminKeys = keys
			}
			l, err := net.Listen("tcp", listen)
			if err != nil {
				return fmt.Errorf("hub: %w", err)
			}
			if cfg.PublicURL == "" {
				cfg.PublicURL = "http://" + l.Addr().String()
			}
			srv, err := hub.New(ctx, cfg)
			if err != nil {
				l.Close()
				return err
			}
			defer srv.Close()
			hs := &http.Server{Handler: srv.Handler(), ReadHeaderTimeout: 10 * time.Second}
			errc := make(chan error, 1)
			go func() { errc <- hs.Serve(l) }()
			log.Info("hub listening", "addr", l.Addr().String(), "public_url", cfg.PublicURL, "convert", convert)
			select {
			case err := <-errc:
				return err
			case <-ctx.Done():
			}
			sctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			defer cancel()
			return hs.Shutdown(sctx)
		},
	}
	f := cmd.Flags()
	f.StringVar(&listen, "listen", "127.0.0.1:8090", "address to serve HTTP on")
	f.StringVar(&blocks, "blocks", "zdb://127.0.0.1:9900/hub-blocks", "backend for blocks")
	f.StringVar(&meta, "meta", "zdb://127.0.0.1:9900/hub-meta", "backend for .fl files and user indexes")
	f.StringVar(&authKeys, "authorized-keys", "", "file of public keys (one a line) allowed to write; default: any key, each under its own name")
	f.StringVar(&adminKeys, "admin-keys", "", "file of public keys (one a line) allowed to run garbage collection (zos hub gc)")
	f.BoolVar(&convert, "convert", false, "enable image conversion jobs (the hub pulls from registries)")
	f.IntVar(&maxJobs, "max-jobs", 2, "conversions running at once")
	f.StringVar(&publicURL, "public-url", "", "URL mounts use to reach this hub (saved in converted flists); default http://LISTEN")
	f.StringVar(&tmp, "tmp", "", "directory for uploads and conversion spools (default: system temp)")
	f.Int64Var(&cacheMB, "cache-mb", hub.DefaultCache>>20, "MiB of memory for recently served blocks (0 disables)")
	cmd.AddCommand(newHubUploadCmd(), newHubConvertCmd(), newHubTagCmd(), newHubLsCmd(), newHubGCCmd())
	return cmd
}

func readAuthorizedKeys(path string) ([]key.Public, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var keys []key.Public
	for i, line := range strings.Split(string(b), "\n") {
		line = strings.TrimSpace(line)
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, err := key.ParsePublic(line)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: %w", path, i+1, err)
		}
		keys = append(keys, k)
	}
	if len(keys) == 0 {
		return nil, fmt.Errorf("%s: no keys", path)
	}
	return keys, nil
}

// hubClient is the CLI side of the hub API.
type hubClient struct {
	base string
	key  key.Private
}

func (c hubClient) user() string { return hubapi.User(c.key.Public()) }

// call sends a request (signed when the client has a key) and decodes a
// JSON answer into out; a non-2xx answer becomes an error with the hub's message.
func (c hubClient) call(ctx context.Context, method, path string, body []byte, out any) error {
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, bytes.NewReader(body))
	if err != nil {
		return err
	}
	if !c.key.IsZero() {
		if err := hubapi.SignRequest(req, body, c.key, time.Now()); err != nil {
			return err
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	if err != nil {
		return err
	}
	if resp.StatusCode/100 != 2 {
		var e struct {
			Error        string `json:"error"`
			MissingCount int    `json:"missing_count"`
		}
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			if e.MissingCount > 0 {
				return fmt.Errorf("%s (%d blocks missing: pack with --store hub+%s?key=KEYFILE first)", e.Error, e.MissingCount, c.base)
			}
			return errors.New(e.Error)
		}
		return fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil && len(b) > 0 {
		return json.Unmarshal(b, out)
	}
	return nil
}

func hubClientFlags(cmd *cobra.Command, base, keyFile *string, needKey bool) {
	cmd.Flags().StringVar(base, "hub", "http://127.0.0.1:8090", "hub URL")
	cmd.Flags().StringVar(keyFile, "key", "", "private key file to sign with (zos key new)")
	if needKey {
		cmd.MarkFlagRequired("key")
	}
}

func openHubClient(base, keyFile string) (hubClient, error) {
	c := hubClient{base: strings.TrimRight(base, "/")}
	if keyFile != "" {
		k, err := key.Load(keyFile)
		if err != nil {
			return c, err
		}
		c.key = k
	}
	return c, nil
}

func newHubUploadCmd() *cobra.Command {
	var base, keyFile, name, tag string
	cmd := &cobra.Command{
		Use:   "upload X.fl --key KEYFILE [--name NAME] [--tag TAG]",
		Short: "Upload a .fl to a hub (its blocks must already be there)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openHubClient(base, keyFile)
			if err != nil {
				return err
			}
			data, err := os.ReadFile(args[0])
			if err != nil {
				return err
			}
			if name == "" {
				name = hub.SafeName(baseName(args[0]))
			}
			var res hub.PutResult
			if err := c.call(cmd.Context(), "PUT", "/api/v1/flists/"+c.user()+"/"+name, data, &res); err != nil {
				return fmt.Errorf("hub upload: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "uploaded %s as %s/%s (hash %s)\n", args[0], c.user(), res.Name, res.Hash)
			if tag != "" {
				body, _ := json.Marshal(hub.TagRequest{Hash: res.Hash})
				if err := c.call(cmd.Context(), "PUT", "/api/v1/tags/"+c.user()+"/"+tag, body, nil); err != nil {
					return fmt.Errorf("hub tag: %w", err)
				}
				fmt.Fprintf(cmd.OutOrStdout(), "tagged %s -> %s\n", tag, res.Hash)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "mount store: %s%s\n", c.base, hubapi.StorePath)
			return nil
		},
	}
	hubClientFlags(cmd, &base, &keyFile, true)
	cmd.Flags().StringVar(&name, "name", "", "name on the hub (default: the file name)")
	cmd.Flags().StringVar(&tag, "tag", "", "also point this tag at the upload (e.g. app:latest)")
	return cmd
}

// isLoopbackURL says whether a http URL's host is a loopback address or
// localhost, where plain HTTP does not leave the machine.
func isLoopbackURL(raw string) bool {
	u, err := url.Parse(raw)
	if err != nil {
		return false
	}
	if u.Hostname() == "localhost" {
		return true
	}
	ip := net.ParseIP(u.Hostname())
	return ip != nil && ip.IsLoopback()
}

func baseName(p string) string {
	if i := strings.LastIndexByte(p, '/'); i >= 0 {
		return p[i+1:]
	}
	return p
}

func newHubConvertCmd() *cobra.Command {
	var base, keyFile, name, platform, username string
	var wait, passwordStdin bool
	cmd := &cobra.Command{
		Use:   "convert IMAGE --key KEYFILE [--name NAME] [--wait]",
		Short: "Ask a hub to convert a registry image into an flist",
		Long: `Convert asks a hub to pull a registry image and turn it into an flist named
NAME under your key. For a private image give --username and --password-stdin (or
ZOS_REGISTRY_PASSWORD): they travel in the signed request, are used for that pull only
and are never stored or logged by the hub. The hub never pulls with its own credentials.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openHubClient(base, keyFile)
			if err != nil {
				return err
			}
			password, err := registryPassword(cmd, passwordStdin)
			if err != nil {
				return fmt.Errorf("hub convert: %w", err)
			}
			if password != "" && username == "" {
				return errors.New("hub convert: a registry password needs --username")
			}
			if username != "" && !strings.HasPrefix(c.base, "https://") && !isLoopbackURL(c.base) {
				return fmt.Errorf("hub convert: refusing to send registry credentials to %s over plain HTTP", c.base)
			}
			body, _ := json.Marshal(hub.ConvertRequest{Image: args[0], Name: name, Platform: platform, Username: username, Password: password})
			var st hub.JobStatus
			if err := c.call(cmd.Context(), "POST", "/api/v1/convert", body, &st); err != nil {
				return fmt.Errorf("hub convert: %w", err)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "job %s queued\n", st.ID)
			if !wait {
				return nil
			}
			last := ""
			for st.State == "queued" || st.State == "running" {
				select {
				case <-cmd.Context().Done():
					return cmd.Context().Err()
				case <-time.After(500 * time.Millisecond):
				}
				if err := c.call(cmd.Context(), "GET", "/api/v1/convert/"+st.ID, nil, &st); err != nil {
					return err
				}
				line := fmt.Sprintf("%s %s %d/%d", st.State, st.Phase, st.Done, st.Total)
				if line != last {
					fmt.Fprintln(cmd.ErrOrStderr(), line)
					last = line
				}
			}
			if st.State != "done" {
				return fmt.Errorf("hub convert: %s", st.Error)
			}
			fmt.Fprintf(out, "converted %s to %s/%s (hash %s)\n", args[0], st.User, st.Name, st.Hash)
			return nil
		},
	}
	hubClientFlags(cmd, &base, &keyFile, true)
	cmd.Flags().StringVar(&name, "name", "", "flist name (default: from the image reference)")
	cmd.Flags().StringVar(&platform, "platform", "", "os/arch[/variant] to pick from a multi-arch image (default: the hub's)")
	cmd.Flags().BoolVar(&wait, "wait", false, "wait for the job and print its progress")
	cmd.Flags().StringVar(&username, "username", "", "registry user name for a private image")
	cmd.Flags().BoolVar(&passwordStdin, "password-stdin", false, "read the registry password from the first line of stdin")
	return cmd
}

func newHubTagCmd() *cobra.Command {
	var base, keyFile, name, hash string
	var del bool
	cmd := &cobra.Command{
		Use:   "tag TAG --key KEYFILE (--name NAME | --hash HASH | --delete)",
		Short: "Point a tag (app:latest) at a version of a flist",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			c, err := openHubClient(base, keyFile)
			if err != nil {
				return err
			}
			path := "/api/v1/tags/" + c.user() + "/" + args[0]
			if del {
				return c.call(cmd.Context(), "DELETE", path, nil, nil)
			}
			body, _ := json.Marshal(hub.TagRequest{Name: name, Hash: hash})
			var res map[string]string
			if err := c.call(cmd.Context(), "PUT", path, body, &res); err != nil {
				return fmt.Errorf("hub tag: %w", err)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%s -> %s\n", args[0], res["hash"])
			return nil
		},
	}
	hubClientFlags(cmd, &base, &keyFile, true)
	cmd.Flags().StringVar(&name, "name", "", "flist name the tag points to")
	cmd.Flags().StringVar(&hash, "hash", "", "flist content hash the tag points to")
	cmd.Flags().BoolVar(&del, "delete", false, "remove the tag")
	return cmd
}

func newHubLsCmd() *cobra.Command {
	var base, keyFile, user string
	cmd := &cobra.Command{
		Use:   "ls [--user HEX | --key KEYFILE]",
		Short: "List a user's flists and tags on a hub",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := openHubClient(base, keyFile)
			if err != nil {
				return err
			}
			if user == "" {
				if c.key.IsZero() {
					return errors.New("hub ls: give --user HEX or --key KEYFILE")
				}
				user = c.user()
			}
			c.key = key.Private{} // reads are public
			var res hub.ListResponse
			if err := c.call(cmd.Context(), "GET", "/api/v1/flists/"+user, nil, &res); err != nil {
				return fmt.Errorf("hub ls: %w", err)
			}
			out := cmd.OutOrStdout()
			for _, e := range res.Flists {
				fmt.Fprintf(out, "%s\t%s\t%d\t%s\n", e.Name, e.Hash, e.Size, e.Uploaded.Format(time.RFC3339))
			}
			for t, h := range res.Tags {
				fmt.Fprintf(out, "%s\t-> %s\n", t, h)
			}
			return nil
		},
	}
	hubClientFlags(cmd, &base, &keyFile, false)
	cmd.Flags().StringVar(&user, "user", "", "user (hex public key) to list")
	return cmd
}

func newHubGCCmd() *cobra.Command {
	var base, keyFile string
	var grace time.Duration
	var dryRun bool
	cmd := &cobra.Command{
		Use:   "gc --key ADMINKEY [--grace 1h] [--dry-run]",
		Short: "Delete the blocks no flist on a hub references any more",
		Long: `Garbage collection deletes the .fl bodies no name or tag points to, then the blocks
no remaining flist references and that are older than --grace (zdb write time): a packer
uploads blocks before its .fl, so young blocks may belong to a flist on its way. Uploads
during the collection are safe. The hub must run with --admin-keys listing the key, and
keep its blocks in zdb.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			c, err := openHubClient(base, keyFile)
			if err != nil {
				return err
			}
			body, _ := json.Marshal(hub.GCRequest{Grace: grace.String(), DryRun: dryRun})
			var res hub.GCResult
			if err := c.call(cmd.Context(), "POST", "/api/v1/admin/gc", body, &res); err != nil {
				return fmt.Errorf("hub gc: %w", err)
			}
			verb := "deleted"
			if res.DryRun {
				verb = "would delete"
			}
			fmt.Fprintf(cmd.OutOrStdout(), "%d live flists, %d dead flists, %d unfinished upload parts\n", res.Flists, res.DeadFlists, res.OrphanParts)
			fmt.Fprintf(cmd.OutOrStdout(), "%d blocks: %d live, %d younger than %s, %d in use meanwhile; %s %d (%s) in %.1fs\n",
				res.Blocks, res.LiveBlocks, res.RecentBlocks, res.Grace, res.KeptBlocks, verb, res.DeletedBlocks, human(res.DeletedBytes), res.Seconds)
			return nil
		},
	}
	hubClientFlags(cmd, &base, &keyFile, true)
	cmd.Flags().DurationVar(&grace, "grace", hub.DefaultGCGrace, "keep unreferenced blocks younger than this")
	cmd.Flags().BoolVar(&dryRun, "dry-run", false, "count what would be deleted, delete nothing")
	return cmd
}
