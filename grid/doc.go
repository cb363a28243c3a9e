// Package grid owns the types every part of the grid shares: deployments and
// their workloads (zmachine, volume, disk, network, zdb, gateway name and FQDN
// proxies, public IP, logs), capacity (cru, mru, sru, hru, ipv4u), the
// canonical deployment hash, multisignature verification, twin and node key
// types and the one name validator.
//
// The deployment hash is SHA-256 over one length-prefixed binary encoding
// (see encode.go): every integer is 8 bytes big-endian, every string or byte
// string is its 8-byte length followed by its bytes, every list is its
// 8-byte count followed by its items, and the encoding starts with the domain
// string "zos-deployment-v1". It covers the version, owner twin, metadata,
// description, every workload (version, name, type, metadata, description,
// typed data) and the signature requests and threshold. It excludes the
// contract id (the hash goes into the contract, which is created first),
// the signatures and the results. Vectors live in testdata/hash_vectors.json.
//
// Verification returns Verified[Deployment], a type only this package can
// build, so an engine cannot act on a deployment nobody checked.
//
// May import: the standard library and key.
// Must never be imported by: nothing; but grid imports no engine, service or
// chain package (deps_test.go enforces it).
package grid
