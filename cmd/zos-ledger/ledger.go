package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/ledger"
	"github.com/zosgrid/zos/ledger/chain"
	"github.com/zosgrid/zos/ledger/query"
)

// genesisFlags are the chain parameters init and testnet share.
type genesisFlags struct {
	chainID       string
	treasury      string
	funds         []string
	blockSeconds  uint64
	billingFreq   uint64
	gracePeriod   uint64
	nodeOffline   uint64
	txFee         uint64
	snapshotEvery int64
	timeoutCommit string
}

func (g *genesisFlags) add(cmd *cobra.Command) {
	d := ledger.DefaultParams()
	f := cmd.Flags()
	f.StringVar(&g.chainID, "chain-id", "zos-local", "chain id (transactions are signed for it)")
	f.StringVar(&g.treasury, "treasury", "", "account (public key or key file) that receives payments; default: a new key file in the (first) home")
	f.StringArrayVar(&g.funds, "fund", nil, "initial balance, ACCOUNT=AMOUNT where ACCOUNT is a public key or a key file (repeatable)")
	f.Uint64Var(&g.blockSeconds, "block-seconds", d.BlockSeconds, "seconds one block stands for in billing (match --timeout-commit)")
	f.Uint64Var(&g.billingFreq, "billing-frequency", d.BillingFrequency, "billing cycle in blocks")
	f.Uint64Var(&g.gracePeriod, "grace-period", d.GracePeriod, "blocks a contract stays in grace before deletion")
	f.Uint64Var(&g.nodeOffline, "node-offline", d.NodeOffline, "blocks without a node report after which the node is offline (not billed)")
	f.Uint64Var(&g.txFee, "tx-fee", d.TxFee, "units every transaction pays the treasury, even when it fails (0: no fees)")
	f.Int64Var(&g.snapshotEvery, "snapshot-every", chain.DefaultSettings().SnapshotEvery, "save the ledger state every N blocks (and on stop) so a restart replays only the blocks after it (0: only on stop)")
	f.StringVar(&g.timeoutCommit, "timeout-commit", chain.DefaultSettings().TimeoutCommit, "CometBFT timeout_commit: the pause between blocks")
}

func (g *genesisFlags) genesis(home string) (ledger.Genesis, error) {
	p := ledger.DefaultParams()
	p.BlockSeconds, p.BillingFrequency, p.GracePeriod, p.NodeOffline = g.blockSeconds, g.billingFreq, g.gracePeriod, g.nodeOffline
	p.TxFee = g.txFee
	gen := ledger.Genesis{ChainID: g.chainID, Params: p}
	if g.treasury == "" {
		path := filepath.Join(home, "treasury.key")
		k, err := key.New()
		if err != nil {
			return gen, err
		}
		if err := key.Save(path, k); err != nil {
			return gen, err
		}
		gen.Treasury = k.Public()
	} else {
		t, err := key.ParseAccount(g.treasury)
		if err != nil {
			return gen, err
		}
		gen.Treasury = t
	}
	for _, f := range g.funds {
		acct, amt, ok := strings.Cut(f, "=")
		if !ok {
			return gen, fmt.Errorf("--fund %q: want ACCOUNT=AMOUNT", f)
		}
		a, err := key.ParseAccount(acct)
		if err != nil {
			return gen, err
		}
		n, err := strconv.ParseUint(amt, 10, 64)
		if err != nil {
			return gen, fmt.Errorf("--fund %q: amount: %w", f, err)
		}
		gen.Balances = append(gen.Balances, ledger.GenesisBalance{Account: a, Amount: n})
	}
	return gen, ledger.ValidateGenesis(gen)
}

func newLedgerInitCmd() *cobra.Command {
	var home string
	var g genesisFlags
	s := chain.DefaultSettings()
	cmd := &cobra.Command{
		Use:   "init --home DIR",
		Short: "Create a one-validator chain in DIR (genesis, validator key, settings)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if chain.Initialised(home) {
				return fmt.Errorf("%s already holds a chain; refusing to overwrite it", home)
			}
			if err := os.MkdirAll(home, 0o700); err != nil {
				return err
			}
			gen, err := g.genesis(home)
			if err != nil {
				return err
			}
			s.TimeoutCommit, s.SnapshotEvery = g.timeoutCommit, g.snapshotEvery
			if err := chain.Init(home, chain.InitOptions{Genesis: gen, Settings: s}); err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "chain %s initialised in %s; start it with: zos ledger start --home %s\n", gen.ChainID, home, home)
			return nil
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "directory for the chain's files")
	cmd.MarkFlagRequired("home")
	g.add(cmd)
	cmd.Flags().StringVar(&s.P2P, "p2p", s.P2P, "peer-to-peer listen address")
	cmd.Flags().StringVar(&s.RPC, "rpc", s.RPC, "CometBFT RPC listen address (empty: off)")
	cmd.Flags().StringVar(&s.HTTP, "http", s.HTTP, "ledger JSON API listen address")
	return cmd
}

func newLedgerStartCmd() *cobra.Command {
	var home, httpAddr string
	var verbose bool
	cmd := &cobra.Command{
		Use:   "start --home DIR",
		Short: "Run the validator in DIR and its JSON API until SIGTERM",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			s, err := chain.LoadSettings(home)
			if err != nil {
				return err
			}
			if cmd.Flags().Changed("http") {
				s.HTTP = httpAddr
			}
			level := slog.LevelInfo
			if verbose {
				level = slog.LevelDebug
			}
			log := slog.New(slog.NewTextHandler(cmd.ErrOrStderr(), &slog.HandlerOptions{Level: level}))
			n, err := chain.Start(cmd.Context(), home, s, log)
			if err != nil {
				return err
			}
			fmt.Fprintf(cmd.OutOrStdout(), "ledger running: api http://%s\n", n.HTTPAddr())
			<-cmd.Context().Done()
			log.Info("stopping ledger")
			return n.Close()
		},
	}
	cmd.Flags().StringVar(&home, "home", "", "directory created by `zos ledger init`")
	cmd.MarkFlagRequired("home")
	cmd.Flags().StringVar(&httpAddr, "http", query.DefaultAddr, "override the JSON API listen address")
	cmd.Flags().BoolVarP(&verbose, "verbose", "v", false, "log CometBFT's consensus progress too")
	return cmd
}

func newLedgerTestnetCmd() *cobra.Command {
	var out, host string
	var n, basePort int
	var g genesisFlags
	cmd := &cobra.Command{
		Use:   "testnet --validators N --out DIR",
		Short: "Create the homes of a local N-validator network (DIR/v0 ... DIR/vN-1)",
		Long: `Creates one home per validator sharing one genesis; each lists the others as
persistent peers. Validator i listens on BASE+3i (p2p), BASE+3i+1 (CometBFT RPC) and
BASE+3i+2 (JSON API). Start each with: zos ledger start --home DIR/vI`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if n < 1 {
				return errors.New("--validators must be at least 1")
			}
			if chain.Initialised(filepath.Join(out, "v0")) {
				return fmt.Errorf("%s already holds a testnet; refusing to overwrite it", out)
			}
			if err := os.MkdirAll(out, 0o700); err != nil {
				return err
			}
			gen, err := g.genesis(out)
			if err != nil {
				return err
			}
			var homes []string
			var settings []chain.Settings
			for i := range n {
				homes = append(homes, filepath.Join(out, fmt.Sprintf("v%d", i)))
				s := chain.DefaultSettings()
				s.Moniker = fmt.Sprintf("v%d", i)
				s.P2P = fmt.Sprintf("tcp://%s:%d", host, basePort+3*i)
				s.RPC = fmt.Sprintf("tcp://%s:%d", host, basePort+3*i+1)
				s.HTTP = fmt.Sprintf("%s:%d", host, basePort+3*i+2)
				s.TimeoutCommit, s.SnapshotEvery = g.timeoutCommit, g.snapshotEvery
				settings = append(settings, s)
			}
			if err := chain.Testnet(homes, gen, settings); err != nil {
				return err
			}
			for i, h := range homes {
				fmt.Fprintf(cmd.OutOrStdout(), "%s api=http://%s\n", h, settings[i].HTTP)
			}
			return nil
		},
	}
	cmd.Flags().IntVar(&n, "validators", 4, "number of validators")
	cmd.Flags().StringVar(&out, "out", "", "directory for the validators' homes")
	cmd.MarkFlagRequired("out")
	cmd.Flags().StringVar(&host, "host", "127.0.0.1", "address every validator listens on")
	cmd.Flags().IntVar(&basePort, "base-port", 26600, "first port (3 per validator)")
	g.add(cmd)
	return cmd
}
