// Package zdb owns the Zero-DB storage engine: namespaces of append-only data
// and index files in 0-db's on-disk format (a directory written by 0-db opens
// here and one written here opens in 0-db), the in-memory key index, history,
// group commit, torn-tail repair and the offline verifier.
//
// # Layout
//
//	<index>/<ns>/zdb-namespace   namespace descriptor (0-db format)
//	<index>/<ns>/zos-namespace   zos side file 0-db ignores (lock, freeze, password hash)
//	<index>/<ns>/iN              index file N (describes data file N)
//	<data>/<ns>/dN               data file N
//
// All integers are little-endian, structures packed. The checksum is 0-db's
// CRC32C: Castagnoli polynomial, initial value 0, no final inversion (not
// the standard CRC32C). In user mode the data file of an entry is the index
// file's own id: 0-db writes 0 in the entry's data id for new keys and
// ignores the field when loading (checked against a build of 0-db 2.0.7).
//
// Descriptor (15 bytes + name + password): u32 version=1 | u8 namelen |
// u8 passlen | u64 maxsize | u8 flags (1 public, 2 worm, 4 extended).
//
// Index file header (29 bytes): "IDX0" | u32 version=4 | u64 created=0 |
// u64 opened=0 | u32 fileid | u8 mode (0 user, 1 seq). Entry (34 bytes + key):
// u8 keylen | u32 data offset | u32 payload length | u32 previous entry offset
// in this index file | u8 flags (1 deleted) | u32 data file id |
// u32 timestamp | u32 CRC32C of payload | u32 parent index file id |
// u32 parent entry offset (the previous version of the key) | key.
//
// Data file header (28 bytes): "DAT0" | u32 version=3 | u64 created=0 |
// u64 opened=0 | u32 fileid. Record (18 bytes + key + payload): u8 keylen |
// u32 payload length | u32 previous record offset | u32 CRC32C of payload |
// u8 flags (1 deleted) | u32 timestamp | key | payload. A delete appends a
// zero-length record flagged deleted (a tombstone) and flips the deleted flag
// of the live index entry in place; an overwrite in user mode flips the old
// entry and appends a new one whose parent points at it. In seq mode keys are
// 8-byte little-endian ids equal to the entry's position across index files;
// an overwrite appends a deleted copy of the old entry and rewrites the entry
// at its fixed position.
//
// # Memory
//
// The user-key index (keyIndex) is a byte arena in 1 MiB chunks (flags, key length, a
// 28-byte location, the key) under an open-addressing table of 8-byte
// slots: about 84 bytes per 16-byte key at 1 M keys, allocated as it grows
// (0-db: 64 bytes + key per entry plus a 128 MiB table up front). Seq mode
// keeps no per-key memory: an id's entry sits at a computed offset.
//
// # Writes and crash safety
//
// Writes are appended to an in-memory batch; Commit writes every batch that
// arrived together with one write per file (and one fsync under Sync) before
// the server acknowledges them. In-place flag flips are applied after the
// appends they depend on. On open, the tail of the last index file is checked
// against its data file (bounds and CRC32C); a torn or corrupt tail is
// truncated and reported, and data records past the last good one are cut.
// Verify checks a closed directory without changing it.
//
// # Reads
//
// Values are copied out of read-only shared maps of the data files (one
// per file, made on first read; see mapping) and checked against their
// CRC32C on every read: no system call per GET, the page cache is the
// cache. The value cache keeps values read with pread, where a file cannot
// be mapped (and with NoMap, values just written), which it serves without
// a CRC check since they were checked when they entered it. Copying every
// written value into it as well cost a third of a 64-byte SET at -P 16
// and most of the RSS at 1 M keys, for GETs the maps serve as fast.
//
// May import: the standard library and internal/atomicfile.
// Must never be imported by: resp (which sits below it).
package zdb
