// Command ledger benchmarks the zos ledger against CometBFT's own kvstore
// example application on the same engine settings (the ceiling: the same
// consensus with an app that does nothing):
//
//   - committed transactions per second with one validator, for
//     timeout_commit 1s and 100ms (mempool 5000): W senders loop on
//     broadcast_tx_async for a fixed time, retrying rejections at once, and
//     the committed count is Σ num_txs over the blocks of the run divided by
//     the span of their header times (perf-anchors §3). zos transactions are
//     real signed transfers, pre-signed before the clock starts;
//   - the time to bill 100 000 node contracts over one billing cycle,
//     in-process on the state machine.
//
// The cometbft binary is built from the module (go install …@v1.0.1) into a
// temporary directory at run time; nothing built is kept. zos comes from
// $ZOS_BIN (make build). Run: go run ./bench/ledger [-duration 20s -runs 3].
//
// May import: anything; nothing imports a command.
package main
