// Package overlay owns the node's planetary overlay: an embedded Yggdrasil
// core (yggdrasil-go) keyed by the node's ed25519 identity, so its overlay
// address (200::/7) and the /64 routed to it follow from the node key, and a
// kernel TUN that carries the overlay's IPv6 traffic for the node and the
// workloads attached to its /64. Traffic across the overlay is end-to-end
// encrypted by Yggdrasil.
//
// Namespaces: the TUN and the listeners are created in Config.HostNS, but
// the core dials its peers from goroutines, so outbound peerings use the
// process's own namespace. Run the process inside the host namespace (as
// `zos network overlay run` does under `ip netns exec`) unless peers are
// reachable from both, such as unix:// peers in tests.
//
// May import: key, network/internal/netnsx, the standard library, yggdrasil-go.
// Must never be imported by: shared packages (grid, resp, flist).
package overlay
