// Command flist benchmarks zos flists side by side with their baselines and
// prints a markdown table with ratios:
//
//   - pack a real tree (default /usr) to a dir:// store vs `tar -c | zstd`;
//   - read the whole mounted tree, each zos row next to a local-disk
//     baseline taken under the same conditions in the same run: cold
//     (kernel caches dropped, empty block cache) vs local disk with caches
//     dropped, and vs reading the store's files; hot (same mount read
//     again) vs local files read again; warm (block cache full, kernel
//     caches dropped) on the same mount and after a remount (cached files
//     trusted on their verification records, or re-hashed) vs local disk
//     with caches dropped; hot after the remount vs local files read
//     again. The remount is done twice: served by the FUSE daemon
//     (--kernel=false), then by the kernel (--kernel=true: every file is
//     cached, so overlayfs over an EROFS image of the metadata reads the
//     cache files itself), with the time each took to mount. A second
//     table counts the FUSE requests each zos read cost (the mount's
//     SIGUSR1 stats; none for the kernel mount) and the cached files a
//     new mount had to hash again;
//   - time to first byte of a 100 MiB file in a cold mount vs unpacking the
//     whole tree first (what a `docker pull` costs);
//   - store growth when a second, mostly identical tree is packed to the
//     same store, vs the tar.zst size of that tree.
//
// Run: go run ./bench/flist [-src /usr] [-quick] [-mount-args "--no-open=false"]; it needs root (FUSE), the
// zos binary ($ZOS_BIN, default bin/zos), tar and zstd.
//
// May import: the standard library.
// Must never be imported by: anything (it is a program).
package main
