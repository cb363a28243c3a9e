package store

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"

	"github.com/zosgrid/zos/flist"
)

// Options tune the stores Open builds.
type Options struct {
	HTTPClient *http.Client // nil: http.DefaultClient
	Logger     *slog.Logger // nil: discard
}

// OpenURL builds one store from its URL.
func OpenURL(raw string, opts Options) (Store, error) {
	switch {
	case strings.HasPrefix(raw, "dir://"):
		return NewDir(strings.TrimPrefix(raw, "dir://"))
	case strings.HasPrefix(raw, "zdb://"):
		cfg, err := ParseZdbURL(raw)
		if err != nil {
			return nil, err
		}
		return NewZdb(cfg), nil
	case strings.HasPrefix(raw, "hub+"): // hub.go
		return OpenHubURL(raw, opts)
	case strings.HasPrefix(raw, "http://"), strings.HasPrefix(raw, "https://"):
		if _, err := url.Parse(raw); err != nil {
			return nil, fmt.Errorf("%w: %v", ErrBadURL, err)
		}
		return NewHTTP(raw, opts.HTTPClient), nil
	}
	return nil, fmt.Errorf("%w: %q: want dir://, zdb://, http:// or https://", ErrBadURL, redactURL(raw))
}

// ParseRoute parses "[xx-yy=]URL" (xx, yy: hex first-byte range, default
// 00-ff).
func ParseRoute(spec string) (flist.Route, error) {
	r := flist.Route{Start: 0, End: 0xff, URL: spec}
	if i := strings.Index(spec, "="); i == 5 && spec[2] == '-' && !strings.Contains(spec[:i], ":") {
		s, err1 := strconv.ParseUint(spec[0:2], 16, 8)
		e, err2 := strconv.ParseUint(spec[3:5], 16, 8)
		if err1 != nil || err2 != nil || s > e {
			return r, fmt.Errorf("%w: bad range %q (want xx-yy in hex, xx <= yy)", ErrBadURL, spec[:i])
		}
		r.Start, r.End, r.URL = uint8(s), uint8(e), spec[i+1:]
	}
	if r.URL == "" {
		return r, fmt.Errorf("%w: empty URL", ErrBadURL)
	}
	return r, nil
}

// Router combines stores by first-byte ranges of block ids.
type Router struct {
	routes []routed
	log    *slog.Logger
	closed atomic.Bool
}

type routed struct {
	flist.Route
	s Store
}

// Open parses route specs ("[xx-yy=]URL") and opens their stores.
func Open(specs []string, opts Options) (*Router, error) {
	var routes []flist.Route
	for _, s := range specs {
		r, err := ParseRoute(s)
		if err != nil {
			return nil, err
		}
		routes = append(routes, r)
	}
	return OpenRoutes(routes, opts)
}

// OpenRoutes opens the stores of routes (for example an flist's route
// table).
func OpenRoutes(routes []flist.Route, opts Options) (*Router, error) {
	if len(routes) == 0 {
		return nil, fmt.Errorf("%w: no store given", ErrBadURL)
	}
	r := NewRouter(opts.Logger)
	for _, rt := range routes {
		s, err := OpenURL(rt.URL, opts)
		if err != nil {
			r.Close()
			return nil, err
		}
		r.Add(rt, s)
	}
	return r, nil
}

// NewRouter returns an empty router; Add stores to it.
func NewRouter(logger *slog.Logger) *Router {
	if logger == nil {
		logger = slog.New(slog.DiscardHandler)
	}
	return &Router{log: logger.With("component", "flist-store")}
}

// Add adds a store for the id range of rt. The router owns s (Close closes it).
func (r *Router) Add(rt flist.Route, s Store) { r.routes = append(r.routes, routed{rt, s}) }

// Routes returns the route table to save in an flist; with strip, URL
// passwords are removed (readers use public access).
func (r *Router) Routes(strip bool) []flist.Route {
	out := make([]flist.Route, 0, len(r.routes))
	for _, rt := range r.routes {
		x := rt.Route
		if strip {
			x.URL = stripPassword(x.URL)
			if ru, ok := rt.s.(interface{ ReadURL() string }); ok {
				x.URL = ru.ReadURL() // a hub store: mounts read its public block URL
			}
		}
		out = append(out, x)
	}
	return out
}

func (r *Router) match(id flist.ID) []Store {
	var out []Store
	for _, rt := range r.routes {
		if id[0] >= rt.Start && id[0] <= rt.End {
			out = append(out, rt.s)
		}
	}
	return out
}

// Get tries each matching store in turn and returns the first good copy.
func (r *Router) Get(ctx context.Context, id flist.ID) ([]byte, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	stores := r.match(id)
	var errs []error
	notFound := 0
	for _, s := range stores {
		b, err := s.Get(ctx, id)
		if err == nil {
			return b, nil
		}
		if ctx.Err() != nil {
			return nil, ctx.Err()
		}
		if errors.Is(err, ErrNotFound) {
			notFound++
		} else {
			r.log.Warn("store read failed, trying next", "block", id.String(), "err", err)
		}
		errs = append(errs, err)
	}
	if notFound == len(stores) {
		return nil, fmt.Errorf("%w: %s (no route or not in any of %d store(s))", ErrNotFound, id, len(stores))
	}
	return nil, errors.Join(errs...)
}

// Has reports whether every writable matching store holds the block (so
// pack re-uploads to a replica that misses it).
func (r *Router) Has(ctx context.Context, id flist.ID) (bool, error) {
	if r.closed.Load() {
		return false, ErrClosed
	}
	stores := r.match(id)
	if len(stores) == 0 {
		return false, nil
	}
	for _, s := range stores {
		ok, err := s.Has(ctx, id)
		if err != nil {
			return false, err
		}
		if !ok {
			return false, nil
		}
	}
	return true, nil
}

// missingFinder is a store that answers for many ids at once (Hub, Zdb).
type missingFinder interface {
	Missing(ctx context.Context, ids []flist.ID) ([]flist.ID, error)
}

// Missing returns the ids that some matching store lacks (as Has would say
// false for them), asking each store once for all its ids when it can
// answer in batches and id by id otherwise. Ids without a route are
// missing.
func (r *Router) Missing(ctx context.Context, ids []flist.ID) ([]flist.ID, error) {
	if r.closed.Load() {
		return nil, ErrClosed
	}
	perStore := make([][]flist.ID, len(r.routes))
	miss := map[flist.ID]bool{}
	for _, id := range ids {
		routed := false
		for i, rt := range r.routes {
			if id[0] >= rt.Start && id[0] <= rt.End {
				perStore[i] = append(perStore[i], id)
				routed = true
			}
		}
		if !routed {
			miss[id] = true
		}
	}
	for i, rt := range r.routes {
		if len(perStore[i]) == 0 {
			continue
		}
		if mf, ok := rt.s.(missingFinder); ok {
			m, err := mf.Missing(ctx, perStore[i])
			if err != nil {
				return nil, err
			}
			for _, id := range m {
				miss[id] = true
			}
			continue
		}
		for _, id := range perStore[i] {
			ok, err := rt.s.Has(ctx, id)
			if err != nil {
				return nil, err
			}
			if !ok {
				miss[id] = true
			}
		}
	}
	out := make([]flist.ID, 0, len(miss))
	for _, id := range ids {
		if miss[id] {
			out = append(out, id)
			delete(miss, id)
		}
	}
	return out, nil
}

// Set writes to every matching writable store (replication).
func (r *Router) Set(ctx context.Context, id flist.ID, data []byte) error {
	if r.closed.Load() {
		return ErrClosed
	}
	stores := r.match(id)
	if len(stores) == 0 {
		return fmt.Errorf("store: no route for block %s", id)
	}
	wrote := 0
	for _, s := range stores {
		err := s.Set(ctx, id, data)
		if errors.Is(err, ErrReadOnly) {
			continue
		}
		if err != nil {
			return err
		}
		wrote++
	}
	if wrote == 0 {
		return ErrReadOnly
	}
	return nil
}

// Close closes every store.
func (r *Router) Close() error {
	if r.closed.Swap(true) {
		return nil
	}
	var errs []error
	for _, rt := range r.routes {
		errs = append(errs, rt.s.Close())
	}
	return errors.Join(errs...)
}

func stripPassword(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.User == nil {
		return raw
	}
	if _, ok := u.User.Password(); !ok {
		return raw
	}
	u.User = url.User(u.User.Username())
	return u.String()
}

// redactURL hides a password for error messages and logs.
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil {
		if i := strings.Index(raw, "@"); i >= 0 {
			return "***" + raw[i:]
		}
		return raw
	}
	return u.Redacted()
}
