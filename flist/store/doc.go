// Package store owns the block stores of flists and the URL scheme that
// names them (as in rfs):
//
//	dir:///path                                   files <path>/<hex[0:2]>/<hex(id)> (flat <path>/<hex> read as fallback)
//	zdb://[user[:pass]@]host[:port][/namespace]   RESP: SELECT ns [pass] on connect, GET/SET/EXISTS with the raw 32-byte id as key; port 9900
//	zdb:///path/to/unix.socket
//	http(s)://host/path                           read-only: GET <url>/<hex[0:2]>/<hex>, then <url>/<hex>
//	hub+http(s)://host[:port][?key=KEYFILE]       a zos hub's block API (hub.go): public GET/HEAD, POST signed with
//	                                              the key; routes saved in flists become the hub's http://host/blocks
//
// and the Router, which combines stores by "xx-yy=URL" ranges of the first
// byte of the block id: writes go to every matching store (replication),
// reads try the matching stores in turn and fail over.
//
// # The Store contract
//
// Get returns the stored bytes of a block and guarantees they hash to the
// id (else flist.ErrCorruptBlock, so a router can fail over to a good
// copy); a missing block is ErrNotFound. Set stores a block, refusing data
// that does not hash to its id; setting an existing block is a no-op
// success. Has reports presence without transferring the block (pack uses it
// to upload only missing blocks). After Close every method returns
// ErrClosed. All methods are safe for concurrent use. storetest.Run is the
// conformance suite every store passes; a new store (the hub's, for
// example) is done when it passes too.
//
// May import: the standard library, flist, key, hub/hubapi (the hub's wire contract), go-redis,
// internal/regfile.
// Must never be imported by: flist (the format does not know about stores).
package store
