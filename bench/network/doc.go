// Command network benchmarks zos networking side by side with the peers a
// user would run instead: TCP throughput (iperf3) and round-trip latency
// between workloads on two nodes, over the zos private network and the zos
// overlay, against raw veth between the same namespaces (the physical limit
// here), standalone wireguard-go and a standalone yggdrasil daemon. The
// standalone binaries are built with `go install` from the module versions
// this repository requires, into a temporary directory, at bench time.
//
// Next to Gbit/s and RTT it prints the CPU-seconds per GB received of the
// tunnel processes and of iperf3 (/proc/<pid>/stat and iperf3's own figures):
// on a shared machine these tell a less efficient tunnel from a starved one.
// A diagnostic row runs the standalone wireguard-go daemons each in a
// session of their own (setsid), which shows what a scheduling autogroup of
// its own costs a tunnel daemon (the zos device helper stays in its
// caller's session for that reason).
//
// Run as root: go run ./bench/network [-t seconds] [-rounds n]. It prints a
// markdown table.
//
// May import: network/wg (to configure the standalone wireguard-go over its
// UAPI), network/nettest (namespaces), the standard library.
// Must never be imported by: anything (it is a program).
package main
