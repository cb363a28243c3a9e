// Package flist owns the flist (ZOS-FS) format: the SQLite ".fl" metadata
// file, compatible with rfs (FungiList v2), the per-block crypto, the
// canonical metadata hash and the ed25519 signatures over it.
//
// # The .fl file
//
// A .fl file is an SQLite database (journal mode DELETE) with the five rfs
// tables, created with rfs's exact schema (see schema.go):
//
//	inode(ino INTEGER PK AUTOINCREMENT, parent, name, size, uid, gid, mode, rdev, ctime, mtime)
//	extra(ino PK, data)          symlink target (bytes)
//	block(ino, id, key)          a regular file's chunks, row order = chunk order; id, key are 32-byte blobs
//	tag(key PK, value)           free metadata (version, description, author, ...)
//	route(start, end, url)       store routing: first byte of a block id in [start,end] => url
//
// The root directory is ino 1 with parent 0 and name "/". mode is the raw
// Linux st_mode (type bits and permissions).
//
// zos adds tables that rfs never reads, so flists made by zos mount with rfs
// and flists made by rfs mount with zos:
//
//	zos_xattr(ino, name, value)        extended attributes (security.capability, ...)
//	zos_hardlink(ino PK, target)       ino is a hard link to target; rfs sees an independent
//	                                   copy (both rows carry the full block list)
//	zos_meta(key PK, value)            opaque metadata; "image-config" holds an OCI image config (JSON)
//	zos_signature(pubkey PK, signature) ed25519 signatures over the metadata hash
//
// # Blocks
//
// Files are cut into BlockSize (512 KiB) chunks from offset 0. For each chunk:
// key = BLAKE2b-256(plain); compressed = snappy raw (block) format;
// ciphertext = AES-256-GCM(key, nonce = key[:12], compressed) with the tag
// appended; id = BLAKE2b-256(ciphertext). Stores hold ciphertext under id.
// DecodeBlock checks the id before decrypting and the key after
// decompressing, so a tampered block is never returned.
//
// # Metadata hash and signatures
//
// Hash returns BLAKE2b-256 over a canonical, length-prefixed encoding of every
// table except zos_signature (inode by ino, extra by ino, block by ino then
// row order, tag by key, route by row order, zos_xattr by ino and name,
// zos_hardlink by ino, zos_meta by key); see hash.go for the exact encoding.
// A signature is ed25519 over "zos-flist-signature-v1\x00" || hash. Changing
// any table (a tag, a route) changes the hash and invalidates signatures.
// Deployments reference this hash, so a signed deployment pins exact content.
//
// ExecSet lists every regular file with an execute bit and its content digest
// (BLAKE2b-256 over the concatenated block keys; ContentDigest computes the
// same value from a plain reader). It backs exec verification: see
// flist/mount's doc.
//
// May import: the standard library, key, modernc.org/sqlite, x/crypto, snappy.
// Must never be imported by: nothing; it is the shared format (stores, pack,
// mount, hub and the container runtime all use it).
package flist
