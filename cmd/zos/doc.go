// Command zos is the binary of the project: a cobra root command with one
// subcommand per service or tool. The exceptions are the ledger's chain
// engine, cmd/zos-ledger, which `zos ledger init|start|testnet` execute,
// and cmd/zos-init, the supervisor containers start as PID 1 (`zos init`
// is here too); see there why they are apart.
//
// Owns: flag parsing and the wiring of each service from its package. No
// logic lives here: a command turns flags into a config, calls the package's
// constructor and runs it.
//
// May import: every package of the module except ledger/chain (CometBFT;
// see cmd/zos-ledger).
// Must never be imported by: anything (it is package main).
package main
