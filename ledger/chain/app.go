package chain

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"strconv"
	"sync/atomic"

	abci "github.com/cometbft/cometbft/abci/types"

	"github.com/zosgrid/zos/ledger"
)

// App is the ABCI application: CometBFT calls it, it calls the machine.
type App struct {
	abci.BaseApplication
	m   *ledger.Machine
	log *slog.Logger
	// snap is where Commit saves the state every snapEvery blocks ("" to
	// never save); committed is the last height Commit saw.
	snap      string
	snapEvery int64
	committed atomic.Int64
}

var _ abci.Application = (*App)(nil)

// NewApp wraps a machine in the genesis state.
func NewApp(m *ledger.Machine, log *slog.Logger) *App {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &App{m: m, log: log}
}

// Machine returns the state machine, for queries.
func (a *App) Machine() *ledger.Machine { return a.m }

// Info tells CometBFT how far the app is, so it replays the rest.
func (a *App) Info(context.Context, *abci.InfoRequest) (*abci.InfoResponse, error) {
	h := a.m.Height()
	resp := &abci.InfoResponse{Data: "zos-ledger", Version: "1", AppVersion: 1, LastBlockHeight: h}
	if h > 0 {
		resp.LastBlockAppHash = a.m.AppHash()
	}
	return resp, nil
}

// InitChain checks the genesis CometBFT holds is the one the machine was
// built from, and returns the genesis app hash.
func (a *App) InitChain(_ context.Context, req *abci.InitChainRequest) (*abci.InitChainResponse, error) {
	if req.ChainId != a.m.ChainID() {
		return nil, fmt.Errorf("chain: genesis chain id %q, ledger built for %q", req.ChainId, a.m.ChainID())
	}
	if len(req.AppStateBytes) > 0 {
		var g ledger.Genesis
		if err := json.Unmarshal(req.AppStateBytes, &g); err != nil {
			return nil, fmt.Errorf("chain: genesis app_state: %w", err)
		}
	}
	return &abci.InitChainResponse{AppHash: a.m.AppHash()}, nil
}

// CheckTx admits well-signed transactions with a fresh nonce to the mempool.
func (a *App) CheckTx(_ context.Context, req *abci.CheckTxRequest) (*abci.CheckTxResponse, error) {
	if _, err := a.m.CheckTx(req.Tx); err != nil {
		return &abci.CheckTxResponse{Code: ledger.Code(err), Log: err.Error()}, nil
	}
	return &abci.CheckTxResponse{Code: abci.CodeTypeOK}, nil
}

// FinalizeBlock applies the block.
func (a *App) FinalizeBlock(_ context.Context, req *abci.FinalizeBlockRequest) (*abci.FinalizeBlockResponse, error) {
	res, err := a.m.ApplyBlock(req.Height, req.Txs)
	if err != nil {
		return nil, fmt.Errorf("chain: finalize block %d: %w", req.Height, err)
	}
	out := &abci.FinalizeBlockResponse{TxResults: make([]*abci.ExecTxResult, len(res.Txs)), AppHash: res.AppHash}
	for i, r := range res.Txs {
		out.TxResults[i] = &abci.ExecTxResult{Code: r.Code, Log: r.Log, Data: resultData(r.Created), Events: abciEvents(r.Events)}
	}
	out.Events = abciEvents(res.Events)
	return out, nil
}

// resultData is the JSON {"created":N} ({} when nothing was created) that
// clients read; built by hand because it is made for every transaction.
// The bytes are part of CometBFT's results hash: never change them.
func resultData(created uint64) []byte {
	if created == 0 {
		return []byte("{}")
	}
	b := append(make([]byte, 0, 32), `{"created":`...)
	b = strconv.AppendUint(b, created, 10)
	return append(b, '}')
}

func abciEvents(evs []ledger.Event) []abci.Event {
	if len(evs) == 0 {
		return nil
	}
	out := make([]abci.Event, 0, len(evs))
	for _, e := range evs {
		attrs := []abci.EventAttribute{}
		add := func(k string, v uint64) {
			if v != 0 {
				attrs = append(attrs, abci.EventAttribute{Key: k, Value: strconv.FormatUint(v, 10), Index: true})
			}
		}
		add("contract", e.Contract)
		add("node", uint64(e.Node))
		add("twin", uint64(e.Twin))
		add("amount", e.Amount)
		out = append(out, abci.Event{Type: e.Type, Attributes: attrs})
	}
	return out
}

// Commit saves a snapshot of the state every snapEvery blocks. A failed
// save is logged, not fatal: the block store still holds every block, so
// the next start replays from an older snapshot or from genesis.
func (a *App) Commit(context.Context, *abci.CommitRequest) (*abci.CommitResponse, error) {
	h := a.m.Height()
	a.committed.Store(h)
	if a.snap != "" && a.snapEvery > 0 && h%a.snapEvery == 0 {
		a.saveSnapshot()
	}
	return &abci.CommitResponse{}, nil
}

// saveSnapshot writes the state of the last committed block, if the
// machine is at it (it is between Commits).
func (a *App) saveSnapshot() {
	if a.snap == "" || a.m.Height() != a.committed.Load() || a.m.Height() == 0 {
		return
	}
	if err := writeSnapshot(a.snap, a.m.Snapshot()); err != nil {
		a.log.Error("saving ledger snapshot", "height", a.m.Height(), "err", err)
		return
	}
	a.log.Debug("ledger snapshot saved", "height", a.m.Height())
}
