// Package key owns ed25519 identity keys and their files: generating a key,
// saving it (mode 0600, never overwriting), loading it, and the text form of
// public keys ("ed25519:" followed by 64 hex digits).
//
// On disk a private key file holds one line: "zos-ed25519-private:" followed
// by the 32-byte seed in hex. Nothing else is stored, so the file is easy to
// back up and audit.
//
// Private keys cannot be printed or compared with ==: they have no String
// method and contain a slice. Signing and verifying are plain ed25519.
//
// May import: the standard library only.
// Must never be imported by: nothing; every package that signs or verifies
// may use it.
package key
