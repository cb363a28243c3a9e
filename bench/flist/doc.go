// Command flist benchmarks zos flists side by side with their baselines and
// prints a markdown table with ratios:
//
//   - pack a real tree (default /usr) to a dir:// store vs `tar -c | zstd`;
//   - read the whole mounted tree cold (kernel caches dropped, empty block
//     cache) vs local disk with caches dropped and vs reading the store's
//     files; hot (same mount again), after a remount (cached files
//     re-verified) and warm (remounted, read again) vs local disk with a
//     warm page cache;
//   - time to first byte of a 100 MiB file in a cold mount vs unpacking the
//     whole tree first (what a `docker pull` costs);
//   - store growth when a second, mostly identical tree is packed to the
//     same store, vs the tar.zst size of that tree.
//
// Run: go run ./bench/flist [-src /usr] [-quick] [-mount-args "--passthrough-min 0"]; it needs root (FUSE), the
// zos binary ($ZOS_BIN, default bin/zos), tar and zstd.
//
// May import: the standard library.
// Must never be imported by: anything (it is a program).
package main
