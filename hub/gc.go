package hub

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zosgrid/zos/key"
)

// DefaultGCGrace is how old an unreferenced block must be before garbage
// collection deletes it: a packer uploads blocks first and the .fl after, so
// a young block may belong to a flist that is on its way.
const DefaultGCGrace = time.Hour

// GCRequest is the body of POST /api/v1/admin/gc.
type GCRequest struct {
	// Grace is a Go duration ("30m"); empty means DefaultGCGrace.
	Grace  string `json:"grace,omitempty"`
	DryRun bool   `json:"dry_run,omitempty"`
}

// GCResult says what a garbage collection found and freed.
type GCResult struct {
	DryRun        bool    `json:"dry_run"`
	Grace         string  `json:"grace"`
	Flists        int     `json:"flists"`         // live .fl bodies (named or tagged by some user)
	DeadFlists    int     `json:"dead_flists"`    // .fl bodies no name or tag points to (deleted)
	OrphanParts   int     `json:"orphan_parts"`   // .fl parts of uploads that never finished (deleted)
	Blocks        int     `json:"blocks"`         // blocks in the namespace when scanned
	LiveBlocks    int     `json:"live_blocks"`    // referenced by a live flist
	RecentBlocks  int     `json:"recent_blocks"`  // unreferenced but younger than the grace period
	KeptBlocks    int     `json:"kept_blocks"`    // unreferenced but used by a request during the collection
	DeletedBlocks int     `json:"deleted_blocks"` // deleted (or, in a dry run, would be)
	DeletedBytes  int64   `json:"deleted_bytes"`
	Seconds       float64 `json:"seconds"`
}

// gcState is what requests tell a running collection: blocks and .fl
// bodies they have just relied on, which it must not delete.
type gcState struct {
	mu     sync.Mutex
	blocks map[[32]byte]struct{}
	flists map[string]struct{}
}

// keepBlocks protects ids from a running collection. Callers protect
// before they check that a block exists, and the collection deletes under
// the same lock after checking, so a block a request saw stays.
func (s *Server) keepBlocks(ids ...[32]byte) {
	st := s.gc.Load()
	if st == nil {
		return
	}
	st.mu.Lock()
	for _, id := range ids {
		st.blocks[id] = struct{}{}
	}
	st.mu.Unlock()
}

func (s *Server) keepFlist(hash string) {
	if st := s.gc.Load(); st != nil {
		st.mu.Lock()
		st.flists[hash] = struct{}{}
		st.mu.Unlock()
	}
}

// ErrHubGCUnsupported means the block backend cannot tell a block's age.
var ErrHubGCUnsupported = errors.New("hub: garbage collection needs a zdb block backend (it spares young blocks by their write time)")

// GC deletes the blocks that no stored flist references and that are older
// than grace, and the .fl bodies that no name or tag points to any more.
//
// It is safe with concurrent requests: it starts once the uploads already
// under way have finished (they are then in the user indexes it reads);
// uploads, verifies and block posts made while it runs protect the blocks and
// .fl bodies they rely on (keepBlocks, keepFlist); blocks written after
// start-grace are kept by their zdb write time. Tagging by hash waits for the
// end of the collection (503), as its .fl body may be on the way out. A
// packer that found a block present before the collection started and
// uploads its .fl after the block was deleted gets the usual 409 with the
// missing ids, and packs again.
func (s *Server) GC(ctx context.Context, grace time.Duration, dryRun bool) (GCResult, error) {
	res := GCResult{DryRun: dryRun, Grace: grace.String()}
	if !s.blocks.zdb {
		return res, ErrHubGCUnsupported
	}
	if !s.gcRun.TryLock() {
		return res, fmt.Errorf("%w: a garbage collection is already running", ErrHubBusy)
	}
	defer s.gcRun.Unlock()
	// The machine's clock, not cfg.Now: it is compared with zdb's write
	// times, and a grace period longer than the skew between the two hosts
	// keeps young blocks young.
	start := time.Now()
	st := &gcState{blocks: map[[32]byte]struct{}{}, flists: map[string]struct{}{}}
	s.gate.Lock() // waits for uploads under way
	s.gc.Store(st)
	s.gate.Unlock()
	defer s.gc.Store(nil)

	// Which .fl bodies are live: those a user's name or tag points to.
	var users []string
	stored := map[string]bool{}
	parts := map[string][]string{} // hash -> part keys
	err := s.meta.scan(ctx, func(k string, _ int64, _ int64) error {
		switch {
		case strings.HasPrefix(k, "user:"):
			users = append(users, k[len("user:"):])
		case strings.HasPrefix(k, "fl:"):
			stored[k[len("fl:"):]] = true
		case strings.HasPrefix(k, "flp:"):
			if h, _, ok := strings.Cut(k[len("flp:"):], ":"); ok {
				parts[h] = append(parts[h], k)
			}
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("hub: gc: scanning metadata: %w", err)
	}
	live := map[string]bool{}
	for _, u := range users {
		idx, err := s.loadIndex(ctx, u)
		if err != nil {
			return res, fmt.Errorf("hub: gc: %w", err)
		}
		for _, e := range idx.Flists {
			live[e.Hash] = true
		}
		for _, h := range idx.Tags {
			live[h] = true
		}
	}

	// Mark the blocks of every live .fl body.
	marked := map[[32]byte]struct{}{}
	for h := range live {
		if !stored[h] {
			s.log.Warn("gc: a name or tag points to a missing flist", "hash", h)
			continue
		}
		res.Flists++
		ids, err := s.flistBlockIDs(ctx, h)
		if err != nil {
			// Never sweep on a partial mark.
			return res, fmt.Errorf("hub: gc: flist %s: %w", short(h), err)
		}
		for _, id := range ids {
			marked[id] = struct{}{}
		}
	}
	if s.gcHook != nil {
		s.gcHook("marked")
	}

	// Forget dead .fl bodies and parts of unfinished uploads, unless a
	// request relied on them meanwhile.
	for h := range stored {
		if live[h] {
			continue
		}
		res.DeadFlists++
		if dryRun {
			continue
		}
		if err := s.dropFlist(ctx, st, h, parts[h]); err != nil {
			return res, err
		}
	}
	for h, keys := range parts {
		if stored[h] {
			continue
		}
		res.OrphanParts += len(keys)
		if !dryRun {
			if err := s.dropFlist(ctx, st, h, keys); err != nil {
				return res, err
			}
		}
	}

	// Sweep: unreferenced blocks older than the grace period.
	cutoff := start.Add(-grace).Unix()
	type victim struct {
		id   [32]byte
		size int64
	}
	var victims []victim
	err = s.blocks.scan(ctx, func(k string, size, ts int64) error {
		res.Blocks++
		if len(k) != 32 {
			return nil // not a block key: leave it alone
		}
		var id [32]byte
		copy(id[:], k)
		switch _, ok := marked[id]; {
		case ok:
			res.LiveBlocks++
		case ts >= cutoff:
			res.RecentBlocks++
		default:
			victims = append(victims, victim{id, size})
		}
		return nil
	})
	if err != nil {
		return res, fmt.Errorf("hub: gc: scanning blocks: %w", err)
	}
	for start := 0; start < len(victims); start += 1000 {
		batch := victims[start:min(start+1000, len(victims))]
		st.mu.Lock()
		var del []victim
		for _, v := range batch {
			if _, keep := st.blocks[v.id]; keep {
				res.KeptBlocks++
				continue
			}
			del = append(del, v)
		}
		if !dryRun && len(del) > 0 {
			_, err = s.blocks.c.Pipelined(ctx, func(p redis.Pipeliner) error {
				for _, v := range del {
					p.Do(ctx, "DEL", blockKey(v.id))
				}
				return nil
			})
			if err != nil && !errors.Is(err, redis.Nil) {
				st.mu.Unlock()
				return res, fmt.Errorf("hub: gc: deleting blocks: %w", err)
			}
			for _, v := range del {
				s.cache.remove(v.id)
			}
		}
		st.mu.Unlock()
		for _, v := range del {
			res.DeletedBlocks++
			res.DeletedBytes += v.size
		}
	}
	if !dryRun {
		s.metrics.gcDeletedBlocks.Add(float64(res.DeletedBlocks))
	}
	res.Seconds = time.Since(start).Seconds()
	s.log.Info("garbage collection", "dry_run", dryRun, "grace", grace, "flists", res.Flists, "dead_flists", res.DeadFlists,
		"blocks", res.Blocks, "live", res.LiveBlocks, "recent", res.RecentBlocks, "kept", res.KeptBlocks,
		"deleted", res.DeletedBlocks, "deleted_bytes", res.DeletedBytes)
	return res, nil
}

// dropFlist deletes a .fl body (manifest first, so it is never half there)
// and its parts, unless a request protected it.
func (s *Server) dropFlist(ctx context.Context, st *gcState, hash string, parts []string) error {
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, keep := st.flists[hash]; keep {
		return nil
	}
	for _, k := range append([]string{"fl:" + hash}, parts...) {
		if err := s.meta.del(ctx, k); err != nil {
			return fmt.Errorf("hub: gc: %w", err)
		}
	}
	return nil
}

// flistBlockIDs lists the blocks a stored .fl body references.
func (s *Server) flistBlockIDs(ctx context.Context, hash string) ([][32]byte, error) {
	data, err := s.loadFlist(ctx, hash)
	if err != nil {
		return nil, err
	}
	return s.blocksOf(ctx, data)
}

func (s *Server) isAdmin(k key.Public) bool {
	return slices.Contains(s.cfg.AdminKeys, k)
}

func (s *Server) postGC(w http.ResponseWriter, r *http.Request) error {
	signer, body, err := s.authenticate(r, 4096)
	if err != nil {
		return err
	}
	if !s.isAdmin(signer) {
		return fmt.Errorf("%w: garbage collection is for admin keys (zos hub --admin-keys)", ErrHubForbidden)
	}
	req := GCRequest{}
	if len(body) > 0 {
		if err := json.Unmarshal(body, &req); err != nil {
			return fmt.Errorf("%w: %w", ErrHubBadRequest, err)
		}
	}
	grace := DefaultGCGrace
	if req.Grace != "" {
		if grace, err = time.ParseDuration(req.Grace); err != nil || grace < 0 {
			return fmt.Errorf("%w: grace %q: want a duration such as 30m", ErrHubBadRequest, req.Grace)
		}
	}
	s.log.Info("garbage collection requested", "by", short(hex.EncodeToString(signer[:])), "grace", grace, "dry_run", req.DryRun)
	res, err := s.GC(r.Context(), grace, req.DryRun)
	if errors.Is(err, ErrHubGCUnsupported) {
		return fmt.Errorf("%w: %w", ErrHubBadRequest, err)
	}
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, res)
}

// scan calls fn for every key of the namespace with its value size and
// write time (unix seconds). On zdb both come from SCAN; on redis, which
// keeps neither, they are 0.
func (s *kv) scan(ctx context.Context, fn func(key string, size, ts int64) error) error {
	if !s.zdb {
		var cursor uint64
		for {
			keys, next, err := s.c.Scan(ctx, cursor, "", 1000).Result()
			if err != nil {
				return err
			}
			for _, k := range keys {
				if err := fn(k, 0, 0); err != nil {
					return err
				}
			}
			if cursor = next; cursor == 0 {
				return nil
			}
		}
	}
	args := []any{"SCAN"}
	for {
		reply, err := s.c.Do(ctx, args...).Slice()
		if err != nil {
			if strings.Contains(err.Error(), "No more data") {
				return nil
			}
			return err
		}
		if len(reply) != 2 {
			return fmt.Errorf("zdb SCAN: unexpected reply %v", reply)
		}
		items, _ := reply[1].([]any)
		for _, it := range items {
			f, _ := it.([]any)
			if len(f) != 3 {
				return fmt.Errorf("zdb SCAN: unexpected item %v", it)
			}
			k, _ := f[0].(string)
			size, _ := f[1].(int64)
			ts, _ := f[2].(int64)
			if err := fn(k, size, ts); err != nil {
				return err
			}
		}
		args = []any{"SCAN", reply[0]}
	}
}
