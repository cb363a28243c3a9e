// Package replica owns primary → secondary streaming: a Follower keeps a
// local zdb.DB a copy of a primary, namespace by namespace, by reading the
// primary's data files as a log (REPLICATE ns generation file offset).
// Data files are append-only, so a (file, offset) position is all a
// secondary needs to resume after a disconnect or a restart of either side;
// it is saved per namespace in "zos-replica" beside the index, after the
// records before it are committed. Records replay with their original
// timestamps, tombstones replay as deletes, and replays are idempotent.
// FLUSH or a compaction on the primary changes the namespace generation: the
// secondary then flushes its copy and starts over. So does a crash repair
// that cut the primary's data tail, for a secondary that had copied past the
// cut (one still before it resumes). The primary ships only committed
// records, and never a file's successor while records for the file are
// still queued. Each namespace's password
// and public flag are copied (NSACCESS) before any of its data and every
// second after, so a copy is never easier to read than its original; maxsize,
// worm, lock and freeze stay the primary's business (the secondary refuses
// client writes anyway).
//
// May import: zdb, resp, internal/atomicfile, the standard library.
// Must never be imported by: zdb, zdb/server, resp.
package replica
