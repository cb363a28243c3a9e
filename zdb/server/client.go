package server

import (
	"net"
	"runtime"

	"github.com/zosgrid/zos/resp"
	"github.com/zosgrid/zos/zdb"
)

// client is one connection's state.
type client struct {
	s        *Server
	conn     net.Conn
	r        *resp.Reader
	w        *resp.Writer
	ns       *zdb.Namespace
	writable bool
	admin    bool
	master   bool
	nonce    string
	rx       int64  // bytes read already counted in stats
	cmds     uint64 // commands executed not yet counted in stats
	// writes queued by this batch, committed before the replies go out
	pending []pendingWrite
}

type pendingWrite struct {
	ns  *zdb.Namespace
	seq uint64
}

func (s *Server) newClient(conn net.Conn) *client {
	c := &client{s: s, conn: conn, r: resp.NewReader(conn), w: resp.NewWriter(conn),
		admin: s.cfg.Admin == ""}
	c.ns, _ = s.db.Namespace(zdb.DefaultNamespace)
	c.writable = !(s.cfg.Protect && s.cfg.Admin != "")
	return c
}

// queued records a write to commit before the batch's replies are sent.
func (c *client) queued(ns *zdb.Namespace, seq uint64) {
	for i := range c.pending {
		if c.pending[i].ns == ns {
			if seq > c.pending[i].seq {
				c.pending[i].seq = seq
			}
			return
		}
	}
	c.pending = append(c.pending, pendingWrite{ns, seq})
}

// finishBatch commits this batch's writes, then sends its replies. If a
// commit fails the replies are dropped and the connection closes, so no
// write is ever acknowledged that did not reach the files.
func (c *client) finishBatch() bool {
	if len(c.pending) > 0 && c.s.nconn.Load() > 1 {
		// Let the other clients whose requests arrived with ours run
		// first and queue their writes, so that one commit (one write
		// per file) acknowledges them all, as an event loop writes once
		// per turn. Nothing is acknowledged before its commit either way.
		runtime.Gosched()
	}
	if c.cmds > 0 {
		c.s.stats.cmds.Add(c.cmds)
		c.cmds = 0
	}
	for _, p := range c.pending {
		if err := p.ns.Commit(p.seq); err != nil {
			c.s.log.Error("zdb commit failed, closing client", "ns", p.ns.Name(), "err", err)
			c.pending = c.pending[:0]
			return false
		}
	}
	c.pending = c.pending[:0]
	n := c.w.Len()
	if err := c.w.Flush(); err != nil {
		return false
	}
	c.s.stats.tx.Add(uint64(n))
	if rx := c.r.BytesRead(); rx > c.rx {
		c.s.stats.rx.Add(uint64(rx - c.rx))
		c.rx = rx
	}
	return true
}
