package main

import (
	"encoding/json"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"path/filepath"
	"time"

	"github.com/zosgrid/zos/internal/atomicfile"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/network/overlay"
)

// overlayInfo is what a running overlay publishes for the other commands.
type overlayInfo struct {
	Address   netip.Addr     `json:"address"`
	Subnet    netip.Prefix   `json:"subnet"`
	PublicKey string         `json:"public_key"`
	MTU       int            `json:"mtu"`
	Listen    []string       `json:"listen"`
	Peers     []overlay.Peer `json:"peers"`
	Updated   time.Time      `json:"updated"`
}

func overlayInfoPath(state string) string { return filepath.Join(state, "overlay.json") }

func newOverlayCmd(f *networkFlags) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "overlay",
		Short: "The planetary overlay (embedded Yggdrasil) and workload overlay addresses",
		Long: `The node joins the planetary IPv6 overlay with its ed25519 identity: its overlay
address (200::/7) and a /64 routed to it derive from the node key. Workloads
get addresses from that /64; their traffic crosses the overlay end-to-end
encrypted. Run "overlay run" inside the node's host namespace.`,
	}

	var keyFile, tunName string
	var listen, peers, discover []string
	var discoverPort uint16
	run := &cobra.Command{
		Use:   "run --key FILE [--listen URI]... [--peer URI]...",
		Short: "Run the overlay node until SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := key.Load(keyFile)
			if err != nil {
				return err
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			n, err := overlay.Start(overlay.Config{Key: k, HostNS: nsPath(f.hostNS), Listen: listen, Peers: peers,
				Discover: discover, DiscoverPort: discoverPort, TunName: tunName, Logger: log})
			if err != nil {
				return err
			}
			defer n.Close()
			if err := os.MkdirAll(f.state, 0o700); err != nil {
				return err
			}
			// The other commands read what the overlay publishes here; it is
			// refreshed so that status shows the current peers.
			publish := func() error {
				info := overlayInfo{Address: n.Address(), Subnet: n.Subnet(), PublicKey: n.PublicKey(), MTU: n.MTU(),
					Listen: n.ListenAddrs(), Peers: n.Peers(), Updated: time.Now().UTC()}
				b, _ := json.Marshal(info)
				return atomicfile.Write(overlayInfoPath(f.state), b, 0o600)
			}
			if err := publish(); err != nil {
				return err
			}
			defer os.Remove(overlayInfoPath(f.state))
			log.Info("overlay running", "address", n.Address(), "subnet", n.Subnet(), "listen", n.ListenAddrs())
			fmt.Fprintf(cmd.OutOrStdout(), "overlay address %s subnet %s\n", n.Address(), n.Subnet())
			tick := time.NewTicker(5 * time.Second)
			defer tick.Stop()
			for {
				select {
				case <-cmd.Context().Done():
					return nil
				case <-tick.C:
					if err := publish(); err != nil {
						log.Warn("overlay state not written", "err", err)
					}
				}
			}
		},
	}
	run.Flags().StringVar(&keyFile, "key", "", "node identity key file (zos key new)")
	run.Flags().StringArrayVar(&listen, "listen", nil, "URI to accept peerings on, e.g. tcp://0.0.0.0:9943 (repeatable)")
	run.Flags().StringArrayVar(&peers, "peer", nil, "peer URI, e.g. tcp://198.51.100.1:9943 (repeatable)")
	run.Flags().StringArrayVar(&discover, "discover", nil, "find peers on the local link of interfaces matching this regexp, e.g. eth0 (repeatable)")
	run.Flags().Uint16Var(&discoverPort, "discover-port", 0, "TCP port for link-local peerings (0 = any; open it in the wall)")
	run.Flags().StringVar(&tunName, "tun", overlay.DefaultTun, "overlay interface name")
	run.MarkFlagRequired("key")

	readInfo := func() (overlayInfo, error) {
		var info overlayInfo
		b, err := os.ReadFile(overlayInfoPath(f.state))
		if err != nil {
			return info, fmt.Errorf("overlay not running here (no %s): %w", overlayInfoPath(f.state), err)
		}
		return info, json.Unmarshal(b, &info)
	}
	var ifname string
	attach := &cobra.Command{
		Use:   "attach NETNS",
		Short: "Give a workload namespace an overlay address from this node's /64 and print it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			info, err := readInfo()
			if err != nil {
				return err
			}
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			a, err := m.AttachOverlay(cmd.Context(), info.Subnet, nsPath(args[0]), ifname, info.MTU)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), a.Addr())
			return nil
		},
	}
	attach.Flags().StringVar(&ifname, "ifname", "ygg0", "interface name inside the workload")
	detach := &cobra.Command{
		Use:   "detach NETNS",
		Short: "Remove a workload's overlay address",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			return m.DetachOverlay(cmd.Context(), nsPath(args[0]))
		},
	}
	status := &cobra.Command{
		Use:   "status",
		Short: "Print the running overlay's address, subnet, listeners and peers (JSON, refreshed every 5s)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			info, err := readInfo()
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), info)
		},
	}
	cmd.AddCommand(run, attach, detach, status)
	return cmd
}
