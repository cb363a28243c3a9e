package server

import (
	"context"
	"fmt"
	"time"
)

// cmdCompact runs an online compaction: COMPACT [namespace] (admin). The
// namespace keeps serving other clients meanwhile; this client gets a
// summary line when it is done.
func cmdCompact(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) {
		return true
	}
	ns := c.ns
	if len(args) > 2 {
		c.w.Error("Unexpected arguments")
		return true
	}
	if len(args) == 2 {
		var err error
		if ns, err = s.db.Namespace(string(args[1])); err != nil {
			c.w.Error("Namespace not found")
			return true
		}
	}
	// Replies already queued go out first: compaction may take a while.
	if !c.finishBatch() {
		return false
	}
	res, err := ns.Compact(s.ctxBackground())
	switch {
	case err != nil:
		s.log.Error("zdb compaction failed", "ns", ns.Name(), "err", err)
		nsError(c, err)
	default:
		c.w.Simple(fmt.Sprintf("OK files=%d before=%d after=%d kept=%d dropped=%d",
			res.Files, res.BytesBefore, res.BytesAfter, res.EntriesKept, res.EntriesDrops))
	}
	return true
}

// autoCompact compacts namespaces whose dead share passed the
// threshold, checking every interval until ctx ends. What a compaction cannot
// give back (tiny records, the history of live keys) stays dead, so a
// namespace is compacted again only once new dead bytes worth a tenth of its
// data have accrued since its last compaction; a fixed ratio would either
// compact it on every tick or never again.
func (s *Server) autoCompact(ctx context.Context, interval time.Duration) {
	t := time.NewTicker(interval)
	defer t.Stop()
	// Dead bytes the last compaction left: those before it less those it
	// freed. (Measuring after it would also count the deletes that landed
	// while it ran, which then never looked like growth.)
	leftDead := map[string]int64{}
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		for _, name := range s.db.List() {
			ns, err := s.db.Namespace(name)
			if err != nil || ns.Stats().CurrentFile == 0 {
				continue
			}
			// Each figure stats every data file: take them once.
			r, dead := ns.DeadRatio(), ns.DeadBytes()
			grown := dead - leftDead[name]
			if r < s.cfg.AutoCompact || (r > 0 && float64(grown) < 0.1*float64(dead)/r) {
				continue
			}
			res, err := ns.Compact(ctx)
			if err != nil {
				s.log.Warn("zdb automatic compaction failed", "ns", name, "err", err)
				continue
			}
			leftDead[name] = max(dead-(res.BytesBefore-res.BytesAfter), 0)
			s.log.Info("zdb automatic compaction", "ns", name, "before", res.BytesBefore, "after", res.BytesAfter)
		}
	}
}
