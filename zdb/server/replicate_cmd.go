package server

import (
	"encoding/json"
	"errors"
	"strconv"

	"github.com/zosgrid/zos/zdb"
)

// replicateBatch bounds one REPLICATE reply.
const replicateBatch = 1 << 20

// cmdReplicate serves the replication log of a namespace (admin):
//
//	REPLICATE ns generation file offset
//
// replies [generation, file, offset, end-file, end-offset, [[deleted, ts, key, value]...]]
// with the records after the position and the position after them, or
// "-Replication position lost" when the follower must start over.
func cmdReplicate(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) || !argsValidate(c, args, 5, false) {
		return true
	}
	ns, err := s.db.Namespace(string(args[1]))
	if err != nil {
		c.w.Error("Namespace not found")
		return true
	}
	gen, e1 := strconv.ParseUint(string(args[2]), 10, 64)
	file, e2 := strconv.ParseUint(string(args[3]), 10, 32)
	off, e3 := strconv.ParseUint(string(args[4]), 10, 32)
	if e1 != nil || e2 != nil || e3 != nil {
		c.w.Error("Invalid argument")
		return true
	}
	recs, next, end, err := ns.ReadLog(zdb.LogPosition{Generation: gen, File: uint32(file), Offset: uint32(off)}, replicateBatch)
	switch {
	case errors.Is(err, zdb.ErrLogPosition):
		c.w.Error("Replication position lost")
		return true
	case err != nil:
		nsError(c, err)
		return true
	}
	c.w.Array(6)
	c.w.Int(int64(next.Generation))
	c.w.Int(int64(next.File))
	c.w.Int(int64(next.Offset))
	c.w.Int(int64(end.File))
	c.w.Int(int64(end.Offset))
	c.w.Array(len(recs))
	for _, r := range recs {
		c.w.Array(4)
		switch {
		case r.Deleted:
			c.w.Int(1)
		case r.Truncated:
			c.w.Int(2)
		default:
			c.w.Int(0)
		}
		c.w.Int(int64(r.Timestamp))
		c.w.Bulk(r.Key)
		c.w.Bulk(r.Value)
	}
	return true
}

// cmdNsAccess exports a namespace's access settings as JSON (admin), for
// replicas: NSACCESS ns.
func cmdNsAccess(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) || !argsValidate(c, args, 2, false) {
		return true
	}
	ns, err := s.db.Namespace(string(args[1]))
	if err != nil {
		c.w.Error("Namespace not found")
		return true
	}
	b, err := json.Marshal(ns.Access())
	if err != nil {
		c.w.Error("Internal Error")
		return true
	}
	c.w.Bulk(b)
	return true
}
