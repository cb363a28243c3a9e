// Package hub is the flist hub: an HTTP JSON service that stores encrypted
// flist blocks and .fl metadata files in zdb namespaces, serves them to
// mounts and packers, and converts container images into flists.
//
// # API (JSON, loopback by default)
//
//	GET|HEAD /api/v1/block/{id}          a block (public)
//	POST     /api/v1/block               store a block; its id is BLAKE2b-256 of the body (signed)
//	POST     /api/v1/block/verify        {"ids":[hex...]} -> {"missing":[hex...]} (public)
//	GET      /blocks/{id[0:2]}/{id}      rfs http store layout, so http://hub/blocks is a store URL
//	PUT      /api/v1/flists/{user}/{name} upload a .fl; refused (409, with the missing ids)
//	                                     unless the hub holds every block it references (signed by user)
//	GET      /api/v1/flists/{user}       list a user's flists and tags (public)
//	GET      /api/v1/flists/{user}/{name} a .fl by name or tag (public)
//	DELETE   /api/v1/flists/{user}/{name} forget a name (signed by user)
//	PUT      /api/v1/tags/{user}/{tag}   {"name": n} or {"hash": h}: point a tag at a version (signed by user)
//	DELETE   /api/v1/tags/{user}/{tag}   (signed by user)
//	GET      /api/v1/flist/{hash}        a .fl by content hash (public)
//	POST     /api/v1/convert             {"image","name","platform"} queue a conversion (signed)
//	GET      /api/v1/convert/{id}        job state and progress (public)
//	POST     /api/v1/admin/gc            {"grace","dry_run"} garbage collection (signed by an admin key)
//	GET      /metrics, /healthz
//
// A user is an ed25519 public key (64 hex digits in paths). Writes are
// signed as package hubapi describes; the hub accepts a time within MaxSkew
// of its clock and each (key, nonce) once while it is in that window, so a
// captured request cannot be replayed.
//
// # Storage
//
// Blocks live in one zdb namespace, keyed by the raw 32-byte id. Metadata
// lives in another: "fl:HASH" is a .fl file's manifest (size, parts), its
// bytes are split into 1 MiB values "flp:HASH:N" (zdb caps value sizes), and
// "user:HEX" is a user's index (names -> hash, tags -> hash). HASH is the
// BLAKE2b-256 of the .fl file. The index entry is written last, so a failed
// upload leaves no visible flist; .fl bodies and blocks are content-addressed
// and shared, and deleting a name does not delete them: garbage collection
// (gc.go, POST /api/v1/admin/gc) does, once no name or tag points to them,
// for blocks older than a grace period by their zdb write time. Conversion job records
// ("job:<id>", index "jobs", the last 1000) are kept in the metadata namespace:
// after a restart finished jobs stay queryable and jobs the previous process
// left queued or running are reported failed, "interrupted by restart" (not
// re-queued: pull credentials are never stored). Served blocks are kept in a bounded in-memory LRU
// (Config.CacheBytes); only copies that hash to their id are cached.
//
// # Conversion
//
// With Config.EnableConvert, POST /api/v1/convert pulls a registry image
// (never a local path), flattens it (flist/pack/oci) and packs it with its
// blocks written straight into the block namespace; the result is checked
// and named like an upload. At most MaxJobs run at once and 16*MaxJobs may
// wait; more are refused (503). Registry credentials in the request are used
// for that pull only (never stored, logged or returned); without them the
// pull is anonymous: the hub never lends its own docker credentials. A public hub converting user-supplied references can
// be pointed at internal addresses: keep it on loopback or behind
// --authorized-keys.
//
// May import: the standard library, key, hub/hubapi, flist, flist/store, flist/pack,
// flist/pack/oci, go-redis, prometheus client_golang.
// Must never be imported by: engines (flist/*, zdb, container, ...); only
// cmd/zos wires it.
package hub
