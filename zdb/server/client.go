package server

import (
	"net"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"

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

	raw       syscall.RawConn // the socket, if its blocking mode can be set
	fd        int32           // the socket's descriptor, when raw is set
	inLoop    bool            // served by an event loop, not its goroutine
	ending    bool            // to close once its replies are sent
	blocking  bool            // reads block the thread (see chooseReadMode)
	waits     uint32          // blocking waits, for the periodic yield
	mirroring bool            // written to by other clients (MIRROR)
	keys      [][]byte        // prefetch's scratch

	// The event loop's non-blocking socket calls go through raw (which
	// keeps the descriptor from being closed under them) with these
	// functions, bound once: a closure made per call would be allocated
	// per request.
	rawRead, rawWrite func(fd uintptr) bool
	io                []byte // the buffer of the call under way
	ioN               int
	ioErr             error
}

type pendingWrite struct {
	ns  *zdb.Namespace
	seq uint64
}

func (s *Server) newClient(conn net.Conn) *client {
	c := &client{s: s, conn: conn, w: resp.NewWriter(conn), admin: s.cfg.Admin == ""}
	c.r = resp.NewReader(loopRead{c})
	c.rawRead = func(fd uintptr) bool {
		c.ioN, c.ioErr = unix.Read(int(fd), c.io)
		return true
	}
	c.rawWrite = func(fd uintptr) bool {
		c.ioN, c.ioErr = unix.Write(int(fd), c.io)
		return true
	}
	c.ns, _ = s.db.Namespace(zdb.DefaultNamespace)
	c.writable = !(s.cfg.Protect && s.cfg.Admin != "")
	if sc, ok := conn.(syscall.Conn); ok {
		if raw, err := sc.SyscallConn(); err == nil {
			if raw.Control(func(fd uintptr) { c.fd = int32(fd) }) == nil {
				c.raw = raw
			}
		}
	}
	return c
}

// chooseReadMode picks how the next read waits for a request, and reports
// whether an event loop should wait for it instead (the socket is then
// non-blocking). The fewest system calls per request is a blocking read
// and a write. A socket left to the network poller costs, per request, a
// read that finds nothing, an epoll_wait and a wake-up of another thread
// on top: measured at -c 1, 5.8 system calls and 1.8 context switches per
// GET, against redis-server's 3 and 1, which made a lone client 25-35%
// slower than on redis. A blocked read holds an OS thread, so it is used
// only while there are no more clients than Ps; past that an event loop
// waits for them (the mode is checked again before each wait). A mirror
// stays with the poller: other clients write to it with a deadline, which
// needs a non-blocking socket.
func (c *client) chooseReadMode() (loop bool) {
	few := c.s.nconn.Load() <= c.s.maxBlocking.Load()
	settable := c.raw != nil && !c.mirroring
	want := settable && few
	if want != c.blocking {
		c.setBlocking(want)
	}
	if c.blocking {
		// A goroutine that only ever blocks in system calls is never
		// rescheduled, so the runtime's monitor takes it for one that
		// has run 10 ms straight: it takes its P away, then polls every
		// 20 µs for a millisecond, over and over (a fifth of the
		// server's CPU at -c 1). A yield now and then (a few ms apart
		// at the fastest rate a lone client reaches) shows it is not.
		if c.waits++; c.waits%64 == 0 {
			runtime.Gosched()
		}
	}
	return settable && !few && !c.blocking
}

func (c *client) setBlocking(on bool) {
	if c.raw == nil {
		return
	}
	var err error
	if cerr := c.raw.Control(func(fd uintptr) { err = unix.SetNonblock(int(fd), !on) }); cerr != nil {
		err = cerr
	}
	if err == nil {
		c.blocking = on
	}
}

// shutdown ends the connection for a read or write blocked in the kernel,
// which closing the descriptor does not wake (see chooseReadMode).
func (c *client) shutdown() {
	if c.raw != nil {
		c.raw.Control(func(fd uintptr) { unix.Shutdown(int(fd), unix.SHUT_RDWR) })
	}
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
	if !c.commit() {
		return false
	}
	n := c.w.Len()
	if err := c.w.Flush(); err != nil {
		return false
	}
	c.countTraffic(n)
	return true
}

// commit commits the writes queued by this batch and counts its commands.
// False: a commit failed, and the batch's replies must not be sent.
func (c *client) commit() bool {
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
	return true
}

// countTraffic adds sent bytes, and the bytes read since the last count,
// to the statistics.
func (c *client) countTraffic(sent int) {
	if sent > 0 {
		c.s.stats.tx.Add(uint64(sent))
	}
	if rx := c.r.BytesRead(); rx > c.rx {
		c.s.stats.rx.Add(uint64(rx - c.rx))
		c.rx = rx
	}
}

// prefetch gives the keys of the GETs at the head of a pipelined batch to
// the namespace to load together (zdb.Namespace.Prefetch): at -P 16 a GET
// otherwise waits for its own cache misses one after the other. Only a run
// of GETs is looked at, so that a batch of writes costs one parse more, not
// sixteen.
func (c *client) prefetch() {
	const oneGet = len("*2\r\n$3\r\nGET\r\n$1\r\nk\r\n")
	if c.r.Buffered() < 2*oneGet {
		return
	}
	keys := c.keys[:0]
	c.r.Peek(func(args [][]byte) bool {
		if len(args) != 2 || c.s.lookupCommand(args[0]) != c.s.get {
			return false
		}
		keys = append(keys, args[1])
		return len(keys) < 32
	})
	if len(keys) > 1 {
		c.ns.Prefetch(keys)
	}
	clear(keys) // they point into the read buffer
	c.keys = keys[:0]
}
