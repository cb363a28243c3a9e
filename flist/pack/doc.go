// Package pack owns turning a directory tree or a tar stream into an flist:
// walking entries (regular files, directories, symlinks, hard links,
// devices, fifos, sockets, modes, owners, times, xattrs such as
// security.capability), cutting files into blocks, encrypting them, and
// uploading, in parallel, only the blocks the store does not already have.
// A store that implements MissingFinder (the hub, zdb, a Router over them)
// is asked in batches which blocks it lacks, so re-importing an image costs
// a few round trips instead of one per block; other stores get one Has per
// new block.
//
// The OCI importer hands Tar a merged tar stream (whiteouts already applied)
// and the image config (Options.ImageConfig, read back with
// flist.FList.ImageConfig). Tags and other metadata go in Options.
//
// Stats reports files, bytes, blocks referenced, unique blocks and new
// blocks written; DedupRatio is referenced blocks / new blocks.
//
// May import: the standard library, flist, x/sys/unix, x/sync.
// Must never be imported by: flist, flist/store, flist/mount.
package pack
