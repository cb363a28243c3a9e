package main

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/grid"
	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/ledger"
	"github.com/zosgrid/zos/ledger/query"
)

func newLedgerCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:     "ledger",
		Short:   "Run the grid ledger (twins, farms, nodes, contracts, billing) on CometBFT",
		GroupID: groupServices,
		Long: `The ledger is the grid's registry and billing: twins, farms, nodes, node/name/rent
contracts and a bill per contract every cycle. It is a deterministic state machine run by
CometBFT: one embedded validator by default, or a network of validators ("testnet").

  zos ledger init --home DIR --fund KEYFILE=AMOUNT     create a one-validator chain
  zos ledger start --home DIR                          run it (JSON API on 127.0.0.1:8850)
  zos ledger query /nodes?free_cru=2                   read the ledger
  zos twin create --key FILE                           send a signed transaction`,
	}
	cmd.AddCommand(
		ledgerEngineCmd("init", "Create a one-validator chain in DIR (genesis, validator key, settings)"),
		ledgerEngineCmd("start", "Run the validator in DIR and its JSON API until SIGTERM"),
		ledgerEngineCmd("testnet", "Create the homes of a local N-validator network (DIR/v0 ... DIR/vN-1)"),
		newLedgerQueryCmd(), newLedgerEstimateCmd())
	return cmd
}

// ledgerEngine is the binary that runs the chain: CometBFT's package
// initialisation would slow every start of zos (see cmd/zos-ledger).
const ledgerEngine = "zos-ledger"

// ledgerEngineCmd forwards `zos ledger SUB ARGS...` to `zos-ledger SUB
// ARGS...` by replacing this process, so signals, exit status and the pid a
// supervisor holds are the engine's own.
func ledgerEngineCmd(sub, short string) *cobra.Command {
	return &cobra.Command{
		Use:                sub,
		Short:              short,
		DisableFlagParsing: true, // the engine parses them, --help included
		RunE: func(cmd *cobra.Command, args []string) error {
			path, err := findLedgerEngine()
			if err != nil {
				return err
			}
			return syscall.Exec(path, append([]string{path, sub}, args...), os.Environ())
		},
	}
}

// findLedgerEngine looks beside this binary first, so that a checkout's
// bin/zos runs its own bin/zos-ledger, then in PATH.
func findLedgerEngine() (string, error) {
	self, err := os.Executable()
	if err == nil {
		if p, err := exec.LookPath(filepath.Join(filepath.Dir(self), ledgerEngine)); err == nil {
			return p, nil
		}
	}
	if p, err := exec.LookPath(ledgerEngine); err == nil {
		return p, nil
	}
	return "", fmt.Errorf("the ledger's chain engine %s is neither beside %s nor in PATH: build it with `make build` (go build -o bin/%s ./cmd/%s)", ledgerEngine, self, ledgerEngine, ledgerEngine)
}

func ledgerAddr(cmd *cobra.Command) *string {
	def := os.Getenv("ZOS_LEDGER")
	if def == "" {
		def = query.DefaultAddr
	}
	var s string
	cmd.Flags().StringVar(&s, "ledger", def, "ledger JSON API address ($ZOS_LEDGER)")
	return &s
}

func newLedgerQueryCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "query PATH",
		Short: "GET a path of the ledger API and print the JSON",
		Long: `Paths: /status /params /accounts/KEY /twins/ID /farms /farms/ID
/nodes?farm=&country=&online=&free_cru=&free_mru=&free_sru=&free_hru=&free_ips=&renter=&limit=
/nodes/ID /contracts?twin=&node=&state=&type= /contracts/ID /contracts/ID/bills /proposals/ID
/events?since=HEIGHT&node=&twin=&contract= (what nodes follow: created, updated, canceled, grace, resumed)`,
		Args: cobra.ExactArgs(1),
	}
	addr := ledgerAddr(cmd)
	cmd.RunE = func(cmd *cobra.Command, args []string) error {
		var v json.RawMessage
		if err := query.NewClient(*addr).Get(cmd.Context(), args[0], &v); err != nil {
			return err
		}
		return printJSON(cmd.OutOrStdout(), v)
	}
	return cmd
}

// capacityFlags parse --cru --mru --sru --hru.
type capacityFlags struct {
	cru           uint64
	mru, sru, hru string
}

func (c *capacityFlags) add(cmd *cobra.Command) {
	cmd.Flags().Uint64Var(&c.cru, "cru", 0, "logical cores")
	cmd.Flags().StringVar(&c.mru, "mru", "0", "memory, e.g. 4G")
	cmd.Flags().StringVar(&c.sru, "sru", "0", "SSD, e.g. 100G")
	cmd.Flags().StringVar(&c.hru, "hru", "0", "HDD, e.g. 1T")
}

func (c *capacityFlags) capacity() (grid.Capacity, error) {
	out := grid.Capacity{CRU: c.cru}
	var err error
	for _, f := range []struct {
		s   string
		dst *uint64
	}{{c.mru, &out.MRU}, {c.sru, &out.SRU}, {c.hru, &out.HRU}} {
		if *f.dst, err = parseSize(f.s); err != nil {
			return out, err
		}
	}
	return out, nil
}

func newLedgerEstimateCmd() *cobra.Command {
	var cf capacityFlags
	var ips, hours, balance uint64
	var useLedger bool
	cmd := &cobra.Command{
		Use:   "estimate --cru N --mru SIZE --sru SIZE [--ips N] [--hours H]",
		Short: "Estimate what a node contract costs, with the same formulas billing uses",
		Long: `Prints the compute and storage units, the amount before discount, the discount
level the balance earns, and what would be paid, in units (10^7 units = 1 USD).
Prices come from the ledger with --from-ledger, else the reference defaults.`,
		Args: cobra.NoArgs,
	}
	addr := ledgerAddr(cmd)
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		c, err := cf.capacity()
		if err != nil {
			return err
		}
		p := ledger.DefaultPricing()
		if useLedger {
			var params ledger.Params
			if err := query.NewClient(*addr).Get(cmd.Context(), "/params", &params); err != nil {
				return err
			}
			p = params.Pricing
		}
		return printJSON(cmd.OutOrStdout(), ledger.EstimateNodeContract(p, c, ips, hours*3600, balance))
	}
	cf.add(cmd)
	cmd.Flags().Uint64Var(&ips, "ips", 0, "public IPv4 addresses")
	cmd.Flags().Uint64Var(&hours, "hours", 1, "duration in hours (720 ≈ a month)")
	cmd.Flags().Uint64Var(&balance, "balance", 0, "balance the contract is paid from (sets the discount)")
	cmd.Flags().BoolVar(&useLedger, "from-ledger", false, "use the ledger's prices (--ledger ADDR)")
	return cmd
}

// txCmd builds a transaction command: flags from setup, a message from
// build, signed with --key and sent to --ledger. --group G turns the
// message into a proposal of group G (when group is true).
func txCmd(use, short string, group bool, setup func(*cobra.Command), build func() (ledger.Msg, error)) *cobra.Command {
	var keyFile string
	var groupID uint32
	cmd := &cobra.Command{Use: use, Short: short, Args: cobra.NoArgs}
	addr := ledgerAddr(cmd)
	cmd.Flags().StringVar(&keyFile, "key", "", "key file that signs the transaction (zos key new)")
	cmd.MarkFlagRequired("key")
	if group {
		cmd.Flags().Uint32Var(&groupID, "group", 0, "act for this group twin: propose the action to its members")
	}
	if setup != nil {
		setup(cmd)
	}
	cmd.RunE = func(cmd *cobra.Command, _ []string) error {
		k, err := key.Load(keyFile)
		if err != nil {
			return err
		}
		msg, err := build()
		if err != nil {
			return err
		}
		if groupID != 0 {
			a, err := ledger.NewAction(msg)
			if err != nil {
				return err
			}
			msg = &ledger.GroupPropose{Group: groupID, Action: a}
		}
		return sendTx(cmd.Context(), cmd.OutOrStdout(), *addr, k, msg)
	}
	return cmd
}

func sendTx(ctx context.Context, w io.Writer, addr string, k key.Private, msg ledger.Msg) error {
	res, err := query.NewClient(addr).Send(ctx, k, msg)
	if err != nil {
		return err
	}
	if res.Created != 0 {
		fmt.Fprintf(w, "%s: created %d (height %d)\n", msg.TxType(), res.Created, res.Height)
	} else {
		fmt.Fprintf(w, "%s: ok (height %d)\n", msg.TxType(), res.Height)
	}
	return nil
}

func newTwinCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "twin", Short: "Create and update twins (identities on the ledger)", GroupID: groupTools}
	var relay, enc string
	var members []string
	var threshold uint64
	create := txCmd("create --key FILE", "Give the key's account a twin", false, func(c *cobra.Command) {
		c.Flags().StringVar(&relay, "relay", "", "relay address where the twin is reachable")
		c.Flags().StringVar(&enc, "enc-key", "", "encryption public key (hex)")
	}, func() (ledger.Msg, error) {
		b, err := hex.DecodeString(enc)
		if err != nil {
			return nil, fmt.Errorf("--enc-key: %w", err)
		}
		return &ledger.TwinCreate{Relay: relay, EncKey: b}, nil
	})
	groupCmd := txCmd("group --key FILE --member TWIN:WEIGHT... --threshold N", "Create a group twin whose members act together", false, func(c *cobra.Command) {
		c.Flags().StringArrayVar(&members, "member", nil, "member twin and weight, TWIN:WEIGHT (repeatable)")
		c.Flags().Uint64Var(&threshold, "threshold", 0, "approvals' total weight needed to act")
	}, func() (ledger.Msg, error) {
		g := &ledger.GroupCreate{Threshold: threshold}
		for _, m := range members {
			t, w, ok := strings.Cut(m, ":")
			tid, err1 := strconv.ParseUint(t, 10, 32)
			wt, err2 := strconv.ParseUint(w, 10, 64)
			if !ok || err1 != nil || err2 != nil {
				return nil, fmt.Errorf("--member %q: want TWIN:WEIGHT", m)
			}
			g.Members = append(g.Members, ledger.Member{Twin: uint32(tid), Weight: wt})
		}
		return g, nil
	})
	cmd.AddCommand(create, groupCmd)
	return cmd
}

func newFarmCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "farm", Short: "Create farms and add their public IPs", GroupID: groupTools}
	var name string
	var ips []string
	var farm uint32
	var ip, gw string
	parseIPs := func() ([]ledger.PublicIP, error) {
		var out []ledger.PublicIP
		for _, s := range ips {
			a, g, ok := strings.Cut(s, "@")
			if !ok {
				return nil, fmt.Errorf("--ip %q: want a.b.c.d/nn@gateway", s)
			}
			out = append(out, ledger.PublicIP{IP: a, Gateway: g})
		}
		return out, nil
	}
	create := txCmd("create --key FILE --name NAME", "Create a farm owned by the key's twin", false, func(c *cobra.Command) {
		c.Flags().StringVar(&name, "name", "", "unique farm name")
		c.Flags().StringArrayVar(&ips, "ip", nil, "public IP, a.b.c.d/nn@gateway (repeatable)")
	}, func() (ledger.Msg, error) {
		p, err := parseIPs()
		return &ledger.FarmCreate{Name: name, PublicIPs: p}, err
	})
	addIP := txCmd("add-ip --key FILE --farm ID --ip a.b.c.d/nn --gateway a.b.c.d", "Add a public IP to a farm", false, func(c *cobra.Command) {
		c.Flags().Uint32Var(&farm, "farm", 0, "farm id")
		c.Flags().StringVar(&ip, "ip", "", "address with prefix length")
		c.Flags().StringVar(&gw, "gateway", "", "gateway address")
	}, func() (ledger.Msg, error) { return &ledger.FarmAddIP{Farm: farm, IP: ip, Gateway: gw}, nil })
	cmd.AddCommand(create, addIP)
	return cmd
}

func newNodeLedgerCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "node", Short: "Register a node on the ledger and report its uptime", GroupID: groupTools}
	var farm uint32
	var cf capacityFlags
	var country, city string
	var uptime uint64
	register := txCmd("register --key FILE --farm ID --cru N --mru SIZE ...", "Register the key's twin as a node of a farm", false, func(c *cobra.Command) {
		c.Flags().Uint32Var(&farm, "farm", 0, "farm id")
		cf.add(c)
		c.Flags().StringVar(&country, "country", "", "country")
		c.Flags().StringVar(&city, "city", "", "city")
	}, func() (ledger.Msg, error) {
		c, err := cf.capacity()
		return &ledger.NodeRegister{Farm: farm, Resources: c, Location: ledger.Location{Country: country, City: city}}, err
	})
	up := txCmd("uptime --key FILE --uptime SECONDS", "Report the node is alive", false, func(c *cobra.Command) {
		c.Flags().Uint64Var(&uptime, "uptime", 0, "seconds since boot")
	}, func() (ledger.Msg, error) { return &ledger.NodeUptime{Uptime: uptime}, nil })
	var contract, netBytes uint64
	var used capacityFlags
	report := txCmd("report --key FILE --contract ID --cru N --mru SIZE ... [--net-bytes N]", "Report what a contract on this node uses (billing reads it)", false, func(c *cobra.Command) {
		c.Flags().Uint64Var(&contract, "contract", 0, "node contract id")
		used.add(c)
		c.Flags().Uint64Var(&netBytes, "net-bytes", 0, "public traffic since the last report, in bytes")
	}, func() (ledger.Msg, error) {
		c, err := used.capacity()
		return &ledger.NodeReport{Reports: []ledger.ContractReport{{Contract: contract, Used: c, NetBytes: netBytes}}}, err
	})
	cmd.AddCommand(register, up, report)
	return cmd
}

func newContractCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "contract", Short: "Create, update, cancel and approve contracts", GroupID: groupTools,
		Long: `Node contracts register a deployment's hash on a node; name contracts reserve a
gateway name; rent contracts rent a whole node. With --group G the command proposes the
action for group twin G, and it runs once members approve ("contract approve").`}
	var node, rent uint32
	var hashHex, depFile, data, name string
	var ips uint32
	var cf capacityFlags
	var id, proposal uint64
	deployment := func() (grid.Hash, grid.Capacity, error) {
		if depFile != "" {
			b, err := os.ReadFile(depFile)
			if err != nil {
				return grid.Hash{}, grid.Capacity{}, err
			}
			d, err := grid.DecodeDeployment(b)
			if err != nil {
				return grid.Hash{}, grid.Capacity{}, err
			}
			return d.Hash(), d.Capacity(), nil
		}
		h, err := grid.ParseHash(hashHex)
		if err != nil {
			return h, grid.Capacity{}, fmt.Errorf("give --deployment FILE or --hash HEX: %w", err)
		}
		c, err := cf.capacity()
		return h, c, err
	}
	create := txCmd("create --key FILE (--node ID --deployment FILE | --name NAME | --rent NODE)", "Create a node, name or rent contract", true, func(c *cobra.Command) {
		c.Flags().Uint32Var(&node, "node", 0, "node for a node contract")
		c.Flags().StringVar(&depFile, "deployment", "", "deployment JSON: its hash and capacity go into the contract")
		c.Flags().StringVar(&hashHex, "hash", "", "deployment hash (hex) instead of --deployment")
		c.Flags().StringVar(&data, "data", "", "small metadata stored with the contract (≤512 bytes)")
		c.Flags().Uint32Var(&ips, "ips", 0, "public IPv4s to take from the farm (default: the deployment's)")
		cf.add(c)
		c.Flags().StringVar(&name, "name", "", "gateway name for a name contract")
		c.Flags().Uint32Var(&rent, "rent", 0, "node to rent whole")
	}, func() (ledger.Msg, error) {
		switch {
		case name != "":
			return &ledger.CreateNameContract{Name: name}, nil
		case rent != 0:
			return &ledger.CreateRentContract{Node: rent}, nil
		case node == 0:
			return nil, errors.New("give --node ID, --name NAME or --rent NODE")
		}
		h, c, err := deployment()
		if err != nil {
			return nil, err
		}
		n := ips
		if n == 0 {
			n = uint32(c.IPV4U)
		}
		return &ledger.CreateNodeContract{Node: node, Hash: h, Data: data, PublicIPs: n, Capacity: c}, nil
	})
	update := txCmd("update --key FILE --id ID (--deployment FILE | --hash HEX)", "Point a node contract at a new deployment hash", true, func(c *cobra.Command) {
		c.Flags().Uint64Var(&id, "id", 0, "contract id")
		c.Flags().StringVar(&depFile, "deployment", "", "new deployment JSON")
		c.Flags().StringVar(&hashHex, "hash", "", "new deployment hash (hex)")
		c.Flags().StringVar(&data, "data", "", "new metadata")
		cf.add(c)
	}, func() (ledger.Msg, error) {
		h, c, err := deployment()
		return &ledger.UpdateContract{Contract: id, Hash: h, Data: data, Capacity: c}, err
	})
	cancel := txCmd("cancel --key FILE --id ID", "Cancel a contract (what is owed is billed first)", true, func(c *cobra.Command) {
		c.Flags().Uint64Var(&id, "id", 0, "contract id")
	}, func() (ledger.Msg, error) { return &ledger.CancelContract{Contract: id}, nil })
	approve := txCmd("approve --key FILE --proposal ID", "Approve a group proposal; it runs when approvals reach the threshold", false, func(c *cobra.Command) {
		c.Flags().Uint64Var(&proposal, "proposal", 0, "proposal id")
	}, func() (ledger.Msg, error) { return &ledger.GroupApprove{Proposal: proposal}, nil })
	cmd.AddCommand(create, update, cancel, approve)
	return cmd
}

func newTransferCmd() *cobra.Command {
	var to string
	var amount uint64
	cmd := txCmd("transfer --key FILE --to ACCOUNT --amount N", "Send units to another account", true, func(c *cobra.Command) {
		c.Flags().StringVar(&to, "to", "", "public key or key file of the receiver")
		c.Flags().Uint64Var(&amount, "amount", 0, "units (10^7 units = 1 USD)")
	}, func() (ledger.Msg, error) {
		t, err := key.ParseAccount(to)
		return &ledger.Transfer{To: t, Amount: amount}, err
	})
	cmd.GroupID = groupTools
	return cmd
}
