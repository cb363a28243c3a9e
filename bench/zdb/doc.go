// Command zdb (run as `go run ./bench/zdb`) benchmarks `zos zdb` side by side
// with redis-server (AOF, fsync every second) and, when ZDB_REFERENCE names a
// 0-db binary, the C 0-db it replaces.
//
// Owns: starting each server in a fresh temporary directory on a free
// loopback port, driving redis-benchmark with the method of the storage
// anchors (SET on a random keyspace of 2e9 keys, GET on preloaded keys;
// values of 64 B and 4 KiB; -c 1 -P 1, -c 50 -P 1, -c 50 -P 16; median of
// several passes, fresh servers each pass, the servers taking turns row by
// row in a rotating order, so that the drift of this shared machine's speed
// over tens of seconds favours none of them), and a memory/start-up
// comparison with 1 M keys (VmRSS after loading, time from restart to the
// first PONG). It prints markdown tables with the ratios zos/redis and
// zos/0-db: requests/s, and the server's CPU time per request (all its
// threads, from /proc/PID/task/*/schedstat). It is a tool, not a test:
// nothing here passes or fails on timings.
//
// May import: the standard library, github.com/redis/go-redis/v9 (the
// pipelined loader) and internal/freeport (ports held for the servers). It
// talks to the servers only over the network, so it imports no other zos
// package.
// Must never be imported by: anything (it is package main).
package main
