package replica

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/zosgrid/zos/internal/atomicfile"

	"github.com/zosgrid/zos/resp"
	"github.com/zosgrid/zos/zdb"
)

// progressFile holds a namespace's position in the primary's log.
const progressFile = "zos-replica"

// Config configures a Follower.
type Config struct {
	Primary  string // HOST:PORT
	Password string // the primary's admin password, if any
	// Poll is how long to wait before asking again once caught up
	// (default 100 ms).
	Poll   time.Duration
	Logger *slog.Logger
}

// Follower keeps a local zdb.DB a copy of a primary, per namespace.
type Follower struct {
	db  *zdb.DB
	cfg Config
	log *slog.Logger

	mu    sync.Mutex
	state map[string]*nsState
	conn  bool
	last  time.Time
	err   string
}

type nsState struct {
	Pos      zdb.LogPosition `json:"pos"`
	access   time.Time       // last copy of the primary's access settings
	end      zdb.LogPosition
	lastTS   uint32
	resyncs  int
	caughtUp bool
}

// New returns a follower writing into db.
func New(db *zdb.DB, cfg Config) *Follower {
	if cfg.Poll <= 0 {
		cfg.Poll = 100 * time.Millisecond
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	return &Follower{db: db, cfg: cfg, log: log.With("component", "zdb-replica", "primary", cfg.Primary),
		state: map[string]*nsState{}}
}

// Run follows the primary until ctx ends, reconnecting after errors.
func (f *Follower) Run(ctx context.Context) error {
	backoff := 100 * time.Millisecond
	for {
		err := f.session(ctx)
		if ctx.Err() != nil {
			return nil
		}
		f.mu.Lock()
		f.conn = false
		if err != nil {
			f.err = err.Error()
		}
		f.mu.Unlock()
		f.log.Warn("zdb replication interrupted, retrying", "err", err, "in", backoff)
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(backoff):
		}
		if backoff < 2*time.Second {
			backoff *= 2
		}
	}
}

// conn is a tiny RESP client.
type conn struct {
	c net.Conn
	r *resp.Reader
	w *resp.Writer
}

func (c *conn) do(ctx context.Context, args ...string) (resp.Value, error) {
	bs := make([][]byte, len(args))
	for i, a := range args {
		bs[i] = []byte(a)
	}
	c.w.Command(bs...)
	if d, ok := ctx.Deadline(); ok {
		c.c.SetDeadline(d)
	} else {
		c.c.SetDeadline(time.Now().Add(30 * time.Second))
	}
	if err := c.w.Flush(); err != nil {
		return resp.Value{}, err
	}
	v, err := c.r.ReadValue()
	if err != nil {
		return v, err
	}
	return v, v.Err()
}

func (f *Follower) session(ctx context.Context) error {
	d := net.Dialer{Timeout: 5 * time.Second}
	nc, err := d.DialContext(ctx, "tcp", f.cfg.Primary)
	if err != nil {
		return err
	}
	defer nc.Close()
	// Closing the connection is how a blocked read learns that ctx ended.
	stop := context.AfterFunc(ctx, func() { nc.Close() })
	defer stop()
	c := &conn{c: nc, r: resp.NewReader(nc), w: resp.NewWriter(nc)}
	if f.cfg.Password != "" {
		if _, err := c.do(ctx, "AUTH", f.cfg.Password); err != nil {
			return fmt.Errorf("auth: %w", err)
		}
	}
	f.mu.Lock()
	f.conn, f.err = true, ""
	f.mu.Unlock()
	f.log.Info("zdb replication connected")
	for {
		names, err := c.do(ctx, "NSLIST")
		if err != nil {
			return err
		}
		idle := true
		for _, n := range names.Array {
			busy, err := f.follow(ctx, c, string(n.Str))
			if err != nil {
				return fmt.Errorf("namespace %s: %w", n.Str, err)
			}
			if busy {
				idle = false
			}
		}
		f.mu.Lock()
		f.last = time.Now()
		f.mu.Unlock()
		if idle {
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(f.cfg.Poll):
			}
		}
	}
}

// follow copies one batch of a namespace; busy reports more may be waiting.
func (f *Follower) follow(ctx context.Context, c *conn, name string) (bool, error) {
	ns, err := f.localNamespace(ctx, c, name)
	if err != nil {
		return false, err
	}
	st, err := f.load(ns)
	if err != nil {
		return false, err
	}
	if time.Since(st.access) > accessRefresh {
		if err := f.copyAccess(ctx, c, ns); err != nil {
			return false, err
		}
		st.access = time.Now()
	}
	v, err := c.do(ctx, "REPLICATE", name, strconv.FormatUint(st.Pos.Generation, 10),
		strconv.FormatUint(uint64(st.Pos.File), 10), strconv.FormatUint(uint64(st.Pos.Offset), 10))
	var re resp.ReplyError
	if errors.As(err, &re) && string(re) == "Replication position lost" {
		f.log.Warn("zdb replication position lost (primary flushed or compacted), resyncing", "ns", name)
		if err := ns.Flush(); err != nil {
			return false, err
		}
		f.mu.Lock()
		st.Pos = zdb.LogPosition{}
		st.resyncs++
		f.mu.Unlock()
		return true, f.save(ns, st)
	}
	if err != nil {
		return false, err
	}
	if len(v.Array) != 6 {
		return false, fmt.Errorf("bad REPLICATE reply %s", v)
	}
	next := zdb.LogPosition{Generation: uint64(v.Array[0].Int), File: uint32(v.Array[1].Int), Offset: uint32(v.Array[2].Int)}
	end := zdb.LogPosition{Generation: next.Generation, File: uint32(v.Array[3].Int), Offset: uint32(v.Array[4].Int)}
	recs := v.Array[5].Array
	var lastTS uint32
	for _, r := range recs {
		if len(r.Array) != 4 {
			return false, fmt.Errorf("bad record %s", r)
		}
		kind, ts, key, val := r.Array[0].Int, uint32(r.Array[1].Int), r.Array[2].Str, r.Array[3].Str
		if err := apply(ns, kind, ts, key, val); err != nil {
			return false, fmt.Errorf("apply record: %w", err)
		}
		lastTS = ts
	}
	if err := ns.CommitAll(); err != nil {
		return false, err
	}
	changed := next != st.Pos
	f.mu.Lock()
	st.Pos, st.end = next, end
	if lastTS != 0 {
		st.lastTS = lastTS
	}
	st.caughtUp = next.File == end.File && next.Offset == end.Offset
	f.mu.Unlock()
	if changed {
		if err := f.save(ns, st); err != nil {
			return false, err
		}
	}
	return len(recs) > 0 && !st.caughtUp, nil
}

// Record kinds in a REPLICATE reply.
const (
	recordSet       = 0
	recordDeleted   = 1
	recordTruncated = 2 // a value a seq compaction dropped (zdb.LogRecord.Truncated)
)

// apply replays one record; replays are idempotent, so a batch applied
// twice after a crash changes nothing (in seq mode, but for an update
// replayed after a later one: ids are positions and each update takes one).
func apply(ns *zdb.Namespace, kind int64, ts uint32, key, val []byte) error {
	set := ns.ReplicaSet
	if kind == recordTruncated {
		set = func(key, _ []byte, ts uint32) (zdb.SetResult, error) { return ns.ReplicaSetTruncated(key, ts) }
	}
	if kind == recordDeleted {
		_, err := ns.ReplicaDelete(key, ts)
		if errors.Is(err, zdb.ErrNotFound) {
			return nil
		}
		return err
	}
	if ns.Mode() == zdb.ModeSeq {
		if len(key) != zdb.SeqKeySize {
			return fmt.Errorf("seq record with a %d-byte key", len(key))
		}
		id := uint64(key[0]) | uint64(key[1])<<8 | uint64(key[2])<<16 | uint64(key[3])<<24 |
			uint64(key[4])<<32 | uint64(key[5])<<40 | uint64(key[6])<<48 | uint64(key[7])<<56
		if next := ns.Stats().NextID; id >= next {
			// Ids are positions: allocate up to it (a gap comes from an
			// update's history slot and cannot happen in order).
			r, err := set(nil, val, ts)
			if err != nil {
				return err
			}
			if string(r.Key) != string(key) {
				return fmt.Errorf("seq id diverged: primary %x, replica %x", key, r.Key)
			}
			return nil
		}
	}
	_, err := set(key, val, ts)
	if errors.Is(err, zdb.ErrUpdateOnly) {
		return nil // a deleted seq id
	}
	return err
}

// accessRefresh is how often a namespace's password, public flag and
// limits are copied again from the primary.
const accessRefresh = time.Second

// copyAccess gives the local namespace the primary's password, public flag
// and limits (maxsize, worm, lock, freeze), so that the copy is no easier
// to read than the original and refuses the writes and reads it refuses.
// The replica's own copying ignores the limits (zdb.Namespace.ReplicaSet).
func (f *Follower) copyAccess(ctx context.Context, c *conn, ns *zdb.Namespace) error {
	v, err := c.do(ctx, "NSACCESS", ns.Name())
	if err != nil {
		return fmt.Errorf("access settings: %w", err)
	}
	var a zdb.Access
	if err := json.Unmarshal(v.Str, &a); err != nil {
		return fmt.Errorf("access settings: %w", err)
	}
	if cur := ns.Access(); cur.Public == a.Public && cur.PasswordClear == a.PasswordClear &&
		string(cur.PasswordHash) == string(a.PasswordHash) && string(cur.PasswordSalt) == string(a.PasswordSalt) &&
		(a.Limits == nil || *a.Limits == *cur.Limits) {
		return nil
	}
	return ns.SetAccess(a)
}

// localNamespace opens (creating with the primary's mode) a namespace.
func (f *Follower) localNamespace(ctx context.Context, c *conn, name string) (*zdb.Namespace, error) {
	if ns, err := f.db.Namespace(name); err == nil {
		return ns, nil
	}
	info, err := c.do(ctx, "NSINFO", name)
	if err != nil {
		return nil, err
	}
	ns, err := f.db.Create(name)
	if err != nil {
		return nil, err
	}
	// Protect the copy before any data arrives.
	if err := f.copyAccess(ctx, c, ns); err != nil {
		return nil, err
	}
	if strings.Contains(string(info.Str), "mode: sequential") && ns.Mode() != zdb.ModeSeq {
		if err := ns.Update(func(s *zdb.Settings) { s.Mode = zdb.ModeSeq }); err != nil {
			return nil, err
		}
	}
	f.log.Info("zdb replica created namespace", "ns", name)
	return ns, nil
}

func (f *Follower) progressPath(ns *zdb.Namespace) string {
	return filepath.Join(f.db.Options().IndexDir, ns.Name(), progressFile)
}

func (f *Follower) load(ns *zdb.Namespace) (*nsState, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if st := f.state[ns.Name()]; st != nil {
		return st, nil
	}
	st := &nsState{}
	b, err := os.ReadFile(f.progressPath(ns))
	if err == nil {
		if err := json.Unmarshal(b, st); err != nil {
			return nil, fmt.Errorf("%s: %w", f.progressPath(ns), err)
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	f.state[ns.Name()] = st
	return st, nil
}

// save persists the position after the records before it are committed.
func (f *Follower) save(ns *zdb.Namespace, st *nsState) error {
	f.mu.Lock()
	b, err := json.Marshal(st)
	f.mu.Unlock()
	if err != nil {
		return err
	}
	return atomicfile.Write(f.progressPath(ns), b, 0o600)
}

// InfoLines describes replication for INFO.
func (f *Follower) InfoLines() []string {
	f.mu.Lock()
	defer f.mu.Unlock()
	lines := []string{"role: replica", "primary: " + f.cfg.Primary, "primary_connected: " + yes(f.conn)}
	if !f.last.IsZero() {
		lines = append(lines, fmt.Sprintf("primary_last_contact_seconds: %.1f", time.Since(f.last).Seconds()))
	}
	if f.err != "" {
		lines = append(lines, "last_error: "+strings.ReplaceAll(f.err, "\n", " "))
	}
	names := make([]string, 0, len(f.state))
	for n := range f.state {
		names = append(names, n)
	}
	sortStrings(names)
	for _, n := range names {
		st := f.state[n]
		behind := int64(0)
		if st.end.File == st.Pos.File {
			behind = int64(st.end.Offset) - int64(st.Pos.Offset)
		} else if st.end.File > st.Pos.File {
			behind = -1 // a whole file or more
		}
		lag := int64(0)
		if !st.caughtUp && st.lastTS != 0 {
			lag = time.Now().Unix() - int64(st.lastTS)
		}
		lines = append(lines, fmt.Sprintf("ns_%s: position=%d:%d primary_end=%d:%d bytes_behind=%d lag_seconds=%d caught_up=%s resyncs=%d",
			n, st.Pos.File, st.Pos.Offset, st.end.File, st.end.Offset, behind, lag, yes(st.caughtUp), st.resyncs))
	}
	return lines
}

func yes(b bool) string {
	if b {
		return "yes"
	}
	return "no"
}

func sortStrings(s []string) {
	for i := 1; i < len(s); i++ {
		for j := i; j > 0 && s[j] < s[j-1]; j-- {
			s[j], s[j-1] = s[j-1], s[j]
		}
	}
}
