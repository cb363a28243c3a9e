//go:build e2e && zdbbugs

// Tests that fail (here: intermittently) on the current zdb engine, built
// only with the zdbbugs tag so that `make e2e` stays green while branch zdb
// is fixed. Run them with `go test -tags e2e,zdbbugs -run TestZdbReplica ./e2e/`
// (use -count=10: the failure below showed up about once in ten runs).

package e2e

import "testing"

// TestZdbReplicaCompactCrashLoop is the replica crash loop with COMPACT
// running on the primary. Seen failing twice in about twenty runs, and again
// once in ten runs on branch zdb at 372479f (same signature, the primary
// cut d41 from 15610 to 15586 bytes, again one 24-byte tombstone): after the
// loop the replica never converged (30 s) and served an older version of a
// key than the primary (`key w0-k30: primary "w0#…#540#…" (1208 bytes),
// replica "w0#…#498#…" (1523 bytes)`): an update was lost for the replica.
// Without the SIGKILLs (compaction and replication alone) ten runs converged.
// In the failing run the last primary restart logged "zdb truncated a torn
// tail … d39 from=5879 to=5855 reason=data record never indexed": the
// replica follows the primary's data files by (file, offset) and had most
// likely already copied those 24 bytes (a tombstone of a DEL in flight), so
// after the primary cut them and appended new records there, the replica
// resumed at 5879 and missed what now starts at 5855. A replica must not
// ship bytes the primary may still cut (ship only committed data), or must
// detect that the primary's file shrank under its position and resync.
func TestZdbReplicaCompactCrashLoop(t *testing.T) { zdbReplicaCrashLoop(t, true) }
