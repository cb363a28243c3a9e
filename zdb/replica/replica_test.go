package replica

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/freeport"
	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/zdb"
	"github.com/zosgrid/zos/zdb/server"
)

type node struct {
	db     *zdb.DB
	srv    *server.Server
	cancel context.CancelFunc
	done   chan error
	addr   string
}

func startNode(t *testing.T, dir string, port int, mode zdb.Mode) *node {
	t.Helper()
	db, err := zdb.Open(zdb.Options{DataDir: filepath.Join(dir, "data"), IndexDir: filepath.Join(dir, "index"), Mode: mode})
	if err != nil {
		t.Fatal(err)
	}
	srv, _ := server.New(db, server.Config{Port: port, Admin: "adm"})
	// The port of a node just stopped may linger briefly.
	zostest.WaitFor(t, 5*time.Second, srv.Listen)
	ctx, cancel := context.WithCancel(context.Background())
	n := &node{db: db, srv: srv, cancel: cancel, done: make(chan error, 1), addr: srv.Addrs()[0].String()}
	go func() { n.done <- srv.Serve(ctx) }()
	return n
}

func (n *node) stop() {
	n.cancel()
	<-n.done
	n.db.Close()
}

type follower struct {
	f      *Follower
	cancel context.CancelFunc
	done   chan error
}

func startFollower(db *zdb.DB, primary string) *follower {
	f := New(db, Config{Primary: primary, Password: "adm", Poll: 10 * time.Millisecond})
	ctx, cancel := context.WithCancel(context.Background())
	fl := &follower{f: f, cancel: cancel, done: make(chan error, 1)}
	go func() { fl.done <- f.Run(ctx) }()
	return fl
}

func (f *follower) stop() { f.cancel(); <-f.done }

// same reports how the secondary differs from the primary: every key of
// every namespace, its value and timestamp.
func same(p, s *zdb.DB) error {
	for _, name := range p.List() {
		pn, _ := p.Namespace(name)
		sn, err := s.Namespace(name)
		if err != nil {
			return fmt.Errorf("namespace %s missing", name)
		}
		if a, b := pn.Stats().Entries, sn.Stats().Entries; a != b {
			return fmt.Errorf("%s: %d keys on primary, %d on secondary", name, a, b)
		}
		if a, b := pn.Stats().NextID, sn.Stats().NextID; pn.Mode() == zdb.ModeSeq && a != b {
			return fmt.Errorf("%s: next id %d on primary, %d on secondary", name, a, b)
		}
		items, err := pn.Scan(nil, 1<<20, false)
		if err != nil {
			continue
		}
		for _, it := range items {
			pv, pm, _ := pn.Get(nil, it.Key)
			sv, sm, err := sn.Get(nil, it.Key)
			if err != nil || string(pv) != string(sv) || pm.Timestamp != sm.Timestamp {
				return fmt.Errorf("%s: key %x differs (%v)", name, it.Key, err)
			}
		}
	}
	return nil
}

// freePort reserves a loopback port until the test ends, so that the
// primary restarted on it finds it free (see internal/freeport).
func freePort(t *testing.T) int {
	r, err := freeport.Reserve("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Release() })
	return r.Port()
}

func write(t *testing.T, db *zdb.DB, ns string, from, to int) {
	t.Helper()
	n, err := db.Namespace(ns)
	if err != nil {
		t.Fatal(err)
	}
	for i := from; i < to; i++ {
		key := []byte("k" + strconv.Itoa(i))
		if n.Mode() == zdb.ModeSeq {
			key = nil
		}
		r, err := n.Set(key, []byte(strings.Repeat("v", i%50)+strconv.Itoa(i)), uint32(1600000000+i))
		if err != nil {
			t.Fatal(err)
		}
		n.Commit(r.Seq)
	}
}

func TestFollowKillRestartConverge(t *testing.T) {
	zostest.CheckLeaks(t)
	pdir, sdir := t.TempDir(), t.TempDir()
	port := freePort(t)
	p := startNode(t, pdir, port, zdb.ModeMix)
	pns, _ := p.db.Create("seqns")
	pns.Update(func(s *zdb.Settings) { s.Mode = zdb.ModeSeq; s.Public = false })
	pns.SetPassword("secret")
	write(t, p.db, "default", 0, 200)
	write(t, p.db, "seqns", 0, 50)
	s := startNode(t, sdir, 0, zdb.ModeMix)
	f := startFollower(s.db, p.addr)
	converge := func() {
		t.Helper()
		zostest.WaitFor(t, 20*time.Second, func() error { return same(p.db, s.db) })
	}
	converge()
	// The copy of a private namespace is as private as the original.
	sns, _ := s.db.Namespace("seqns")
	if st := sns.Settings(); st.Public || !st.HasPassword || !sns.CheckPassword("secret") {
		t.Fatalf("replica access settings: %+v", st)
	}
	// Deletes and overwrites replay; timestamps are kept (checked by same).
	d, _ := p.db.Namespace("default")
	for i := 0; i < 20; i++ {
		seq, _ := d.Delete([]byte("k"+strconv.Itoa(i)), 0)
		d.Commit(seq)
	}
	q, _ := p.db.Namespace("seqns")
	r, _ := q.Set([]byte{3, 0, 0, 0, 0, 0, 0, 0}, []byte("updated"), 0)
	q.Commit(r.Seq)
	converge()
	// Kill the secondary's follower, write, restart it: it resumes.
	f.stop()
	write(t, p.db, "default", 200, 300)
	write(t, p.db, "seqns", 50, 60)
	f = startFollower(s.db, p.addr)
	converge()
	// Restart the primary on the same port: the follower reconnects.
	p.stop()
	p = startNode(t, pdir, port, zdb.ModeMix)
	write(t, p.db, "default", 300, 350)
	converge()
	// Restart the secondary node itself (its DB too).
	f.stop()
	s.stop()
	s = startNode(t, sdir, 0, zdb.ModeMix)
	write(t, p.db, "default", 350, 400)
	f = startFollower(s.db, p.addr)
	converge()
	// A compaction on the primary voids positions: the secondary resyncs.
	if _, err := d.Compact(context.Background()); err == nil {
		t.Fatal("compacting a closed namespace handle should fail")
	}
	d, _ = p.db.Namespace("default")
	if _, err := d.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	write(t, p.db, "default", 400, 410)
	converge()
	// So does a seq compaction, and the secondary rebuilt from the compacted
	// log hands out the same ids: deleted ids (some updated first, so
	// holding history slots) keep their place in the log.
	q, _ = p.db.Namespace("seqns")
	for i := byte(10); i < 30; i++ {
		id := []byte{i, 0, 0, 0, 0, 0, 0, 0}
		if i%3 == 0 {
			r, _ := q.Set(id, []byte("changed once"), 0)
			q.Commit(r.Seq)
		}
		seq, err := q.Delete(id, 0)
		if err != nil {
			t.Fatal(err)
		}
		q.Commit(seq)
	}
	converge()
	if res, err := q.Compact(context.Background()); err != nil || res.EntriesDrops == 0 {
		t.Fatalf("seq compaction: %+v %v", res, err)
	}
	write(t, p.db, "seqns", 60, 70)
	converge()
	lines := strings.Join(f.f.InfoLines(), "\n")
	if !strings.Contains(lines, "role: replica") || !strings.Contains(lines, "caught_up=yes") {
		t.Fatalf("info:\n%s", lines)
	}
	f.stop()
	s.stop()
	p.stop()
}

// A replica copies its primary's limits (maxsize, worm, lock, freeze) and
// keeps them current, while its own copying of records ignores them: the
// primary already applied them, and a limit set after a write must not
// stop the replica from copying that write.
func TestReplicaFollowsNamespaceLimits(t *testing.T) {
	zostest.CheckLeaks(t)
	p := startNode(t, t.TempDir(), 0, zdb.ModeMix)
	defer p.stop()
	pns, err := p.db.Create("limited")
	if err != nil {
		t.Fatal(err)
	}
	write(t, p.db, "limited", 0, 30) // ~900 bytes of payload
	r, err := pns.Set([]byte("k1"), []byte("overwritten before worm"), 0)
	if err != nil {
		t.Fatal(err)
	}
	pns.Commit(r.Seq)
	if err := pns.Update(func(s *zdb.Settings) { s.Worm, s.MaxSize = true, 100 }); err != nil {
		t.Fatal(err)
	}

	s := startNode(t, t.TempDir(), 0, zdb.ModeMix)
	defer s.stop()
	f := startFollower(s.db, p.addr)
	defer f.stop()
	zostest.WaitFor(t, 20*time.Second, func() error { return same(p.db, s.db) })
	sns, err := s.db.Namespace("limited")
	if err != nil {
		t.Fatal(err)
	}
	if st := sns.Settings(); !st.Worm || st.MaxSize != 100 {
		t.Fatalf("replica settings %+v, want worm and maxsize 100", st)
	}
	if _, err := sns.Set([]byte("k1"), []byte("local overwrite"), 0); !errors.Is(err, zdb.ErrWorm) {
		t.Fatalf("a client overwrite on the worm replica: %v, want ErrWorm", err)
	}

	if err := pns.Update(func(s *zdb.Settings) { s.Lock, s.Freeze = true, true }); err != nil {
		t.Fatal(err)
	}
	zostest.WaitFor(t, 20*time.Second, func() error {
		if st := sns.Settings(); !st.Lock || !st.Freeze {
			return fmt.Errorf("replica settings %+v, want lock and freeze", st)
		}
		return nil
	})
	if _, _, err := sns.Get(nil, []byte("k2")); !errors.Is(err, zdb.ErrFrozen) {
		t.Fatalf("GET on the frozen replica: %v, want ErrFrozen", err)
	}

	if err := pns.Update(func(s *zdb.Settings) { *s = zdb.Settings{Mode: s.Mode, Public: s.Public} }); err != nil {
		t.Fatal(err)
	}
	write(t, p.db, "limited", 30, 40)
	zostest.WaitFor(t, 20*time.Second, func() error {
		if st := sns.Settings(); st.Lock || st.Freeze || st.Worm || st.MaxSize != 0 {
			return fmt.Errorf("replica settings %+v, want the limits lifted", st)
		}
		return same(p.db, s.db)
	})
}
