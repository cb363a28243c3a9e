package main

import (
	"encoding/json"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/network"
	"github.com/zosgrid/zos/network/wg"
)

// networkFlags are shared by every `zos network` subcommand.
type networkFlags struct {
	hostNS string
	prefix string
	state  string
}

func (f *networkFlags) manager(cmd *cobra.Command) (*network.Manager, error) {
	self, err := os.Executable()
	if err != nil {
		return nil, fmt.Errorf("find own binary: %w", err)
	}
	return network.New(network.Config{
		HostNS:   nsPath(f.hostNS),
		Prefix:   f.prefix,
		StateDir: f.state,
		Devices:  network.Exec{Path: self, Args: []string{"network", "device"}},
		Logger:   slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: slog.LevelWarn})),
	})
}

// nsPath accepts a namespace name (as `ip netns` shows it) or a path.
func nsPath(s string) string {
	if s == "" || strings.Contains(s, "/") {
		return s
	}
	return "/var/run/netns/" + s
}

func newNetworkCmd() *cobra.Command {
	f := &networkFlags{}
	cmd := &cobra.Command{
		Use:     "network",
		Short:   "Private networks (WireGuard), the planetary overlay and the network wall",
		GroupID: groupServices,
		Long: `Manage this node's networks.

A private network connects workloads on several nodes over WireGuard. Each node
applies its part of the network from a JSON spec:

  {"name": "net1", "ip_range": "10.20.0.0/16", "subnet": "10.20.1.0/24",
   "wireguard_private_key": "<base64>", "wireguard_listen_port": 51820,
   "peers": [{"subnet": "10.20.2.0/24", "wireguard_public_key": "<base64>",
              "allowed_ips": ["10.20.2.0/24"], "endpoint": "198.51.100.2:51820"}]}

Each network gets a namespace n-<id> with a bridge for local workloads, a
userspace WireGuard device (its UDP socket stays in the host namespace) and NAT
to the internet through the node's DMZ namespace. Nothing from the internet
reaches a network except through WireGuard. A hidden node (behind NAT) lists
an access node with an endpoint; the access node lists the hidden node
without one, and forwards between its peers.

Everything needs root.`,
	}
	cmd.PersistentFlags().StringVar(&f.hostNS, "host-ns", "", "namespace (name or path) holding the node's outward interface; default: this one")
	cmd.PersistentFlags().StringVar(&f.prefix, "prefix", "", "prefix for the names of the namespaces created (to run several nodes on one machine)")
	cmd.PersistentFlags().StringVar(&f.state, "state", network.DefaultStateDir, "directory for network state and device sockets")
	cmd.AddCommand(
		newNetworkApplyCmd(f), newNetworkRmCmd(f), newNetworkLsCmd(f), newNetworkStatusCmd(f),
		newNetworkAttachCmd(f), newNetworkDetachCmd(f), newNetworkAccessCmd(f), newNetworkWallCmd(f),
		newNetworkGenkeyCmd(), newNetworkDeviceCmd(), newOverlayCmd(f),
	)
	return cmd
}

func newNetworkApplyCmd(f *networkFlags) *cobra.Command {
	var file string
	cmd := &cobra.Command{
		Use:   "apply -f SPEC.json",
		Short: "Create or update a network on this node from its spec (idempotent)",
		Long: `Apply a network spec. Applying the same spec again changes nothing; a
changed peer list adds, updates and removes only the peers that changed, so
flows between unchanged peers continue. Use "-f -" to read the spec from stdin.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			var b []byte
			var err error
			if file == "-" {
				b, err = io.ReadAll(cmd.InOrStdin())
			} else {
				b, err = os.ReadFile(file)
			}
			if err != nil {
				return fmt.Errorf("read spec: %w", err)
			}
			spec, err := network.ParseSpec(b)
			if err != nil {
				return err
			}
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			if err := m.Apply(cmd.Context(), spec); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "network %s applied in namespace %s\n", spec.Name, m.Namespace(spec.Name))
			return nil
		},
	}
	cmd.Flags().StringVarP(&file, "file", "f", "", "spec file (JSON), or - for stdin")
	cmd.MarkFlagRequired("file")
	return cmd
}

func newNetworkRmCmd(f *networkFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "rm NAME",
		Short: "Remove a network: its device, namespace, links, routes and rules",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			return m.Remove(cmd.Context(), args[0])
		},
	}
}

func newNetworkLsCmd(f *networkFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "ls",
		Short: "List the networks applied on this node",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			ls, err := m.List(cmd.Context())
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), ls)
			}
			w := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
			fmt.Fprintln(w, "NAME\tNAMESPACE\tIP RANGE\tSUBNET\tPEERS")
			for _, n := range ls {
				fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%d\n", n.Name, n.Namespace, n.IPRange, n.Subnet, n.Peers)
			}
			return w.Flush()
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newNetworkStatusCmd(f *networkFlags) *cobra.Command {
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "status NAME",
		Short: "Show a network's peers, handshakes, traffic and attached workloads",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			st, err := m.Status(cmd.Context(), args[0])
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), st)
			}
			out := cmd.OutOrStdout()
			fmt.Fprintf(out, "network %s (namespace %s)\n  subnet %s, wireguard %s, port %d\n  public key %s\n",
				st.Name, st.Namespace, st.Subnet, st.WGAddress, st.ListenPort, st.PublicKey)
			for _, p := range st.Peers {
				hs := "never"
				if !p.LastHandshake.IsZero() {
					hs = time.Since(p.LastHandshake).Round(time.Second).String() + " ago"
				}
				ep := "none yet (the peer dials in)"
				if p.Endpoint.IsValid() {
					ep = p.Endpoint.String()
				}
				fmt.Fprintf(out, "  peer %s\n    endpoint %s, allowed %v\n    handshake %s, rx %d B, tx %d B\n",
					p.PublicKey, ep, p.AllowedIPs, hs, p.RxBytes, p.TxBytes)
			}
			for _, a := range st.Attachments {
				fmt.Fprintf(out, "  workload %s: %s %s\n", a.Netns, a.Interface, a.Address)
			}
			return nil
		},
	}
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	return cmd
}

func newNetworkAttachCmd(f *networkFlags) *cobra.Command {
	var ifname string
	cmd := &cobra.Command{
		Use:   "attach NAME NETNS",
		Short: "Connect a workload namespace to a network and print its address",
		Long: `Attach the workload network namespace NETNS (a name from "ip netns" or a
path such as /proc/PID/ns/net) to the network with a veth pair. The workload
gets the next free address of this node's subnet and a default route through
the network. Attaching again prints the same address.`,
		Args: cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			addr, err := m.Attach(cmd.Context(), args[0], nsPath(args[1]), ifname)
			if err != nil {
				return err
			}
			fmt.Fprintln(cmd.OutOrStdout(), addr)
			return nil
		},
	}
	cmd.Flags().StringVar(&ifname, "ifname", "", "interface name inside the workload (default n-<network id>)")
	return cmd
}

func newNetworkDetachCmd(f *networkFlags) *cobra.Command {
	return &cobra.Command{
		Use:   "detach NAME NETNS",
		Short: "Disconnect a workload namespace from a network",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			return m.Detach(cmd.Context(), args[0], nsPath(args[1]))
		},
	}
}

func newNetworkAccessCmd(f *networkFlags) *cobra.Command {
	var subnet, endpoint string
	var asJSON bool
	cmd := &cobra.Command{
		Use:   "access-config NAME --subnet CIDR --endpoint IP:PORT",
		Short: "Make a WireGuard client config for a user's machine to join a network through this node",
		Long: `Print a wg-quick configuration for a laptop that reaches the network through
this node (its access node), with a new client key. The client gets SUBNET, an
unused /24 of the network. Add the printed peer to this node's spec and the
subnet to the allowed IPs of this node in the other nodes' specs, then apply.`,
		Args: cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			sub, err := netip.ParsePrefix(subnet)
			if err != nil {
				return fmt.Errorf("--subnet: %w", err)
			}
			ep, err := netip.ParseAddrPort(endpoint)
			if err != nil {
				return fmt.Errorf("--endpoint: %w", err)
			}
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			acc, err := m.AccessConfig(cmd.Context(), args[0], sub, ep)
			if err != nil {
				return err
			}
			if asJSON {
				return printJSON(cmd.OutOrStdout(), acc)
			}
			peer, _ := json.Marshal(acc.Peer)
			fmt.Fprintf(cmd.OutOrStdout(), "%s\n# add this peer to the spec of network %s on this node:\n# %s\n", acc.Config, args[0], peer)
			return nil
		},
	}
	cmd.Flags().StringVar(&subnet, "subnet", "", "the client's /24 inside the network's ip range")
	cmd.Flags().StringVar(&endpoint, "endpoint", "", "this node's public ip:port (the network's wireguard port)")
	cmd.Flags().BoolVar(&asJSON, "json", false, "print JSON")
	cmd.MarkFlagRequired("subnet")
	cmd.MarkFlagRequired("endpoint")
	return cmd
}

func newNetworkWallCmd(f *networkFlags) *cobra.Command {
	var outward, tcp, udp string
	var remove bool
	cmd := &cobra.Command{
		Use:   "wall",
		Short: "Drop every new inbound connection on the outward interface except overlay and WireGuard ports",
		Long: `Install the network wall: nftables rules on the node's outward interface that
accept replies to connections the node opened, the WireGuard ports of its
networks (kept up to date as networks come and go) and the ports given here
(the overlay peering port), and drop every other new inbound connection.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			m, err := f.manager(cmd)
			if err != nil {
				return err
			}
			if remove {
				return m.RemoveWall(cmd.Context())
			}
			w := network.Wall{Outward: outward}
			if w.TCP, err = parsePorts(tcp); err != nil {
				return fmt.Errorf("--tcp: %w", err)
			}
			if w.UDP, err = parsePorts(udp); err != nil {
				return fmt.Errorf("--udp: %w", err)
			}
			return m.ApplyWall(cmd.Context(), w)
		},
	}
	cmd.Flags().StringVar(&outward, "outward", "", "outward interface (default: the interface of the default route)")
	cmd.Flags().StringVar(&tcp, "tcp", "", "comma-separated TCP ports to accept (e.g. the overlay port 9943)")
	cmd.Flags().StringVar(&udp, "udp", "", "comma-separated extra UDP ports to accept")
	cmd.Flags().BoolVar(&remove, "remove", false, "remove the wall")
	return cmd
}

func parsePorts(s string) ([]uint16, error) {
	var out []uint16
	for _, p := range strings.Split(s, ",") {
		p = strings.TrimSpace(p)
		if p == "" {
			continue
		}
		n, err := strconv.ParseUint(p, 10, 16)
		if err != nil || n == 0 {
			return nil, fmt.Errorf("bad port %q", p)
		}
		out = append(out, uint16(n))
	}
	return out, nil
}

func newNetworkGenkeyCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "genkey",
		Short: "Generate a WireGuard key pair for a network spec (prints JSON)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			k, err := wg.GeneratePrivateKey()
			if err != nil {
				return err
			}
			return printJSON(cmd.OutOrStdout(), map[string]any{"private_key": k, "public_key": k.Public()})
		},
	}
}

func newNetworkDeviceCmd() *cobra.Command {
	var cfg wg.DeviceConfig
	cmd := &cobra.Command{
		Use:    "device",
		Short:  "Run one network's WireGuard device (started by apply)",
		Hidden: true,
		Args:   cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			// The helper outlives the terminal of whoever ran apply; it
			// shares that session (see network.Exec), so a hangup must not
			// take the network down.
			signal.Ignore(syscall.SIGHUP)
			cfg.Logger = slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), nil))
			return wg.Run(cmd.Context(), cfg)
		},
	}
	cmd.Flags().StringVar(&cfg.TunName, "tun", "", "TUN interface name")
	cmd.Flags().StringVar(&cfg.TunNS, "tun-ns", "", "namespace path for the TUN")
	cmd.Flags().StringVar(&cfg.SocketNS, "socket-ns", "", "namespace path for the UDP socket")
	cmd.Flags().StringVar(&cfg.Socket, "socket", "", "UAPI socket path")
	return cmd
}
