package chain

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"

	cfg "github.com/cometbft/cometbft/config"
	cmtlog "github.com/cometbft/cometbft/libs/log"
	nm "github.com/cometbft/cometbft/node"
	"github.com/cometbft/cometbft/p2p"
	"github.com/cometbft/cometbft/privval"
	"github.com/cometbft/cometbft/proxy"
	"github.com/cometbft/cometbft/rpc/client/local"
	"github.com/cometbft/cometbft/types"

	"github.com/zosgrid/zos/ledger"
	"github.com/zosgrid/zos/ledger/query"
)

// Settings are the zos-side settings of one validator (HOME/ledger.json).
type Settings struct {
	Moniker string `json:"moniker"`
	// P2P is the CometBFT peer listen address, e.g. tcp://127.0.0.1:26656.
	P2P string `json:"p2p"`
	// RPC is CometBFT's own RPC listen address ("" disables it).
	RPC string `json:"rpc"`
	// HTTP is the ledger's JSON query API (loopback by default).
	HTTP string `json:"http"`
	// Peers are persistent peers, "nodeid@host:port" each.
	Peers []string `json:"peers,omitempty"`
	// TimeoutCommit is how long a validator waits after a commit before
	// the next height (block time), e.g. "1s".
	TimeoutCommit string `json:"timeout_commit"`
	// MempoolSize bounds the mempool in transactions.
	MempoolSize int `json:"mempool_size"`
	// SnapshotEvery is how often (in blocks) the ledger state is saved to
	// HOME/data/ledger.snapshot, besides on a clean stop; 0 saves only on
	// stop. A restart loads it and replays only the blocks after it.
	SnapshotEvery int64 `json:"snapshot_every"`
}

// DefaultSettings listen on loopback with CometBFT's defaults.
func DefaultSettings() Settings {
	return Settings{Moniker: "zos-ledger", P2P: "tcp://127.0.0.1:26656", RPC: "tcp://127.0.0.1:26657",
		HTTP: query.DefaultAddr, TimeoutCommit: "1s", MempoolSize: 5000, SnapshotEvery: 100}
}

const settingsFile = "ledger.json"

// LoadSettings reads HOME/ledger.json.
func LoadSettings(home string) (Settings, error) {
	b, err := os.ReadFile(filepath.Join(home, settingsFile))
	if err != nil {
		return Settings{}, fmt.Errorf("chain: %w (run `zos ledger init --home %s` first)", err, home)
	}
	s := DefaultSettings()
	if err := json.Unmarshal(b, &s); err != nil {
		return Settings{}, fmt.Errorf("chain: %s: %w", settingsFile, err)
	}
	return s, nil
}

// SaveSettings writes HOME/ledger.json.
func SaveSettings(home string, s Settings) error {
	b, _ := json.MarshalIndent(s, "", "  ")
	return os.WriteFile(filepath.Join(home, settingsFile), append(b, '\n'), 0o644)
}

func cometConfig(home string, s Settings) (*cfg.Config, error) {
	c := cfg.DefaultConfig()
	c.SetRoot(home)
	c.Moniker = s.Moniker
	c.P2P.ListenAddress = s.P2P
	c.P2P.PersistentPeers = strings.Join(s.Peers, ",")
	c.P2P.AllowDuplicateIP = true // every validator of a local testnet is on 127.0.0.1
	c.P2P.AddrBookStrict = false
	c.P2P.PexReactor = len(s.Peers) > 0
	c.RPC.ListenAddress = s.RPC
	c.Mempool.Size = s.MempoolSize
	c.Instrumentation.Prometheus = false
	c.TxIndex.Indexer = "kv"
	// Submit waits for the block that includes a tx through the in-process
	// client (no HTTP write deadline applies). CometBFT's 10 s default is
	// shorter than a few failed rounds when a validator is down and the
	// machine is busy: the client would report a failure for a tx that
	// commits a moment later.
	c.RPC.TimeoutBroadcastTxCommit = 30 * time.Second
	tc, err := time.ParseDuration(s.TimeoutCommit)
	if err != nil {
		return nil, fmt.Errorf("chain: timeout_commit %q: %w", s.TimeoutCommit, err)
	}
	c.Consensus.TimeoutCommit = tc
	if tc < time.Second { // short blocks: short rounds too, as CometBFT's test configs do
		c.Consensus.TimeoutPropose = 500 * time.Millisecond
		c.Consensus.TimeoutPrevote = 200 * time.Millisecond
		c.Consensus.TimeoutPrecommit = 200 * time.Millisecond
	}
	return c, c.ValidateBasic()
}

// Initialised reports whether home already holds a chain.
func Initialised(home string) bool {
	_, err := os.Stat(filepath.Join(home, "config", "genesis.json"))
	return err == nil
}

// InitOptions describe a new chain.
type InitOptions struct {
	Genesis  ledger.Genesis
	Settings Settings
}

// Init creates HOME with a one-validator chain.
func Init(home string, o InitOptions) error {
	return Testnet([]string{home}, o.Genesis, []Settings{o.Settings})
}

// Testnet creates one home per validator, all sharing one genesis that lists
// every validator with equal power, and each listing the others as peers.
func Testnet(homes []string, g ledger.Genesis, settings []Settings) error {
	if err := ledger.ValidateGenesis(g); err != nil {
		return err
	}
	if len(homes) != len(settings) || len(homes) == 0 {
		return errors.New("chain: one settings per home")
	}
	appState, err := json.Marshal(g)
	if err != nil {
		return err
	}
	var vals []types.GenesisValidator
	var ids []string
	for i, home := range homes {
		if Initialised(home) {
			return fmt.Errorf("chain: %s already holds a chain; refusing to overwrite it", home)
		}
		c, err := cometConfig(home, settings[i])
		if err != nil {
			return err
		}
		for _, d := range []string{filepath.Join(home, "config"), filepath.Join(home, "data")} {
			if err := os.MkdirAll(d, 0o700); err != nil {
				return fmt.Errorf("chain: %w", err)
			}
		}
		pv, err := privval.GenFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile(), nil)
		if err != nil {
			return fmt.Errorf("chain: validator key: %w", err)
		}
		pv.Save()
		nk, err := p2p.LoadOrGenNodeKey(c.NodeKeyFile())
		if err != nil {
			return fmt.Errorf("chain: node key: %w", err)
		}
		pub, err := pv.GetPubKey()
		if err != nil {
			return err
		}
		vals = append(vals, types.GenesisValidator{Address: pub.Address(), PubKey: pub, Power: 10, Name: settings[i].Moniker})
		host := strings.TrimPrefix(settings[i].P2P, "tcp://")
		ids = append(ids, string(nk.ID())+"@"+host)
	}
	doc := &types.GenesisDoc{
		ChainID: g.ChainID, GenesisTime: time.Now().UTC().Truncate(time.Second), ConsensusParams: types.DefaultConsensusParams(),
		Validators: vals, AppState: appState, InitialHeight: 1,
	}
	if err := doc.ValidateAndComplete(); err != nil {
		return fmt.Errorf("chain: genesis: %w", err)
	}
	for i, home := range homes {
		if err := doc.SaveAs(filepath.Join(home, "config", "genesis.json")); err != nil {
			return fmt.Errorf("chain: %w", err)
		}
		s := settings[i]
		s.Peers = nil
		for j, id := range ids {
			if j != i {
				s.Peers = append(s.Peers, id)
			}
		}
		if err := SaveSettings(home, s); err != nil {
			return fmt.Errorf("chain: %w", err)
		}
	}
	return nil
}

// LoadGenesis reads the ledger genesis out of HOME/config/genesis.json.
func LoadGenesis(home string) (ledger.Genesis, error) {
	doc, err := types.GenesisDocFromFile(filepath.Join(home, "config", "genesis.json"))
	if err != nil {
		return ledger.Genesis{}, fmt.Errorf("chain: %w", err)
	}
	var g ledger.Genesis
	if err := json.Unmarshal(doc.AppState, &g); err != nil {
		return ledger.Genesis{}, fmt.Errorf("chain: genesis app_state: %w", err)
	}
	if g.ChainID != doc.ChainID {
		return ledger.Genesis{}, fmt.Errorf("chain: app_state chain id %q differs from %q", g.ChainID, doc.ChainID)
	}
	return g, nil
}

// Node is a running validator.
type Node struct {
	node   *nm.Node
	app    *App
	client *local.Local
	http   *http.Server
	ln     net.Listener
	log    *slog.Logger
	// startHeight is the height the ledger state was loaded at (its
	// snapshot's, 0 from genesis); CometBFT replayed the blocks after it.
	startHeight int64
}

// Start starts the validator in HOME and its HTTP query API.
func Start(ctx context.Context, home string, s Settings, log *slog.Logger) (*Node, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "ledger")
	g, err := LoadGenesis(home)
	if err != nil {
		return nil, err
	}
	m, err := loadMachine(home, g, log)
	if err != nil {
		return nil, err
	}
	app := NewApp(m, log)
	app.snap, app.snapEvery = SnapshotPath(home), s.SnapshotEvery
	startHeight := m.Height()
	c, err := cometConfig(home, s)
	if err != nil {
		return nil, err
	}
	nk, err := p2p.LoadNodeKey(c.NodeKeyFile())
	if err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	pv := privval.LoadFilePV(c.PrivValidatorKeyFile(), c.PrivValidatorStateFile())
	n, err := nm.NewNode(ctx, c, pv, nk, proxy.NewConnSyncLocalClientCreator(app), nm.DefaultGenesisDocProviderFunc(c),
		cfg.DefaultDBProvider, nm.DefaultMetricsProvider(c.Instrumentation), cometLogger{log})
	if err != nil {
		return nil, fmt.Errorf("chain: %w", err)
	}
	if err := n.Start(); err != nil {
		return nil, fmt.Errorf("chain: start: %w", err)
	}
	node := &Node{node: n, app: app, client: local.New(n), log: log, startHeight: startHeight}
	if s.HTTP != "" {
		ln, err := net.Listen("tcp", s.HTTP)
		if err != nil {
			_ = n.Stop()
			n.Wait()
			return nil, fmt.Errorf("chain: http: %w", err)
		}
		node.ln = ln
		node.http = &http.Server{Handler: query.NewHandler(m, node, log), ReadHeaderTimeout: 10 * time.Second}
		go func() {
			if err := node.http.Serve(ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
				log.Error("query api stopped", "err", err)
			}
		}()
	}
	log.Info("ledger started", "chain", g.ChainID, "p2p", s.P2P, "http", s.HTTP, "height", n.BlockStore().Height())
	return node, nil
}

// Machine returns the state machine, for in-process queries.
func (n *Node) Machine() *ledger.Machine { return n.app.m }

// HTTPAddr returns the query API's address ("" if disabled).
// StartHeight is the height the ledger state was loaded at on start: the
// snapshot's, or 0 when it was rebuilt from genesis by replaying every block.
func (n *Node) StartHeight() int64 { return n.startHeight }

func (n *Node) HTTPAddr() string {
	if n.ln == nil {
		return ""
	}
	return n.ln.Addr().String()
}

// Submit implements query.Submitter: it broadcasts a transaction and waits
// until a block includes it (or the mempool refuses it).
func (n *Node) Submit(ctx context.Context, tx []byte) (query.SubmitResult, error) {
	r, err := n.client.BroadcastTxCommit(ctx, tx)
	if err != nil {
		return query.SubmitResult{}, fmt.Errorf("chain: broadcast: %w", err)
	}
	if r.CheckTx.Code != 0 {
		return query.SubmitResult{Code: r.CheckTx.Code, Log: r.CheckTx.Log, Hash: r.Hash.String()}, nil
	}
	res := query.SubmitResult{Code: r.TxResult.Code, Log: r.TxResult.Log, Height: r.Height, Hash: r.Hash.String()}
	var data struct {
		Created uint64 `json:"created"`
	}
	_ = json.Unmarshal(r.TxResult.Data, &data)
	res.Created = data.Created
	return res, nil
}

// Close stops the query API and the validator.
func (n *Node) Close() error {
	if n.http != nil {
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_ = n.http.Shutdown(ctx)
		cancel()
	}
	err := n.node.Stop()
	n.node.Wait()
	n.app.saveSnapshot() // so the next start replays nothing
	return err
}

// cometLogger sends CometBFT's logs to slog; its chatty Info goes to Debug.
type cometLogger struct{ l *slog.Logger }

func (c cometLogger) Debug(msg string, kv ...any) { c.l.Debug(msg, kv...) }
func (c cometLogger) Info(msg string, kv ...any)  { c.l.Debug(msg, kv...) }
func (c cometLogger) Error(msg string, kv ...any) { c.l.Error(msg, kv...) }
func (c cometLogger) With(kv ...any) cmtlog.Logger {
	return cometLogger{c.l.With(kv...)}
}
