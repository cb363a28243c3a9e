// Command zos-ledger is the grid ledger's chain engine: a CometBFT validator
// running the ledger state machine, with its JSON API. Users reach it as
// `zos ledger init|start|testnet`, which execute this binary, found beside
// the zos binary or in PATH.
//
// Why a second binary: the node binary starts several times for every
// container (the command, libcontainer's init, the supervisor inside), and
// CometBFT's package initialisation (protobuf registries, gRPC, the
// database backends) cost every one of those starts about 33 ms of a
// 57 ms start (measured with GODEBUG=inittrace=1 and perf stat). Nodes do
// not run validators; validators are the only users of this engine. Every
// ledger client (transactions, queries, estimates) stays in zos.
//
// Owns: flag parsing and wiring of ledger/chain. No logic lives here.
//
// May import: ledger, ledger/chain, ledger/query, key, spf13/cobra and the
// standard library. Must never be imported by: anything (it is package main).
package main
