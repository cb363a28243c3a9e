// Package hubapi is the wire contract of the hub, shared by the server (hub)
// and its clients (flist/store's hub store, the CLI): the request signing
// scheme and the JSON bodies. It is a leaf: clients import it without
// importing the server.
//
// A write carries the headers X-Zos-Key (hex ed25519 public key), X-Zos-Time
// (unix seconds), X-Zos-Nonce (16 to 64 characters, random) and
// X-Zos-Signature (hex ed25519 signature) over
//
//	"zos-hub-request-v1\n" METHOD "\n" PATH?QUERY "\n" TIME "\n" NONCE "\n" hex(SHA-256(body))
//
// May import: the standard library, key.
// Must never be imported by: nothing in particular; it holds no logic beyond
// encoding.
package hubapi
