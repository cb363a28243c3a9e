// Package mount owns the FUSE filesystem of flists (hanwen/go-fuse v2) and
// the node-wide block cache every mount shares.
//
// # Go API (for the container runtime)
//
//	cache, _ := mount.NewCache("/var/cache/zos/blocks", 10<<30, logger) // one per node
//	f, _ := flist.Open(ctx, "app.fl")
//	v, err := f.Verify(ctx, trusted)               // refuse untrusted flists first
//	stores, _ := store.OpenRoutes(routes, store.Options{})
//	m, _ := mount.New(ctx, f, "/run/zos/flist/app", mount.Options{Cache: cache, Store: stores, ExecVerify: true})
//	f.Close()                                      // metadata is in memory now
//	m.ImageConfig()                                // OCI config JSON stored by the importer
//	... overlay lowerdir=/run/zos/flist/app ...
//	m.Unmount()
//
// The mount is read-only and lazy: metadata lives in memory, a block is
// fetched on first read through the shared Cache (decrypted chunk files,
// size-bounded, LRU eviction, one fetch per block however many readers wait
// for it, retries with backoff when the store fails) and files read
// sequentially get the next blocks fetched in the background (read-ahead).
// Trees are read in walk order (depth first, names sorted: tar, cp -r, a
// container starting), so a page cache miss of a file's start also brings
// the files that follow it in that order ahead of the reader, by a few
// workers, in a window that grows while misses show a walk: a small file
// not cached yet that the kernel knows (its directory listed) is fetched
// and its verified content stored whole in the kernel's page cache of its
// inode (FUSE_NOTIFY_STORE), so its read needs no request; a cached file's
// cache file is read into the page cache (posix_fadvise) for its read to
// find it there; of other files the first block is fetched.
// Every fetched block is checked (id, then key after decryption) and a
// cached chunk is re-checked against its key on first use after the cache
// is opened; a mismatch gives EIO and a log line naming the file and block,
// never wrong bytes. Files are opened with FOPEN_KEEP_CACHE (contents are
// immutable), entries, attributes and misses are cached by the kernel for a
// year, and so are directory listings (FOPEN_CACHE_DIR: walking the tree
// again costs no READDIRPLUS) and symlink targets; FLUSH is refused with
// ENOSYS (so the kernel stops sending it) and the daemon serves reads of up
// to 1 MiB per request. A block the daemon has just fetched is served
// from its verified plaintext in memory, not re-read from the file it was
// written to. Small files (under Options.PassthroughMin, 128 KiB) are
// served by the daemon once and then stay in the kernel's page cache of
// the mount: a re-open costs two cheap round trips (open, release) and no
// passthrough setup. For warm reads of larger files and of executables at
// local disk speed the kernel reads cache files itself (FUSE passthrough;
// the choice depends only on the inode, as the kernel refuses to mix both
// modes on one inode): a single-block file is passed through to its chunk
// file; a multi-block file whose blocks are all cached is assembled once
// into a whole-file cache entry (<cache>/whole/<content digest>, counted
// in the size bound, its chunk files moved to the eviction end) and passed
// through to that. A multi-block file read through the daemon is assembled
// in the background when it is closed, so that the next open passes it
// through at once; files not yet fully cached are served by the daemon,
// block by block. Mount.OpStats (and SIGUSR1 of zos flist mount) counts
// the requests served, by operation.
//
// Options.NoOpen (zos flist mount --no-open) trades passthrough for opens
// that never reach the daemon: OPEN is answered ENOSYS once, after which
// the kernel opens every file of the mount by itself and keeps its page
// cache (no OPEN or RELEASE round trip per open, the one cost left on a
// hot read of many small files); reads that miss the page cache are all
// served by the daemon, with one reader state per inode. The OPEN and
// RELEASE round trips are what a hot read of a tree of small files costs
// with opens (they are answered from memory, but each costs the daemon
// two wake-ups, expensive on a virtual machine); the kernel only skips
// them for the whole connection, after an ENOSYS. With ExecVerify the
// daemon cannot see execs then, so it verifies every block of an
// executable before serving the first byte of it (see below).
// Options.AutoNoOpen (--no-open=auto) picks NoOpen for flists whose files
// average under NoOpenMeanSize (64 KiB): on a tree of small files the
// round trips dominate, on large files passthrough reads 2-3x faster.
//
// # Kernel mounts
//
// Once every file of a flist is in the cache, the daemon only relays
// reads, and each FUSE request costs a round trip: a warm read of a tree
// of small files ran at 0.4 of local disk speed. Options.Kernel (zos flist
// mount --kernel, auto for root) then lets the kernel serve the mount
// alone, as composefs does. The metadata is written as an EROFS image
// (internal/erofs) to an unnamed file (O_TMPFILE) in the cache directory;
// in it every regular file with content is an overlayfs metacopy file: no
// data, and xattrs trusted.overlay.metacopy and trusted.overlay.redirect
// naming its cache file (the chunk file of a single-block file, the
// whole-file entry of a longer one). Overlayfs is mounted with the image
// as its lower layer and the cache directory as its data-only layer
// (Linux 6.12+: EROFS on a file; lowerdir+ and datadir+ of the new mount
// API, so no path of the image or of its EROFS mount is ever visible).
// Reads and lookups are then local file system operations.
//
//   - Verified first: every cache file is opened and verified as for
//     passthrough (below), multi-block files are assembled. If one is
//     missing or fails, KernelAuto serves the mount with FUSE (which
//     fetches again what failed) and KernelOnly fails.
//   - Pinned: the kernel opens cache files by name, so before they are
//     checked their entries are listed in a pin file (pinsDir), and no
//     process sharing the cache evicts a pinned entry (the bound may be
//     overshot by what kernel mounts use). The pin goes with the mount:
//     the process watches the mount table, so Unmount, umount(8) and zos
//     flist umount all release it. A pin whose process died stays while
//     its mount exists.
//   - What differs from FUSE: OpStats stay zero; the mount outlives a
//     killed process; exec verification needs no daemon (every file is a
//     regular file of the signed metadata whose content was verified);
//     the flist's own trusted.overlay.* xattrs are stored escaped
//     (trusted.overlay.overlay.*), which overlayfs shows unescaped and
//     does not act on; a flist holding a 0:0 character device (an
//     overlayfs whiteout) is served by FUSE. An overlayfs mount cannot be
//     id-mapped (EINVAL), so the container runtime, which id-maps the
//     image for user namespaces, keeps FUSE.
//   - Cost: mounting checks every cache file (its record, or its hash)
//     and writes the image: see bench/flist for the time it takes.
//
// # Trusting cache files (passthrough)
//
// A passed-through file is read by the kernel, so the daemon never sees
// those bytes: what makes that safe is that the file was verified before
// it could be opened, and that nobody can change it afterwards.
//
//   - Verified when written: a chunk file is written only after its block
//     passed both checks (id of the stored bytes, key of the plaintext),
//     under a temporary name, created read-only (0400), then renamed; a
//     whole-file entry is assembled only from verified chunks and checked
//     against the file's size.
//   - Not writable by anyone else: the cache directory must be owned by the
//     mount's user (NewCache refuses another owner and makes it 0700), and
//     a cache file is trusted only if, on the open descriptor that will be
//     served, it is a regular file owned by that user with no write bit.
//   - Re-verified by a new process unless provably unchanged: entries found
//     in the directory when a Cache is opened (after a restart, or written
//     by another process) are checked on first use, on the descriptor that
//     will be served, for the ownership and mode above and then either
//     match a verification record or are hashed again (chunk: key; whole
//     file: content digest and size). A mismatch drops the file and
//     fetches the block again, and if that fails the read gives EIO, never
//     the cached bytes.
//   - Verification records (trust.log, next to trust.key in the cache
//     directory): after a file is verified (written from a checked block,
//     assembled, or hashed on first use) a record binds its kind and id to
//     its inode number, size, mtime and ctime in nanoseconds, taken before
//     its content was read (or after it was written and renamed), under an
//     HMAC-SHA256 with a random 32-byte key made on first use (0400, never
//     logged). A new process trusts a file only if its fstat matches the
//     record exactly. Any write to a file's content, a truncate, a chmod,
//     or replacing it by another inode moves its ctime or inode number, and
//     ctime cannot be set from user space (touch -d restores mtime only),
//     so a changed file is hashed again. The MAC means a record cannot be
//     forged or carried over from another cache without reading the key.
//
// Threat model. The cache directory is private to the mount's user (root on
// a node): whoever else can write in it is refused above. That user can
// also read the key, so the records do not defend against it, nor does
// anything else: root on the node can rewrite a cache file while a mount
// that has verified it is running, change the daemon's memory or the store
// credentials, or set the clock and forge a ctime. What the records keep
// is what re-hashing gave against everything else: changes through the
// file system after verification (by a bug, another tool, a restored
// backup or a cache copied from elsewhere) are detected. Not detected any
// more after a restart: corruption that bypasses the file system (a bad
// disk under ext4 without data checksums, offline edits of the block
// device); delete trust.log to force re-hashing everything. On kernels
// without fine-grained ctime (before 6.13) a write in the same clock tick
// as the verifier's fstat might keep the ctime; that takes the same user
// racing the daemon.
//
// # Exec verification
//
// With Options.ExecVerify, an open for execve (the kernel's __FMODE_EXEC
// open flag) succeeds only for a regular file of the signed metadata with an
// execute bit, and only after every one of its blocks has been fetched and
// verified; otherwise EACCES (or EIO) and a log line. On the read-only
// flist this always holds for executables, since nothing else exists.
// With Options.NoOpen there are no opens to check: the kernel refuses
// execve of a file without an execute bit (default_permissions), and the
// first READ of a file with one (which is how execve reads the program's
// header) is answered only after all of its blocks are fetched and
// verified, so the guarantee is the same, at the price of fetching whole
// executables that are only read.
//
// It matters once a writable overlay sits on top: a file written or
// replaced in the upper layer is not in the flist. The container runtime
// enforces the rule there with fanotify: it marks the container's merged
// mount with FAN_OPEN_EXEC_PERM, and for each event takes the path relative
// to the rootfs and the file's content digest (flist.ContentDigest over the
// opened fd, cached per inode and mtime) and allows the exec only if
// Mount.ExecAllowed(path, digest) is true, i.e. the exact (path, content)
// pair appears in Mount.ExecSet(), which is derived from the metadata and
// therefore covered by the flist's signature. A workload that needs to run
// programs it writes itself (package managers, JITs) is deployed without
// exec verification; the deployment says which.
//
// May import: the standard library, flist, internal/atomicfile,
// internal/regfile, internal/erofs, internal/dirlock, go-fuse, x/sync,
// x/sys/unix.
// Must never be imported by: flist, flist/store, flist/pack, provision
// (provision declares its own Mounter interface).
package mount
