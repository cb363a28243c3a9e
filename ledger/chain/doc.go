// Package chain owns the ledger's consensus edge: the one ABCI application
// (App) that feeds CometBFT's ordered blocks to the ledger state machine,
// and an embedded CometBFT node (Run) with its files under a home directory:
//
//	HOME/ledger.json                     zos settings (listen addresses, peers, timeouts)
//	HOME/config/genesis.json             CometBFT genesis; app_state is the ledger.Genesis
//	HOME/config/node_key.json            p2p identity
//	HOME/config/priv_validator_key.json  validator key (never printed)
//	HOME/data/                           CometBFT block store, state and validator state
//	HOME/data/ledger.snapshot            the ledger state (ledger.Machine.Snapshot)
//
// The ledger state lives in memory and is saved to HOME/data/ledger.snapshot
// at Commit every Settings.SnapshotEvery blocks and on a clean stop, written
// atomically (temporary file, fsync, rename, fsync of the directory). On
// start the app loads it and reports its height and app hash in Info, so
// CometBFT's handshake replays only the stored blocks after it (and checks
// the app hash). No snapshot, or one that fails its checksum or belongs to
// another genesis, is logged and the app starts from genesis: CometBFT then
// replays every block, which rebuilds the same state (the determinism the
// state machine guarantees). The block store stays the durable copy.
//
// May import: ledger, ledger/query, grid, key, cometbft and the standard library.
// Must never be imported by: ledger (the state machine) or any engine; only
// cmd/zos and bench/ledger wire it.
package chain
