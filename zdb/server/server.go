package server

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"math/rand/v2"
	"net"
	"os"
	"runtime"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/zosgrid/zos/resp"
	"github.com/zosgrid/zos/zdb"
)

// Config is the server's network and access configuration.
type Config struct {
	// Listen and Port give the TCP address (default 127.0.0.1:9900; Port -1
	// disables TCP when Socket is set). Port 0 picks a free port.
	Listen string
	Port   int
	// Socket is a unix socket path. Like 0-db, a socket replaces TCP unless
	// DualNet is set.
	Socket  string
	DualNet bool
	// Admin is the admin password; empty means every client is admin
	// (0-db's behaviour).
	Admin string
	// Protect makes the default namespace read-only unless selected with
	// the admin password.
	Protect bool
	// ReadOnly refuses every write from clients (a replica).
	ReadOnly bool
	// Hook is an executable run on events (ready, close, namespace-*, jump-*,
	// missing-data).
	Hook string
	// AutoCompact compacts a namespace on its own when at least this share
	// of its data files is dead (0 disables it).
	AutoCompact float64
	// CompactInterval is how often the automatic threshold is checked
	// (default one minute).
	CompactInterval time.Duration
	Logger          *slog.Logger
}

// Server serves the 0-db protocol over a zdb.DB.
type Server struct {
	db         *zdb.DB
	cfg        Config
	log        *slog.Logger
	boot       time.Time
	instanceID uint32
	hooks      *hooks

	mu        sync.Mutex
	listeners []net.Listener
	conns     map[*client]struct{}
	closed    bool
	wg        sync.WaitGroup

	waitMu  sync.Mutex
	waiters map[*waiter]struct{}
	nwait   atomic.Int32

	mirrorMu sync.Mutex
	mirrors  map[*client]struct{}
	nmirror  atomic.Int32

	replica ReplicaStatus // set by the replication follower, read by INFO
	baseCtx context.Context

	commands []command
	set, get *command

	nconn       atomic.Int32 // open client connections
	maxBlocking atomic.Int32 // most connections served with blocking reads
	loops       []*eventLoop // started with the first client past maxBlocking

	stats struct {
		clients, cmds, failed, unauthorized atomic.Uint64
		rx, tx                              atomic.Uint64
	}
}

// ReplicaStatus reports replication progress for INFO.
type ReplicaStatus interface {
	InfoLines() []string
}

// New returns a server for db. It does not listen yet.
func New(db *zdb.DB, cfg Config) (*Server, error) {
	if cfg.CompactInterval <= 0 {
		cfg.CompactInterval = time.Minute
	}
	if cfg.Listen == "" {
		cfg.Listen = "127.0.0.1"
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	s := &Server{
		db:         db,
		cfg:        cfg,
		log:        log.With("component", "zdb-server"),
		boot:       time.Now(),
		instanceID: rand.Uint32(),
		conns:      map[*client]struct{}{},
		waiters:    map[*waiter]struct{}{},
		mirrors:    map[*client]struct{}{},
	}
	s.maxBlocking.Store(int32(runtime.GOMAXPROCS(0)))
	s.hooks = newHooks(cfg.Hook, s.instanceID, s.log)
	s.commands = commandTable()
	for i := range s.commands {
		switch s.commands[i].name {
		case "SET":
			s.set = &s.commands[i]
		case "GET":
			s.get = &s.commands[i]
		}
	}
	return s, nil
}

// SetReplicaStatus makes INFO show a replication section.
func (s *Server) SetReplicaStatus(r ReplicaStatus) {
	s.mu.Lock()
	s.replica = r
	s.mu.Unlock()
}

// Listen opens the configured listeners.
func (s *Server) Listen() error {
	var ls []net.Listener
	if s.cfg.Socket != "" {
		os.Remove(s.cfg.Socket) // a stale socket from a previous run
		l, err := net.Listen("unix", s.cfg.Socket)
		if err != nil {
			return fmt.Errorf("zdb server: %w", err)
		}
		ls = append(ls, l)
	}
	if (s.cfg.Socket == "" || s.cfg.DualNet) && s.cfg.Port >= 0 {
		l, err := net.Listen("tcp", net.JoinHostPort(s.cfg.Listen, strconv.Itoa(s.cfg.Port)))
		if err != nil {
			for _, l := range ls {
				l.Close()
			}
			return fmt.Errorf("zdb server: %w", err)
		}
		ls = append(ls, l)
	}
	s.mu.Lock()
	s.listeners = ls
	s.mu.Unlock()
	return nil
}

// Addrs returns the addresses the server listens on.
func (s *Server) Addrs() []net.Addr {
	s.mu.Lock()
	defer s.mu.Unlock()
	var a []net.Addr
	for _, l := range s.listeners {
		a = append(a, l.Addr())
	}
	return a
}

// Serve accepts clients until ctx is done, then closes every connection,
// commits pending writes and returns. Listen must have been called.
func (s *Server) Serve(ctx context.Context) error {
	s.mu.Lock()
	ls := s.listeners
	s.mu.Unlock()
	if len(ls) == 0 {
		return errors.New("zdb server: Serve before Listen")
	}
	if err := s.hooks.run(ctx, true, "ready"); err != nil {
		s.Close()
		return fmt.Errorf("zdb server: ready hook failed: %w", err)
	}
	actx, cancel := context.WithCancel(ctx)
	defer cancel()
	s.mu.Lock()
	s.baseCtx = actx
	s.mu.Unlock()
	if s.cfg.AutoCompact > 0 {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			s.autoCompact(actx, s.cfg.CompactInterval)
		}()
	}
	errc := make(chan error, len(ls))
	for _, l := range ls {
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			errc <- s.accept(l)
		}()
	}
	var err error
	select {
	case <-ctx.Done():
	case err = <-errc:
	}
	cancel()
	s.Close()
	s.hooks.run(context.Background(), false, "close")
	s.hooks.wait()
	return err
}

// Close stops the listeners and connections and waits for them.
func (s *Server) Close() {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		s.wg.Wait()
		return
	}
	s.closed = true
	for _, l := range s.listeners {
		l.Close()
	}
	for c := range s.conns {
		c.shutdown()
		c.conn.Close()
	}
	loops := s.loops
	s.mu.Unlock()
	for _, l := range loops {
		l.close()
	}
	s.wakeWaiters()
	s.wg.Wait()
}

func (s *Server) accept(l net.Listener) error {
	for {
		conn, err := l.Accept()
		if err != nil {
			s.mu.Lock()
			closed := s.closed
			s.mu.Unlock()
			if closed {
				return nil
			}
			var ne net.Error
			if errors.As(err, &ne) && ne.Timeout() {
				continue
			}
			return fmt.Errorf("zdb server: accept: %w", err)
		}
		c := s.newClient(conn)
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			return nil
		}
		s.conns[c] = struct{}{}
		s.wg.Add(1)
		s.mu.Unlock()
		s.stats.clients.Add(1)
		s.nconn.Add(1)
		go s.serveClient(c, nil)
	}
}

// endClient closes c and forgets it; whoever serves c (its goroutine or an
// event loop) calls it once, when c ends.
func (s *Server) endClient(c *client) {
	s.nconn.Add(-1)
	s.mu.Lock()
	delete(s.conns, c)
	s.mu.Unlock()
	s.removeMirror(c)
	c.conn.Close()
	s.wg.Done()
}

// serveClient runs one connection: it executes every request already
// buffered, commits their writes once, then sends all replies in one write.
// With more clients than Ps it hands the connection to an event loop while
// it waits for the next request, and ends; the loop gives it back, with
// replies left to send and a request that may block (first), to a new
// serveClient.
func (s *Server) serveClient(c *client, first [][]byte) {
	if c.ending {
		c.finishBatch()
		s.endClient(c)
		return
	}
	if c.w.Len() > 0 && !c.finishBatch() {
		s.endClient(c)
		return
	}
	if first != nil && !s.exec(c, first) {
		c.finishBatch()
		s.endClient(c)
		return
	}
	for {
		args, ok, err := c.r.Next()
		if !ok && err == nil {
			if !c.finishBatch() {
				break
			}
			if c.chooseReadMode() {
				if l, lerr := s.loopFor(c); lerr == nil && l.adopt(c) {
					return // the loop serves c now
				}
			}
			args, err = c.r.ReadCommand()
		}
		if err != nil {
			if isProtocolError(err) {
				c.w.Error(protocolError(err))
				c.finishBatch()
			}
			break
		}
		if !s.exec(c, args) {
			c.finishBatch()
			break
		}
		if c.w.Len() > 1<<20 {
			if !c.finishBatch() {
				break
			}
		}
	}
	s.endClient(c)
}

// isProtocolError tells a malformed request, which gets an error reply
// before the connection closes, from a failed read.
func isProtocolError(err error) bool {
	return errors.Is(err, resp.ErrProtocol) || errors.Is(err, resp.ErrTooManyArgs) || errors.Is(err, resp.ErrArgTooLarge)
}

// protocolError is 0-db's reply to a request it cannot parse (zdbd/redis.c).
func protocolError(err error) string {
	switch {
	case errors.Is(err, resp.ErrTooManyArgs):
		return "Too many arguments"
	case errors.Is(err, resp.ErrArgTooLarge):
		return "Payload too big"
	case errors.Is(err, resp.ErrNoArgs):
		return "Missing arguments"
	case errors.Is(err, resp.ErrNotBulk):
		return "Malformed query string"
	}
	return "Malformed request, array expected"
}

// exec runs one request; false closes the connection.
func (s *Server) exec(c *client, args [][]byte) (keep bool) {
	return s.run(c, s.lookupCommand(args[0]), args)
}

// run runs one request whose command the caller looked up (nil: unknown).
func (s *Server) run(c *client, cmd *command, args [][]byte) (keep bool) {
	defer func() {
		if r := recover(); r != nil {
			s.log.Error("zdb command panicked", "panic", r)
			c.w.Error("Internal Error")
			keep = false
		}
	}()
	if c.ns.Closed() {
		next := c.ns.Successor()
		for next != nil && next.Closed() {
			next = next.Successor()
		}
		if next == nil {
			c.w.Error("Your active namespace is not available anymore (probably removed).")
			return false
		}
		c.ns = next // reloaded: follow it
	}
	if cmd == nil {
		s.stats.failed.Add(1)
		c.w.Error("Command not supported")
		return true
	}
	c.cmds++ // added to the shared counter once per batch
	if cmd.write && s.cfg.ReadOnly {
		c.w.Error("Namespace is in read-only mode")
		return true
	}
	keep = cmd.fn(s, c, args)
	if s.nwait.Load() > 0 {
		s.notifyWaiters(c, cmd.name)
	}
	if cmd.write && s.nmirror.Load() > 0 {
		s.mirror(c, args)
	}
	return keep
}
