package server

import (
	"strconv"
	"time"
)

// waiter is a client blocked in WAIT.
type waiter struct {
	c    *client
	cmd  string // command name or "*"
	done chan string
}

const waitMaxTimeout = 30 * time.Minute

// cmdWait blocks until another client in the same namespace runs the named
// command (or any, with "*"), replying +NAME, or -Timeout.
func cmdWait(s *Server, c *client, args [][]byte) bool {
	if len(args) != 2 && len(args) != 3 {
		c.w.Error("Invalid arguments")
		return true
	}
	cmd := s.lookupCommand(args[1])
	if cmd == nil {
		c.w.Error("Unknown command to watch")
		return true
	}
	timeout := 5 * time.Second
	if len(args) == 3 {
		if len(args[2]) > 16 {
			c.w.Error("Invalid timeout")
			return true
		}
		ms, err := strconv.ParseUint(string(args[2]), 10, 64)
		d := time.Duration(ms) * time.Millisecond
		if err != nil || d < 100*time.Millisecond || d > waitMaxTimeout {
			c.w.Error("Invalid timeout")
			return true
		}
		timeout = d
	}
	// Earlier replies of this batch go out before blocking.
	if !c.finishBatch() {
		return false
	}
	w := &waiter{c: c, cmd: cmd.name, done: make(chan string, 1)}
	s.waitMu.Lock()
	s.waiters[w] = struct{}{}
	s.nwait.Add(1)
	s.waitMu.Unlock()
	t := time.NewTimer(timeout)
	defer t.Stop()
	var name string
	select {
	case name = <-w.done:
	case <-t.C:
	}
	s.waitMu.Lock()
	if _, ok := s.waiters[w]; ok {
		delete(s.waiters, w)
		s.nwait.Add(-1)
	}
	s.waitMu.Unlock()
	if name == "" {
		select {
		case name = <-w.done:
		default:
		}
	}
	switch name {
	case "":
		c.w.Error("Timeout")
	case "\x00closed":
		return false
	default:
		c.w.Simple(name)
	}
	return true
}

func (s *Server) notifyWaiters(by *client, name string) {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	for w := range s.waiters {
		if w.c == by || w.c.ns != by.ns || (w.cmd != "*" && w.cmd != name) {
			continue
		}
		delete(s.waiters, w)
		s.nwait.Add(-1)
		w.done <- name
	}
}

func (s *Server) wakeWaiters() {
	s.waitMu.Lock()
	defer s.waitMu.Unlock()
	for w := range s.waiters {
		delete(s.waiters, w)
		s.nwait.Add(-1)
		w.done <- "\x00closed"
	}
}

// cmdMirror turns the connection into a replication sink: it receives every
// write command other clients run, framed as 0-db does:
// [:timestamp, $namespace, :owner-id, command...]. (0-db leaves owner ids
// unset and so forwards nothing; zos uses its instance id.)
func cmdMirror(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) {
		return true
	}
	c.mirroring = true
	c.setBlocking(false)
	s.mirrorMu.Lock()
	s.mirrors[c] = struct{}{}
	s.nmirror.Add(1)
	s.mirrorMu.Unlock()
	c.w.Simple("Starting mirroring")
	return true
}

func (s *Server) removeMirror(c *client) {
	s.mirrorMu.Lock()
	if _, ok := s.mirrors[c]; ok {
		delete(s.mirrors, c)
		s.nmirror.Add(-1)
	}
	s.mirrorMu.Unlock()
}

func (s *Server) mirror(by *client, args [][]byte) {
	s.mirrorMu.Lock()
	defer s.mirrorMu.Unlock()
	// 0-db's frame: [:timestamp, $namespace, :owner-id, command...].
	frame := []byte("*" + strconv.Itoa(len(args)+3) + "\r\n:" + strconv.FormatInt(time.Now().Unix(), 10) + "\r\n")
	frame = append(frame, newFrame([][]byte{[]byte(by.ns.Name())})[4:]...)
	frame = append(frame, ":"+strconv.FormatUint(uint64(s.instanceID), 10)+"\r\n"...)
	frame = append(frame, newFrame(args)[len("*"+strconv.Itoa(len(args))+"\r\n"):]...)
	for m := range s.mirrors {
		if m == by {
			continue
		}
		// Mirrors get their copy synchronously; a mirror that cannot keep
		// up is dropped rather than slowing the server.
		m.conn.SetWriteDeadline(time.Now().Add(time.Second))
		if _, err := m.conn.Write(frame); err != nil {
			delete(s.mirrors, m)
			s.nmirror.Add(-1)
			m.conn.Close()
		}
	}
}

func newFrame(args [][]byte) []byte {
	b := []byte("*" + strconv.Itoa(len(args)) + "\r\n")
	for _, a := range args {
		b = append(b, '$')
		b = strconv.AppendInt(b, int64(len(a)), 10)
		b = append(b, '\r', '\n')
		b = append(b, a...)
		b = append(b, '\r', '\n')
	}
	return b
}
