// Package network owns a node's private networks: the JSON network workload
// spec and its validation, and applying it on a host namespace. Per network it
// builds a namespace n-<id> holding a bridge for local workloads, a
// wireguard-go device whose UDP socket stays in the host namespace, routes to
// the peers' subnets and NAT for outbound traffic through a shared DMZ
// namespace. It attaches workload namespaces with veth pairs, and puts the
// network wall (nftables) on the host's outward interface.
//
// The host namespace is a parameter (Config.HostNS), so the same code runs on
// a real node and on a node simulated by a namespace in the end-to-end tests.
// Everything this package creates is named from Config.Prefix, so several
// simulated nodes can share one machine.
//
// Layout, per node (names without the prefix):
//
//	host ns:  outward interface (wall), veth "zdmz" 100.126.0.1/30, masquerade
//	ndmz:     veth "uplink" 100.126.0.2/30, bridge "br-ndmz" 100.127.0.1/16,
//	          masquerade out of uplink, drops new traffic to itself
//	n-<id>:   bridge "br0" <subnet>.1/24, wireguard TUN "wg0" 100.64.a.b/16,
//	          veth "public" 100.127.x.y/16 on br-ndmz (default route),
//	          masquerade out of public, drops new inbound from public
//	host ns:  bridge "br-ygg" <overlay /64>::1 for workloads' overlay
//	          addresses; they may only reach the overlay (table zos-ygg)
//
// Workloads attach with a veth whose MTU matches the tunnel (1420 for
// WireGuard, the overlay TUN's for the overlay). The state cache under
// Config.StateDir holds <id>.json per network (0600: it has the private key),
// the device sockets, wall.json and overlay-attachments.json.
//
// May import: network/wg, network/internal/netnsx, the standard library,
// netlink, netns, nftables, internal/atomicfile, internal/dirlock.
// Must never be imported by: grid, provision (it declares its own interface),
// or any shared package.
package network
