// Package ledger owns the grid's deterministic state machine: accounts with
// balances and nonces, twins (and group twins with proposals and approvals),
// farms with public IPs, nodes with capacity and uptime, node, name and rent
// contracts with their states and events, and billing every cycle from what
// nodes report, with a bill history per contract.
//
// The machine is a function of its state and ordered, signed transactions:
// Machine.ApplyBlock(height, txs) changes the state, returns one result per
// transaction and the block's events, and AppHash commits to the result.
// It reads no clock, draws no randomness, opens no socket or file, and never
// lets map iteration order reach a result: every iteration that matters is
// sorted. Time is counted in blocks (Params.BlockSeconds converts blocks to
// the seconds the pricing uses). The chain engine (ledger/chain) feeds it
// blocks; the same code runs with one validator or many.
//
// The app hash chains the previous hash with every object the block changed:
// SHA-256(prev ‖ height ‖ for each changed key in sorted order: key, value),
// where values are the JSON encoding of the object (struct fields in a fixed
// order, no maps) and strings and integers are length-prefixed.
//
// Every transaction that passes the signature and nonce checks pays
// Params.TxFee to the treasury before its message runs, and the fee stays
// paid when the message fails; a signer who cannot pay it gets no effect.
//
// Machine.Snapshot encodes the whole state (derived indexes and the event
// journal included) for ledger/chain to save: a line "zos-ledger-snapshot 1",
// a line with the hex SHA-256 of the body, then the body as JSON (maps as
// slices sorted by key, and the genesis it belongs to). Restore refuses a
// snapshot whose checksum, version or genesis does not match (ErrSnapshot).
//
// Amounts are integers in "units" (10⁷ units = 1 USD in the reference
// pricing); balances are held in the same unit.
//
// May import: the standard library (no net, os, time, math/rand or crypto/rand;
// net/netip only, to parse addresses), key, grid.
// Must never be imported by: grid or any engine package. Only ledger/chain,
// ledger/query and cmd wire it up. deps_test.go enforces the import rules.
package ledger
