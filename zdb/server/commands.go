package server

import (
	"bytes"
	"crypto/rand"
	"crypto/sha1"
	"crypto/subtle"
	"encoding/hex"
	"errors"
	"strconv"
	"strings"
	"time"

	"github.com/zosgrid/zos/zdb"
)

type command struct {
	name  string
	fn    func(s *Server, c *client, args [][]byte) bool
	write bool // mirrored to MIRROR clients
	// blocks: the command may wait (for other clients, for a long job)
	// or changes how its connection is served, so it runs on the client's
	// own goroutine, never in the event loop.
	blocks bool
}

// commands is 0-db's dispatch table, in its order: a request's name matches
// the first entry it is a case-insensitive prefix of ("SE" runs SET).
func commandTable() []command {
	return []command{
		{name: "*", fn: cmdAsterisk},
		{name: "WAIT", fn: cmdWait, blocks: true},
		{name: "MIRROR", fn: cmdMirror, blocks: true},
		{name: "MASTER", fn: cmdMaster},
		{name: "PING", fn: cmdPing},
		{name: "TIME", fn: cmdTime},
		{name: "AUTH", fn: cmdAuth},
		{name: "HOOKS", fn: cmdHooks},
		{name: "INDEX", fn: cmdIndex},
		{name: "DATA", fn: cmdData},
		{name: "SET", fn: cmdSet, write: true},
		{name: "SETX", fn: cmdSet, write: true},
		{name: "GET", fn: cmdGet},
		{name: "MGET", fn: cmdMget},
		{name: "DEL", fn: cmdDel, write: true},
		{name: "EXISTS", fn: cmdExists},
		{name: "CHECK", fn: cmdCheck},
		{name: "SCAN", fn: cmdScan},
		{name: "SCANX", fn: cmdScan},
		{name: "RSCAN", fn: cmdRscan},
		{name: "KSCAN", fn: cmdKscan},
		{name: "HISTORY", fn: cmdHistory},
		{name: "KEYCUR", fn: cmdKeycur},
		{name: "LENGTH", fn: cmdLength},
		{name: "KEYTIME", fn: cmdKeytime},
		{name: "INFO", fn: cmdInfo},
		{name: "STOP", fn: cmdStop},
		{name: "DBSIZE", fn: cmdDbsize},
		{name: "NSNEW", fn: cmdNsnew, write: true},
		{name: "NSDEL", fn: cmdNsdel, write: true},
		{name: "NSLIST", fn: cmdNslist},
		{name: "NSSET", fn: cmdNsset, write: true},
		{name: "NSINFO", fn: cmdNsinfo},
		{name: "NSJUMP", fn: cmdNsjump},
		{name: "SELECT", fn: cmdSelect},
		{name: "RELOAD", fn: cmdReload},
		{name: "FLUSH", fn: cmdFlush, write: true},
		{name: "COMPACT", fn: cmdCompact, blocks: true},
		{name: "REPLICATE", fn: cmdReplicate},
		{name: "NSACCESS", fn: cmdNsAccess},
	}
}

func (s *Server) lookupCommand(name []byte) *command {
	// Fast path for the hot commands, spelled out in full.
	switch {
	case len(name) == 3 && equalFold(name, "SET"):
		return s.set
	case len(name) == 3 && equalFold(name, "GET"):
		return s.get
	}
	for i := range s.commands {
		n := s.commands[i].name
		if len(name) <= len(n) && equalFold(name, n[:len(name)]) {
			return &s.commands[i]
		}
	}
	return nil
}

func equalFold(b []byte, s string) bool {
	if len(b) != len(s) {
		return false
	}
	for i := 0; i < len(b); i++ {
		c := b[i]
		if 'a' <= c && c <= 'z' {
			c -= 'a' - 'A'
		}
		if c != s[i] {
			return false
		}
	}
	return true
}

// argsValidate is 0-db's check: exact count, and no empty argument unless
// nullAllowed.
func argsValidate(c *client, args [][]byte, n int, nullAllowed bool) bool {
	if len(args) != n {
		c.w.Error("Unexpected arguments")
		return false
	}
	if !nullAllowed {
		for _, a := range args {
			if len(a) == 0 {
				c.w.Error("Invalid argument")
				return false
			}
		}
	}
	return true
}

func argsMin(c *client, args [][]byte, n int) bool {
	if len(args) < n {
		c.w.Error("Missing arguments")
		return false
	}
	for _, a := range args {
		if len(a) == 0 {
			c.w.Error("Invalid argument")
			return false
		}
	}
	return true
}

func (s *Server) adminOK(c *client) bool {
	if !c.admin {
		s.stats.unauthorized.Add(1)
		c.w.Error("Permission denied")
		return false
	}
	return true
}

// nsError writes 0-db's reply for an engine error.
func nsError(c *client, err error) {
	switch {
	case errors.Is(err, zdb.ErrFrozen):
		c.w.Error("Namespace is temporarily frozen (read-write disabled)")
	case errors.Is(err, zdb.ErrReadOnly):
		c.w.Error("Namespace is temporarily locked (read-only)")
	case errors.Is(err, zdb.ErrWorm):
		c.w.Error("Namespace is protected by worm mode")
	case errors.Is(err, zdb.ErrNamespaceFull):
		c.w.Error("No space left on this namespace")
	case errors.Is(err, zdb.ErrUpdateOnly):
		c.w.Error("Invalid key, only update authorized")
	case errors.Is(err, zdb.ErrKeyTooLarge):
		c.w.Error("Key too large")
	case errors.Is(err, zdb.ErrValueTooLarge):
		c.w.Error("Argument too long")
	case errors.Is(err, zdb.ErrInvalidKey):
		c.w.Error("Invalid key")
	case errors.Is(err, zdb.ErrNotFound):
		c.w.Error("Key not found")
	case errors.Is(err, zdb.ErrNoMoreData):
		c.w.Error("No more data")
	case errors.Is(err, zdb.ErrInvalidCursor):
		c.w.Error("Invalid key format")
	case errors.Is(err, zdb.ErrIO):
		c.w.Error("Cannot write data right now")
	case errors.Is(err, zdb.ErrClosed):
		c.w.Error("Your active namespace is not available anymore (probably removed).")
	default:
		c.w.Error("Internal Error")
	}
}

func cmdAsterisk(s *Server, c *client, args [][]byte) bool {
	c.w.Error("This is not a valid command")
	return true
}

func cmdPing(s *Server, c *client, args [][]byte) bool {
	c.w.Simple("PONG")
	return true
}

func cmdTime(s *Server, c *client, args [][]byte) bool {
	now := time.Now()
	c.w.Array(2)
	c.w.BulkString(strconv.FormatInt(now.Unix(), 10))
	c.w.BulkString(strconv.FormatInt(int64(now.Nanosecond()/1000), 10))
	return true
}

func cmdStop(s *Server, c *client, args [][]byte) bool {
	c.w.Error("Unauthorized")
	return true
}

// timestampArg parses the admin-only explicit timestamp of SET and DEL.
func timestampArg(b []byte) (uint32, bool) {
	v, err := strconv.ParseUint(string(b), 10, 32)
	return uint32(v), err == nil
}

// timestampedArgs validates the n arguments of a write (SET, DEL) that an
// admin may follow with an explicit timestamp; ok false means an error
// reply was written.
func (s *Server) timestampedArgs(c *client, args [][]byte, n int, nullAllowed bool) (ts uint32, ok bool) {
	if len(args) != n+1 {
		return 0, argsValidate(c, args, n, nullAllowed)
	}
	if !s.adminOK(c) {
		return 0, false
	}
	if ts, ok = timestampArg(args[n]); !ok {
		c.w.Error("Invalid argument")
	}
	return ts, ok
}

func cmdSet(s *Server, c *client, args [][]byte) bool {
	ts, ok := s.timestampedArgs(c, args, 3, true)
	if !ok {
		return true
	}
	if len(args[1]) > zdb.MaxKeySize {
		c.w.Error("Key too large")
		return true
	}
	if !c.writable {
		c.w.Error("Namespace is in read-only mode")
		return true
	}
	if c.ns.Mode() == zdb.ModeUser && len(args[1]) == 0 {
		c.w.Error("Invalid argument, key needed")
		return true
	}
	r, err := c.ns.Set(args[1], args[2], ts)
	if err != nil {
		nsError(c, err)
		return true
	}
	if r.Unchanged {
		c.w.Nil()
		return true
	}
	c.queued(c.ns, r.Seq)
	c.w.Bulk(r.Key)
	return true
}

func keyArg(c *client, args [][]byte) bool {
	if !argsValidate(c, args, 2, false) {
		return false
	}
	if len(args[1]) > zdb.MaxKeySize {
		c.w.Error("Invalid key")
		return false
	}
	return true
}

func cmdGet(s *Server, c *client, args [][]byte) bool {
	if !keyArg(c, args) {
		return true
	}
	s.getOne(c, args[1])
	return true
}

func (s *Server) getOne(c *client, key []byte) {
	mark := c.w.Len()
	_, err := c.ns.GetInto(key, func(n int) []byte {
		c.w.BulkHeader(n)
		return c.w.Grow(n)
	})
	if err != nil {
		c.w.Truncate(mark) // the header, and a value that failed its check
	}
	switch {
	case err == nil:
		c.w.BulkEnd()
	case errors.Is(err, zdb.ErrNotFound), errors.Is(err, zdb.ErrInvalidKey):
		c.w.Nil()
	case errors.Is(err, zdb.ErrFrozen):
		nsError(c, err)
	default:
		s.log.Error("zdb get failed", "ns", c.ns.Name(), "err", err)
		c.w.Error("Internal Error")
	}
}

func cmdMget(s *Server, c *client, args [][]byte) bool {
	if len(args) < 2 {
		c.w.Error("Invalid arguments")
		return true
	}
	for _, k := range args[1:] {
		if len(k) > zdb.MaxKeySize {
			c.w.Error("Invalid key")
			return true
		}
	}
	if c.ns.Settings().Freeze {
		nsError(c, zdb.ErrFrozen)
		return true
	}
	c.w.Array(len(args) - 1)
	for _, k := range args[1:] {
		s.getOne(c, k)
	}
	return true
}

func cmdDel(s *Server, c *client, args [][]byte) bool {
	ts, ok := s.timestampedArgs(c, args, 2, false)
	if !ok {
		return true
	}
	if len(args[1]) > zdb.MaxKeySize {
		c.w.Error("Invalid key")
		return true
	}
	if !c.writable {
		c.w.Error("Namespace is in read-only mode")
		return true
	}
	seq, err := c.ns.Delete(args[1], ts)
	switch {
	case err == nil:
		c.queued(c.ns, seq)
		c.w.Simple("OK")
	case errors.Is(err, zdb.ErrWorm):
		c.w.Error("Cannot delete a key when namespace is in worm mode")
	case errors.Is(err, zdb.ErrInvalidKey):
		c.w.Error("Key not found")
	default:
		nsError(c, err)
	}
	return true
}

// statKey runs fn on a key's metadata, replying nil when it is missing.
func statKey(c *client, args [][]byte, fn func(m zdb.Meta)) bool {
	if !keyArg(c, args) {
		return true
	}
	m, err := c.ns.Stat(args[1])
	switch {
	case err == nil:
		fn(m)
	case errors.Is(err, zdb.ErrNotFound), errors.Is(err, zdb.ErrInvalidKey):
		c.w.Nil()
	default:
		nsError(c, err)
	}
	return true
}

func cmdExists(s *Server, c *client, args [][]byte) bool {
	if !keyArg(c, args) {
		return true
	}
	_, err := c.ns.Stat(args[1])
	switch {
	case err == nil:
		c.w.Int(1)
	case errors.Is(err, zdb.ErrNotFound), errors.Is(err, zdb.ErrInvalidKey):
		c.w.Int(0)
	default:
		nsError(c, err)
	}
	return true
}

func cmdCheck(s *Server, c *client, args [][]byte) bool {
	if !keyArg(c, args) {
		return true
	}
	ok, err := c.ns.Check(args[1])
	switch {
	case err == nil || errors.Is(err, zdb.ErrCorrupt):
		if ok {
			c.w.Int(1)
		} else {
			c.w.Int(0)
		}
	case errors.Is(err, zdb.ErrNotFound), errors.Is(err, zdb.ErrInvalidKey):
		c.w.Nil()
	default:
		nsError(c, err)
	}
	return true
}

func cmdLength(s *Server, c *client, args [][]byte) bool {
	return statKey(c, args, func(m zdb.Meta) { c.w.Int(int64(m.Length)) })
}

func cmdKeytime(s *Server, c *client, args [][]byte) bool {
	return statKey(c, args, func(m zdb.Meta) { c.w.Int(int64(m.Timestamp)) })
}

func cmdKeycur(s *Server, c *client, args [][]byte) bool {
	if !argsValidate(c, args, 2, false) {
		return true
	}
	cur, err := c.ns.KeyCursor(args[1])
	switch {
	case err == nil:
		c.w.Bulk(cur)
	case errors.Is(err, zdb.ErrNotFound), errors.Is(err, zdb.ErrInvalidKey), errors.Is(err, zdb.ErrKeyTooLarge):
		c.w.Error("Key not found")
	default:
		nsError(c, err)
	}
	return true
}

// scanBatch bounds one SCAN reply (0-db bounds it by time instead).
const scanBatch = 128

func cmdScan(s *Server, c *client, args [][]byte) bool  { return scan(c, args, false) }
func cmdRscan(s *Server, c *client, args [][]byte) bool { return scan(c, args, true) }

func scan(c *client, args [][]byte, backward bool) bool {
	var from *zdb.Cursor
	if len(args) > 1 {
		cur, err := c.ns.DecodeCursor(args[1])
		if err != nil {
			c.w.Error("Invalid key format")
			return true
		}
		from = &cur
	}
	items, err := c.ns.Scan(from, scanBatch, backward)
	if err != nil {
		nsError(c, err)
		return true
	}
	last := items[len(items)-1]
	c.w.Array(2)
	c.w.Bulk(last.EncodeCursor())
	c.w.Array(len(items))
	for _, it := range items {
		c.w.Array(3)
		c.w.Bulk(it.Key)
		c.w.Int(int64(it.Length))
		c.w.Int(int64(it.Timestamp))
	}
	return true
}

func cmdKscan(s *Server, c *client, args [][]byte) bool {
	c.w.Error("Command disabled in release code, not yet available")
	return true
}

func cmdHistory(s *Server, c *client, args [][]byte) bool {
	if len(args) != 2 && len(args) != 3 {
		c.w.Error("Invalid arguments")
		return true
	}
	var at *zdb.Cursor
	if len(args) == 3 {
		if len(args[2]) != zdb.HistoryCursorSize {
			c.w.Error("Invalid arguments")
			return true
		}
		cur := zdb.Cursor{File: le32(args[2]), Offset: le32(args[2][4:])}
		if cur.File == 0 && cur.Offset == 0 {
			c.w.Error("No more history")
			return true
		}
		at = &cur
	}
	v, err := c.ns.History(args[1], at)
	switch {
	case err == nil:
	case errors.Is(err, zdb.ErrNotFound), errors.Is(err, zdb.ErrKeyTooLarge):
		c.w.Error("Key not found")
		return true
	case errors.Is(err, zdb.ErrInvalidKey) && at != nil:
		c.w.Error("Invalid arguments (invalid key)")
		return true
	case errors.Is(err, zdb.ErrInvalidCursor):
		c.w.Error("Invalid arguments (index query)")
		return true
	case errors.Is(err, zdb.ErrInvalidKey):
		c.w.Error("Key not found")
		return true
	default:
		nsError(c, err)
		return true
	}
	c.w.Array(3)
	if v.Parent != nil {
		c.w.Bulk(zdb.EncodeHistoryCursor(*v.Parent))
	} else {
		c.w.Nil()
	}
	c.w.BulkString(strconv.FormatUint(uint64(v.Timestamp), 10))
	c.w.Bulk(v.Value)
	return true
}

func le32(b []byte) uint32 {
	return uint32(b[0]) | uint32(b[1])<<8 | uint32(b[2])<<16 | uint32(b[3])<<24
}

func cmdDbsize(s *Server, c *client, args [][]byte) bool {
	c.w.Int(c.ns.Entries())
	return true
}

func cmdAuth(s *Server, c *client, args [][]byte) bool {
	switch len(args) {
	case 2:
		if s.cfg.Admin == "" {
			c.w.Error("Authentication disabled")
			return true
		}
		if !argsValidate(c, args, 2, false) {
			return true
		}
		if len(args[1]) > 128 {
			c.w.Error("Password too long")
			return true
		}
		if subtle.ConstantTimeCompare(args[1], []byte(s.cfg.Admin)) == 1 {
			c.admin = true
			c.w.Simple("OK")
			return true
		}
		c.w.Error("Access denied")
	case 3:
		if !argsValidate(c, args, 3, false) {
			return true
		}
		if !prefixFold(args[1], "SECURE") {
			c.w.Error("Only SECURE extra method supported")
			return true
		}
		if prefixFold(args[2], "CHALLENGE") {
			c.nonce = newNonce()
			c.w.Simple(c.nonce)
			return true
		}
		if s.cfg.Admin == "" {
			c.w.Error("Authentication disabled")
			return true
		}
		if !secureOK(c, args[2], s.cfg.Admin) {
			return true
		}
		c.admin = true
		c.w.Simple("OK")
	default:
		c.w.Error("Unexpected arguments")
	}
	return true
}

// prefixFold is 0-db's strncasecmp(input, word, len(input)) == 0.
func prefixFold(b []byte, word string) bool {
	return len(b) <= len(word) && equalFold(b, word[:len(b)])
}

// secureOK checks a SECURE answer: hex sha1("<nonce>:<password>"). The
// nonce is single-use.
func secureOK(c *client, answer []byte, password string) bool {
	if c.nonce == "" {
		c.w.Error("No CHALLENGE requested, secure authentication not available")
		return false
	}
	if len(answer) != 40 {
		c.w.Error("Invalid hash length")
		return false
	}
	sum := sha1.Sum([]byte(c.nonce + ":" + password))
	c.nonce = ""
	if subtle.ConstantTimeCompare(bytes.ToLower(answer), []byte(hex.EncodeToString(sum[:]))) != 1 {
		c.w.Error("Access denied")
		return false
	}
	return true
}

func cmdSelect(s *Server, c *client, args [][]byte) bool {
	if len(args) < 2 {
		c.w.Error("Invalid argument")
		return true
	}
	if len(args[1]) > zdb.MaxNamespaceName {
		c.w.Error("Namespace too long")
		return true
	}
	ns, err := s.db.Namespace(string(args[1]))
	if err != nil {
		c.w.Error("Namespace not found")
		return true
	}
	st := ns.Settings()
	protected := st.HasPassword
	// --protect: the default namespace is guarded by the admin password.
	adminGuard := ns.Name() == zdb.DefaultNamespace && s.cfg.Protect && s.cfg.Admin != ""
	writable := true
	switch {
	case !protected && !adminGuard:
	case len(args) == 2:
		if protected && !st.Public {
			c.w.Error("Namespace protected and private")
			return true
		}
		writable = false
	case len(args) > 4:
		c.w.Error("Too many arguments")
		return true
	case len(args) == 3:
		if len(args[2]) > 255 {
			c.w.Error("Password too long")
			return true
		}
		pw := string(args[2])
		ok := (adminGuard && subtle.ConstantTimeCompare([]byte(pw), []byte(s.cfg.Admin)) == 1) ||
			(protected && ns.CheckPassword(pw))
		if !ok {
			c.w.Error("Access denied")
			return true
		}
	case len(args) == 4:
		if !prefixFold(args[2], "SECURE") {
			c.w.Error("Only SECURE extra method supported")
			return true
		}
		pw, clear := ns.ClearPassword()
		if adminGuard && !protected {
			pw, clear = s.cfg.Admin, true
		}
		if !clear && c.nonce != "" {
			// Only a salted hash is stored: the challenge cannot be checked.
			c.nonce = ""
			c.w.Error("Access denied (SECURE needs a password kept with --compat-passwords)")
			return true
		}
		if !secureOK(c, args[3], pw) {
			return true
		}
	}
	c.ns = ns
	c.writable = writable
	c.w.Simple("OK")
	return true
}

func cmdNsnew(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) || !argsValidate(c, args, 2, false) {
		return true
	}
	if len(args[1]) > zdb.MaxNamespaceName {
		c.w.Error("Namespace too long")
		return true
	}
	name := string(args[1])
	if zdb.ValidateName(name) != nil || name == zdb.DefaultNamespace {
		c.w.Error("This name is not allowed")
		return true
	}
	if _, err := s.db.Create(name); err != nil {
		if errors.Is(err, zdb.ErrNamespaceExists) {
			c.w.Error("This namespace is not available")
		} else {
			s.log.Error("zdb namespace create failed", "ns", name, "err", err)
			c.w.Error("Could not create namespace")
		}
		return true
	}
	s.hooks.run(s.ctxBackground(), false, "namespace-created", name)
	c.w.Simple("OK")
	return true
}

func cmdNsdel(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) || !argsValidate(c, args, 2, false) {
		return true
	}
	if len(args[1]) > zdb.MaxNamespaceName {
		c.w.Error("Namespace too long")
		return true
	}
	name := string(args[1])
	if name == zdb.DefaultNamespace {
		c.w.Error("Cannot remove default namespace")
		return true
	}
	ns, err := s.db.Namespace(name)
	if err != nil {
		c.w.Error("This namespace doesn't exists")
		return true
	}
	if c.ns == ns {
		c.w.Error("Cannot remove namespace you're currently using.")
		return true
	}
	if err := s.db.Delete(name); err != nil {
		s.log.Error("zdb namespace delete failed", "ns", name, "err", err)
		c.w.Error("Could not delete this namespace")
		return true
	}
	s.hooks.run(s.ctxBackground(), false, "namespace-deleted", name)
	c.w.Simple("OK")
	return true
}

func cmdNslist(s *Server, c *client, args [][]byte) bool {
	names := s.db.List()
	c.w.Array(len(names))
	for _, n := range names {
		c.w.BulkString(n)
	}
	return true
}

func cmdNsset(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) || !argsValidate(c, args, 4, false) {
		return true
	}
	if len(args[1]) > zdb.MaxNamespaceName {
		c.w.Error("Namespace too long")
		return true
	}
	if len(args[2]) > 255 || len(args[3]) > 63 {
		c.w.Error("Argument too long")
		return true
	}
	name, prop, value := string(args[1]), string(args[2]), string(args[3])
	ns, err := s.db.Namespace(name)
	if err != nil {
		c.w.Error("Namespace not found")
		return true
	}
	on := value[0] == '1'
	switch {
	case prop == "mode":
		if s.db.Options().Mode != zdb.ModeMix {
			c.w.Error("This server instance is configured to use a single runtime mode")
			return true
		}
		var m zdb.Mode
		switch value {
		case "user":
			m = zdb.ModeUser
		case "seq":
			m = zdb.ModeSeq
		default:
			c.w.Error("Invalid property value (expected: user, seq)")
			return true
		}
		err = ns.Update(func(st *zdb.Settings) { st.Mode = m })
		if errors.Is(err, zdb.ErrModeChange) {
			c.w.Error("Cannot change mode of used namespace")
			return true
		}
	case prop == "lock":
		err = ns.Update(func(st *zdb.Settings) { st.Lock = on })
	case prop == "freeze":
		err = ns.Update(func(st *zdb.Settings) { st.Freeze = on })
	case name == zdb.DefaultNamespace:
		c.w.Error("Cannot update default namespace")
		return true
	case prop == "maxsize":
		n, _ := strconv.ParseUint(value, 10, 64)
		err = ns.Update(func(st *zdb.Settings) { st.MaxSize = n })
	case prop == "password":
		if value == "*" {
			value = ""
		}
		err = ns.SetPassword(value)
	case prop == "public":
		err = ns.Update(func(st *zdb.Settings) { st.Public = on })
	case prop == "worm":
		err = ns.Update(func(st *zdb.Settings) { st.Worm = on })
	default:
		c.w.Error("Invalid property")
		return true
	}
	if err != nil {
		s.log.Error("zdb namespace update failed", "ns", name, "err", err)
		c.w.Error("Internal Error")
		return true
	}
	s.hooks.run(s.ctxBackground(), false, "namespace-updated", name)
	c.w.Simple("OK")
	return true
}

func cmdNsjump(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) {
		return true
	}
	seq, err := c.ns.Jump()
	if err != nil {
		nsError(c, err)
		return true
	}
	c.queued(c.ns, seq)
	c.w.Simple("OK")
	return true
}

func cmdReload(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) || !argsValidate(c, args, 2, false) {
		return true
	}
	if len(args[1]) > zdb.MaxNamespaceName {
		c.w.Error("Namespace too long")
		return true
	}
	name := string(args[1])
	if _, err := s.db.Namespace(name); err != nil {
		c.w.Error("Namespace not found")
		return true
	}
	ns, err := s.db.Reload(name)
	if err != nil {
		s.log.Error("zdb namespace reload failed", "ns", name, "err", err)
		c.w.Error("Internal Error")
		return true
	}
	if c.ns.Name() == name {
		c.ns = ns
	}
	s.hooks.run(s.ctxBackground(), false, "namespace-reloaded", name)
	c.w.Simple("OK")
	return true
}

func cmdFlush(s *Server, c *client, args [][]byte) bool {
	st := c.ns.Settings()
	if st.Public || !st.HasPassword {
		c.w.Error("Flushing public namespace denied")
		return true
	}
	if !c.writable {
		c.w.Error("Namespace is in read-only mode")
		return true
	}
	if err := c.ns.Flush(); err != nil {
		s.log.Error("zdb flush failed", "ns", c.ns.Name(), "err", err)
		c.w.Error("Internal Server Error")
		return true
	}
	c.w.Simple("OK")
	return true
}

func cmdIndex(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) || !argsMin(c, args, 2) {
		return true
	}
	if !strings.EqualFold(string(args[1]), "DIRTY") {
		c.w.Error("Unknown INDEX subcommand")
		return true
	}
	if len(args) == 3 {
		if !strings.EqualFold(string(args[2]), "RESET") {
			c.w.Error("Unknown INDEX DIRTY subcommand")
			return true
		}
		c.ns.DirtyFiles(true)
		c.w.Simple("OK")
		return true
	}
	ids := c.ns.DirtyFiles(false)
	c.w.Array(len(ids))
	for _, id := range ids {
		c.w.Int(int64(id))
	}
	return true
}

func cmdData(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) || !argsMin(c, args, 2) {
		return true
	}
	if !strings.EqualFold(string(args[1]), "RAW") {
		c.w.Error("Unknown DATA subcommand")
		return true
	}
	if !argsMin(c, args, 4) {
		return true
	}
	file, err1 := strconv.ParseUint(string(args[2]), 10, 32)
	off, err2 := strconv.ParseUint(string(args[3]), 10, 32)
	if err1 != nil || err2 != nil {
		c.w.Error("Invalid Request")
		return true
	}
	r, err := c.ns.ReadRaw(uint32(file), uint32(off))
	switch {
	case errors.Is(err, zdb.ErrInvalidCursor), errors.Is(err, zdb.ErrCorrupt):
		c.w.Error("EOF")
		return true
	case err != nil:
		// 0-db's reply when it cannot open the data file.
		c.w.Error("Invalid Request")
		return true
	}
	c.w.Array(6)
	c.w.Bulk(r.Key)
	c.w.Int(int64(r.Previous))
	c.w.BulkString("0x" + hex8(r.CRC))
	c.w.Int(int64(r.Flags))
	c.w.Int(int64(r.Timestamp))
	if len(r.Payload) > 0 {
		c.w.Bulk(r.Payload)
	} else {
		c.w.Nil()
	}
	return true
}

func hex8(v uint32) string {
	s := strconv.FormatUint(uint64(v), 16)
	return strings.Repeat("0", 8-len(s)) + s
}

func cmdMaster(s *Server, c *client, args [][]byte) bool {
	if !s.adminOK(c) {
		return true
	}
	c.master = true
	c.w.Simple("Hello, master")
	return true
}

// newNonce returns a fresh SECURE challenge: 8 random bytes in hex.
func newNonce() string {
	var b [8]byte
	rand.Read(b[:])
	return hex.EncodeToString(b[:])
}
