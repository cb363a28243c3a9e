// Package oci turns container images into the merged root filesystem that
// flist/pack stores: it opens an image from a registry reference, a
// `docker save` tarball or an OCI image layout directory, picks the platform
// from a multi-arch index, downloads each layer once and keeps it
// uncompressed in a spool directory (checking the compressed digest and the
// diff_id), and flattens the layers into one tar stream
// with OCI whiteouts applied, together with the image configuration
// (entrypoint, cmd, env, working dir, user, exposed ports, volumes, labels,
// digest).
//
// Flattening reads each spooled layer tar twice and never extracts files to
// disk. The first pass reads only tar headers and builds the final tree
// in memory: `.wh.NAME` removes NAME and everything under it from lower
// layers, `.wh..wh..opq` hides every lower-layer entry of its directory (at
// the end of the layer, so entries of the same layer survive whatever their
// order), a directory over a directory merges, anything else replaces. The
// second pass streams the surviving entries in layer order: parents always
// come before their children, every path appears exactly once, the root is
// "./". Hard links whose target was replaced or removed by an upper layer
// keep the content they had: the first surviving link becomes a regular
// file and the others link to it. Ownership, modes, times, devices, xattrs
// (PAX records) and symlink targets pass through unchanged. Paths that
// escape the root, hard links to missing entries and layers whose
// uncompressed digest differs from the image's diff_ids are errors.
//
// Owns: image sources, platform selection, layer spooling and verification,
// flattening, image configuration extraction.
//
// May import: the standard library, go-containerregistry, klauspost/compress,
// x/sync.
// Must never be imported by: flist, flist/store, flist/mount (engines below
// the importer); cmd/zos and hub wire it to flist/pack.
package oci
