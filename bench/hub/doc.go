// Command hub benchmarks image import and the hub's block serving against
// reference tools, side by side on this machine, and prints a markdown table
// with ratios:
//
//   - import of a generated image (about -size MiB in a few layers, pushed to
//     Debian's docker-registry on loopback): `zos flist import` into a dir
//     store, against `skopeo copy` to an OCI layout plus `tar -x` of every
//     layer; then a second import of the same image into the same store;
//   - block serving over loopback: every block of that flist fetched by
//     -clients concurrent clients from `zos hub` on `zos zdb` (with its block
//     cache and without)
//     against Go's http.FileServer over the same blocks in a directory.
//
// Run it with `go run ./bench/hub` (ZOS_BIN names the zos binary; default
// bin/zos). -size 8 makes a quick validation run.
//
// May import: anything (it is a program, not a library).
// Must never be imported by: anything.
package main
