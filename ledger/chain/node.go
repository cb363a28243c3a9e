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
	"sync/atomic"
	"time"

	abci "github.com/cometbft/cometbft/abci/types"
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
	// submits numbers Submit's event subscriptions: CometBFT's event bus
	// takes one subscription per subscriber and query.
	submits atomic.Uint64
	// startHeight is the height the ledger state was loaded at (its
	// snapshot's, 0 from genesis); CometBFT replayed the blocks after it.
	startHeight int64
}

// Start starts the validator in HOME and its HTTP query API.
func Start(ctx context.Context, home string, s Settings, log *slog.Logger) (*Node, error) {
	return start(ctx, home, s, log, nil)
}

// start is Start; wrap, if not nil, wraps the application CometBFT calls,
// so a test can decide what the validator's block proposals carry.
func start(ctx context.Context, home string, s Settings, log *slog.Logger, wrap func(*App) abci.Application) (*Node, error) {
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
	var abciApp abci.Application = app
	if wrap != nil {
		abciApp = wrap(app)
	}
	n, err := nm.NewNode(ctx, c, pv, nk, proxy.NewConnSyncLocalClientCreator(abciApp), nm.DefaultGenesisDocProviderFunc(c),
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

// ErrDropped is returned by Submit when the mempool let a transaction go
// without a block including it, and the ledger gives no reason (it was
// evicted): it may be submitted again.
var ErrDropped = errors.New("chain: transaction dropped from the mempool")

// blockEventBuffer is how many new-block events may wait for a Submit
// before CometBFT cancels its subscription; one a block is read at a time.
const blockEventBuffer = 16

// Submit implements query.Submitter: it hands a transaction to the mempool
// (CheckTx) and waits for the block that includes it. It does not wait for
// a transaction that can no longer be committed: at each new block it looks
// whether the transaction is still in the mempool and its nonce still
// unused; once either is gone (another transaction of the signer used the
// nonce, a recheck or an eviction dropped it) it returns the ledger's reason
// (ErrBadNonce's code when the nonce was used) or ErrDropped.
func (n *Node) Submit(ctx context.Context, tx []byte) (query.SubmitResult, error) {
	// Subscribe before the broadcast: every block that can include the
	// transaction comes after it.
	bus := n.node.EventBus()
	subscriber := fmt.Sprintf("zos-submit-%d", n.submits.Add(1))
	sub, err := bus.Subscribe(ctx, subscriber, types.EventQueryNewBlock, blockEventBuffer)
	if err != nil {
		return query.SubmitResult{}, fmt.Errorf("chain: subscribe to new blocks: %w", err)
	}
	defer func() { _ = bus.UnsubscribeAll(context.Background(), subscriber) }()
	r, err := n.client.BroadcastTxSync(ctx, tx)
	if err != nil {
		return query.SubmitResult{}, fmt.Errorf("chain: broadcast: %w", err)
	}
	hash := r.Hash.String()
	if r.Code != 0 {
		return query.SubmitResult{Code: r.Code, Log: r.Log, Hash: hash}, nil
	}
	key := types.Tx(tx).Key()
	for {
		select {
		case <-ctx.Done():
			return query.SubmitResult{}, fmt.Errorf("chain: waiting for tx %s: %w", hash, ctx.Err())
		case <-sub.Canceled():
			reason := sub.Err()
			if reason == nil {
				reason = errors.New("node stopped")
			}
			return query.SubmitResult{}, fmt.Errorf("chain: waiting for tx %s: %w", hash, reason)
		case msg := <-sub.Out():
			ev, ok := msg.Data().(types.EventDataNewBlock)
			if !ok {
				continue
			}
			if i := ev.Block.Txs.Index(tx); i >= 0 && i < len(ev.ResultFinalizeBlock.TxResults) {
				return txResult(ev.Block.Height, hash, ev.ResultFinalizeBlock.TxResults[i]), nil
			}
			if res, gone, err := n.dropped(tx, key, hash, ev.Block.Height); gone {
				n.log.Info("transaction left the mempool without a block", "hash", hash, "height", ev.Block.Height,
					"code", res.Code, "log", res.Log, "err", err)
				return res, err
			}
		}
	}
}

func txResult(height int64, hash string, r *abci.ExecTxResult) query.SubmitResult {
	res := query.SubmitResult{Code: r.Code, Log: r.Log, Height: height, Hash: hash}
	var data struct {
		Created uint64 `json:"created"`
	}
	_ = json.Unmarshal(r.Data, &data)
	res.Created = data.Created
	return res
}

// dropped reports whether tx, which no block up to height included, can no
// longer be committed, and why. While the machine is past height it gives
// no verdict: the next block, which may hold tx, is being applied, and its
// event follows. That block moves the machine's height before it uses a
// nonce or empties the mempool of what it included, so the height is read
// last.
func (n *Node) dropped(tx []byte, key types.TxKey, hash string, height int64) (query.SubmitResult, bool, error) {
	_, err := n.app.m.CheckTx(tx)
	used := errors.Is(err, ledger.ErrBadNonce)
	if !used && n.inMempool(key) {
		return query.SubmitResult{}, false, nil
	}
	if n.app.m.Height() > height {
		return query.SubmitResult{}, false, nil
	}
	switch {
	case used:
		return query.SubmitResult{Code: ledger.Code(err), Hash: hash,
			Log: err.Error() + ": another transaction of the signer used the nonce while this one waited in the mempool"}, true, nil
	case err != nil:
		return query.SubmitResult{Code: ledger.Code(err), Hash: hash, Log: "dropped from the mempool: " + err.Error()}, true, nil
	}
	return query.SubmitResult{}, true, fmt.Errorf("%w: tx %s, at height %d", ErrDropped, hash, height)
}

// inMempool reports whether the mempool holds the transaction; a mempool
// that cannot tell is taken to hold it (only a used nonce ends the wait).
func (n *Node) inMempool(key types.TxKey) bool {
	mp, ok := n.node.Mempool().(interface{ InMempool(types.TxKey) bool })
	return !ok || mp.InMempool(key)
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
