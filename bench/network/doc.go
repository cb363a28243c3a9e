// Command network benchmarks zos networking side by side with the peers a
// user would run instead: TCP throughput (iperf3) and round-trip latency
// between workloads on two nodes, over the zos private network and the zos
// overlay, against raw veth between the same namespaces (the physical limit
// here), standalone wireguard-go and a standalone yggdrasil daemon. The
// standalone binaries are built with `go install` from the module versions
// this repository requires, into a temporary directory, at bench time.
//
// Run as root: go run ./bench/network [-t seconds]. It prints a markdown table.
//
// May import: network/wg (to configure the standalone wireguard-go over its
// UAPI), the standard library, netns.
// Must never be imported by: anything (it is a program).
package main
