// Package chain owns the ledger's consensus edge: the one ABCI application
// (App) that feeds CometBFT's ordered blocks to the ledger state machine,
// and an embedded CometBFT node (Run) with its files under a home directory:
//
//	HOME/ledger.json                     zos settings (listen addresses, peers, timeouts)
//	HOME/config/genesis.json             CometBFT genesis; app_state is the ledger.Genesis
//	HOME/config/node_key.json            p2p identity
//	HOME/config/priv_validator_key.json  validator key (never printed)
//	HOME/data/                           CometBFT block store, state and validator state
//
// The ledger state lives in memory. On start the app reports height 0 and
// CometBFT replays its stored blocks into a fresh state machine, so the
// block store is the only copy and a restarted validator rebuilds exactly
// the state it had (the determinism the state machine guarantees).
//
// May import: ledger, ledger/query, grid, key, cometbft and the standard library.
// Must never be imported by: ledger (the state machine) or any engine; only
// cmd/zos and bench/ledger wire it.
package chain
