// Package erofs owns the writer of EROFS images that hold a tree's metadata
// and no file data, the composefs way: the kernel mounts the image
// (`mount -t erofs -o ro img mnt`), and overlayfs stacks it over a data-only
// layer so that a regular file carrying trusted.overlay.metacopy and
// trusted.overlay.redirect reads its bytes from a cache file. The package
// knows nothing of flists, caches or mounts: the caller turns its tree into
// []Entry and Write lays out the image.
//
// May import: the standard library and golang.org/x/sys/unix only.
// Must never be imported by: nothing restricted (it is shared, leaf code).
//
// # Image layout
//
// All integers are little endian; the block size is 4096 bytes.
//
//   - Block 0 holds the 128-byte superblock at offset 1024 (magic
//     0xE0F5E1E2, blkszbits 12, meta_blkaddr 0, root_nid, inos, blocks,
//     feature_compat SB_CHKSUM with the crc32c of bytes 1024..4095,
//     feature_incompat CHUNKED_FILE when a regular file is not empty).
//     epoch and fixed_nsec (the old build_time and build_time_nsec) are the
//     mtime most inodes have, the earliest among equals, and the uuid is
//     derived from the image's bytes, so that an image is a pure function of
//     its entries.
//   - The metadata area follows the superblock, meta_blkaddr being 0: an
//     inode's nid is its byte offset / 32, so the root's nid is 36. Inodes
//     are laid out breadth first (siblings' inodes sit together, as ls -l
//     reads them), a hard-linked inode once. An inode whose mtime is the
//     epoch, with uid, gid and nlink below 65536 and a size below 4 GiB, is
//     the 32-byte compact form, its i_mtime 0 (kernels before 6.15 read no
//     i_mtime and take the epoch; later ones add i_mtime to it, so both
//     agree). Every other inode is the 64-byte extended form (32-bit
//     uid/gid, 64-bit mtime and its nanoseconds, 32-bit nlink). The inode
//     is followed by its xattrs, then by its layout's tail:
//   - xattrs are stored in the inode body: a 12-byte header (no shared
//     xattrs, no name filter) then entries {name_len u8, name_index u8,
//     value_size u16, name suffix, value} padded to 4 bytes, the name index
//     being the predefined prefix (user. 1, system.posix_acl_access 2,
//     system.posix_acl_default 3, trusted. 4, security. 6).
//   - Regular files: an empty file is FLAT_PLAIN with no block; any other is
//     CHUNK_BASED with the smallest chunk size (at most 4096<<31) that makes
//     one chunk cover the file, and a 4-byte block map whose entries are all
//     EROFS_NULL_ADDR: the file reads as zeros and costs 4 bytes.
//   - Directories and symlinks: FLAT_INLINE (the whole content right after
//     the xattrs, in the inode's block) when inode, xattrs and content fit
//     in one block, else FLAT_PLAIN with the content in data blocks after
//     the metadata area. An inode with inline content never crosses a block
//     boundary, and an inline directory is followed by at least one NUL
//     unless it ends its block (lookups read a block's last name up to a
//     NUL or the block's end); other inodes may cross blocks, as the kernel
//     allows.
//   - Directory content: blocks of dirents {nid u64, nameoff u16,
//     file_type u8, reserved u8} then their names (no NUL); names, "." and
//     ".." included, are sorted by bytes across the whole directory, and
//     each block holds whole entries only, since the kernel's lookup
//     binary-searches blocks by their first name, then within the block.
//   - Device numbers use the kernel's 32-bit new_encode_dev form.
//
// Mtime is an int64: it is stored as the uint64 bits of that int64, which
// the kernel reads back as a signed time, so dates before 1970 work.
package erofs
