// Package wg owns the userspace WireGuard devices of private networks: it
// runs a wireguard-go device on a kernel TUN that lives in one network
// namespace while its UDP socket lives in another, serves the device's UAPI
// on a Unix socket, and speaks that UAPI as a client (configure peers
// without disturbing unchanged ones, read handshakes and byte counters).
// WireGuard keys are their own types here; private keys cannot be printed.
//
// May import: network/internal/netnsx, the standard library,
// golang.zx2c4.com/wireguard, golang.org/x/crypto.
// Must never be imported by: shared packages (grid, resp, flist).
package wg
