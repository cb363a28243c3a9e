package hub

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/zosgrid/zos/hub/hubapi"
	"github.com/zosgrid/zos/key"
)

// Errors the handlers map to HTTP statuses (in status, and nowhere else).
var (
	ErrHubNotFound      = errors.New("hub: not found")
	ErrHubBadRequest    = errors.New("hub: bad request")
	ErrHubMissingBlocks = errors.New("hub: flist references blocks the hub does not hold")
	ErrHubTooLarge      = errors.New("hub: body too large")
	ErrHubBusy          = errors.New("hub: too many queued conversions")
)

// Limits.
const (
	MaxBlockSize    = 4 << 20
	DefaultMaxFlist = 256 << 20
	maxVerifyIDs    = 100000
)

// Config configures a hub.
type Config struct {
	// Blocks and Meta are backend URLs (see openKV): zdb://host:port/ns or redis://host:port/db.
	Blocks, Meta string
	// Logger; nil discards.
	Logger *slog.Logger
	// Now is the clock for request signatures; nil means time.Now.
	Now func() time.Time
	// AuthorizedKeys may write; empty means any key (each writes only its own flists).
	AuthorizedKeys []key.Public
	// ListBlocks returns the block ids a .fl file references; nil means
	// FlistBlocks.
	ListBlocks func(ctx context.Context, file string) ([][32]byte, error)
	// EnableConvert turns on POST /api/v1/convert with the built-in
	// conversion (OCIConvert), unless Convert is set.
	EnableConvert bool
	// Convert runs image conversions (tests may set their own).
	Convert ConvertFunc
	// PublicURL is how mounts reach this hub ("http://hub.example:8080"):
	// converted flists get PublicURL/blocks as their store route.
	PublicURL string
	// MaxJobs is how many conversions run at once (default 2); at most
	// 16*MaxJobs wait in the queue.
	MaxJobs int
	// MaxFlistSize bounds an uploaded .fl (default DefaultMaxFlist).
	MaxFlistSize int64
	// TempDir for uploads and conversions; empty means the system's.
	TempDir string
	// CacheBytes bounds the in-memory cache of served blocks (default
	// DefaultCache; negative disables it).
	CacheBytes int64
	// AdminKeys may run garbage collection (POST /api/v1/admin/gc); none
	// means nobody may. With AuthorizedKeys set they may write too.
	AdminKeys []key.Public
}

// DefaultCache is the default size of the hub's block cache.
const DefaultCache = 256 << 20

// Server is a running hub. Create it with New, serve Handler, stop with Close.
type Server struct {
	cfg     Config
	log     *slog.Logger
	blocks  *kv
	meta    *kv
	auth    *authenticator
	metrics *metrics
	jobs    *jobs
	cache   *blockCache
	indexMu sync.Mutex // serialises read-modify-write of user indexes

	// Garbage collection (gc.go): gcRun lets one run at a time; gate makes
	// it wait for uploads under way (they hold it shared); gc is the
	// running collection's state, nil when none runs.
	gcRun  sync.Mutex
	gate   sync.RWMutex
	gc     atomic.Pointer[gcState]
	gcHook func(phase string) // tests: called between the collection's phases
}

// New connects to the backends and returns a hub ready to serve.
func New(ctx context.Context, cfg Config) (*Server, error) {
	if cfg.ListBlocks == nil {
		cfg.ListBlocks = FlistBlocks
	}
	if cfg.Now == nil {
		cfg.Now = time.Now
	}
	if cfg.MaxJobs <= 0 {
		cfg.MaxJobs = 2
	}
	if cfg.CacheBytes == 0 {
		cfg.CacheBytes = DefaultCache
	}
	if cfg.MaxFlistSize <= 0 {
		cfg.MaxFlistSize = DefaultMaxFlist
	}
	log := cfg.Logger
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	log = log.With("component", "hub")
	blocks, err := openKV(ctx, cfg.Blocks)
	if err != nil {
		return nil, err
	}
	meta, err := openKV(ctx, cfg.Meta)
	if err != nil {
		blocks.close()
		return nil, err
	}
	s := &Server{cfg: cfg, log: log, blocks: blocks, meta: meta,
		auth: newAuthenticator(cfg.Now, writers(cfg)), metrics: newMetrics(), cache: newBlockCache(cfg.CacheBytes)}
	if cfg.EnableConvert && cfg.Convert == nil {
		s.cfg.Convert = s.OCIConvert(cfg.PublicURL)
	}
	s.jobs = newJobs(s, cfg.MaxJobs)
	if err := s.jobs.load(ctx); err != nil {
		s.jobs.close()
		blocks.close()
		meta.close()
		return nil, err
	}
	return s, nil
}

// writers are the keys allowed to sign writes: AuthorizedKeys and, when
// that list restricts writers, AdminKeys too.
func writers(cfg Config) []key.Public {
	if len(cfg.AuthorizedKeys) == 0 {
		return nil
	}
	return append(slices.Clip(cfg.AuthorizedKeys), cfg.AdminKeys...)
}

// Close stops running conversions, waits for them and closes the backends.
func (s *Server) Close() error {
	s.jobs.close()
	return errors.Join(s.blocks.close(), s.meta.close())
}

// Handler returns the HTTP API.
func (s *Server) Handler() http.Handler {
	mux := http.NewServeMux()
	h := func(pattern, route string, fn func(w http.ResponseWriter, r *http.Request) error) {
		mux.Handle(pattern, s.metrics.instrument(route, func(w http.ResponseWriter, r *http.Request) {
			if err := fn(w, r); err != nil {
				s.writeError(w, r, err)
			}
		}))
	}
	h("GET /api/v1/block/{id}", "block_get", s.getBlock)
	h("HEAD /api/v1/block/{id}", "block_head", s.getBlock)
	h("POST /api/v1/block", "block_post", s.postBlock)
	h("POST /api/v1/block/verify", "block_verify", s.verifyBlocks)
	h("GET "+hubapi.StorePath+"/{prefix}/{id}", "store_get", s.getBlock)
	h("HEAD "+hubapi.StorePath+"/{prefix}/{id}", "store_head", s.getBlock)
	h("GET "+hubapi.StorePath+"/{id}", "store_get", s.getBlock)
	h("PUT /api/v1/flists/{user}/{name}", "flist_put", s.putFlist)
	h("GET /api/v1/flists/{user}", "flist_list", s.listFlists)
	h("GET /api/v1/flists/{user}/{name}", "flist_get", s.getFlistByName)
	h("DELETE /api/v1/flists/{user}/{name}", "flist_delete", s.deleteFlist)
	h("PUT /api/v1/tags/{user}/{tag}", "tag_put", s.putTag)
	h("DELETE /api/v1/tags/{user}/{tag}", "tag_delete", s.deleteTag)
	h("GET /api/v1/flist/{hash}", "flist_get_hash", s.getFlistByHash)
	h("POST /api/v1/convert", "convert_post", s.postConvert)
	h("GET /api/v1/convert/{id}", "convert_get", s.getConvert)
	h("POST /api/v1/admin/gc", "admin_gc", s.postGC)
	h("GET /healthz", "healthz", func(w http.ResponseWriter, r *http.Request) error {
		if err := s.blocks.c.Ping(r.Context()).Err(); err != nil {
			return err
		}
		_, err := io.WriteString(w, "ok\n")
		return err
	})
	mux.Handle("GET /metrics", s.metrics.handler())
	return mux
}

// status is the one place errors become HTTP statuses.
func status(err error) int {
	switch {
	case errors.Is(err, ErrHubNotFound):
		return http.StatusNotFound
	case errors.Is(err, ErrHubBadRequest), errors.Is(err, ErrHubBadSignature):
		return http.StatusBadRequest
	case errors.Is(err, ErrHubUnauthenticated), errors.Is(err, ErrHubStale), errors.Is(err, ErrHubReplay):
		return http.StatusUnauthorized
	case errors.Is(err, ErrHubForbidden):
		return http.StatusForbidden
	case errors.Is(err, ErrHubMissingBlocks):
		return http.StatusConflict
	case errors.Is(err, ErrHubTooLarge):
		return http.StatusRequestEntityTooLarge
	case errors.Is(err, ErrHubBusy):
		return http.StatusServiceUnavailable
	}
	return http.StatusInternalServerError
}

// missingError carries the ids an upload lacks.
type missingError struct{ ids []string }

func (e *missingError) Error() string {
	return fmt.Sprintf("%v: %d missing", ErrHubMissingBlocks, len(e.ids))
}
func (e *missingError) Unwrap() error { return ErrHubMissingBlocks }

func (s *Server) writeError(w http.ResponseWriter, r *http.Request, err error) {
	code := status(err)
	if code == http.StatusInternalServerError {
		s.log.Error("request failed", "method", r.Method, "path", r.URL.Path, "err", err)
	}
	body := map[string]any{"error": err.Error()}
	var me *missingError
	if errors.As(err, &me) {
		ids := me.ids
		if len(ids) > 1000 {
			ids = ids[:1000]
		}
		body["missing"] = ids
		body["missing_count"] = len(me.ids)
	}
	if r.Method == http.MethodHead {
		w.WriteHeader(code)
		return
	}
	writeJSON(w, code, body)
}

func writeJSON(w http.ResponseWriter, code int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(code)
	return json.NewEncoder(w).Encode(v)
}

// readBody reads at most limit bytes of the request body.
func readBody(r *http.Request, limit int64) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r.Body, limit+1))
	if err != nil {
		return nil, fmt.Errorf("%w: reading body: %w", ErrHubBadRequest, err)
	}
	if int64(len(b)) > limit {
		return nil, fmt.Errorf("%w: more than %d bytes", ErrHubTooLarge, limit)
	}
	return b, nil
}

// authenticate reads the body and checks the request's signature.
func (s *Server) authenticate(r *http.Request, limit int64) (key.Public, []byte, error) {
	body, err := readBody(r, limit)
	if err != nil {
		return key.Public{}, nil, err
	}
	pub, err := s.auth.verify(r, body)
	if err != nil {
		s.metrics.authFailures.Inc()
		return pub, nil, err
	}
	return pub, body, nil
}

// authUser authenticates r (body up to limit bytes) and checks that its
// signer is the user the path names.
func (s *Server) authUser(r *http.Request, limit int64) (user string, body []byte, err error) {
	signer, body, err := s.authenticate(r, limit)
	if err != nil {
		return "", nil, err
	}
	user, err = userOf(r, signer)
	return user, body, err
}

// userOf checks that the path's user is the signer.
func userOf(r *http.Request, signer key.Public) (string, error) {
	u := r.PathValue("user")
	if u != hex.EncodeToString(signer[:]) {
		return "", fmt.Errorf("%w: signed by another key than user %s", ErrHubForbidden, short(u))
	}
	return u, nil
}

func short(s string) string {
	if len(s) > 16 {
		return s[:16] + "…"
	}
	return s
}

func parseID(s string) ([32]byte, error) {
	var id [32]byte
	b, err := hex.DecodeString(s)
	if err != nil || len(b) != 32 {
		return id, fmt.Errorf("%w: %q is not a 64-digit hex id", ErrHubBadRequest, short(s))
	}
	copy(id[:], b)
	return id, nil
}

// --- blocks ---

func blockKey(id [32]byte) string { return string(id[:]) }

// Header values of every block answer, shared (net/http only reads them).
var (
	octetStream = []string{"application/octet-stream"}
	immutable   = []string{"public, max-age=31536000, immutable"}
)

func (s *Server) getBlock(w http.ResponseWriter, r *http.Request) error {
	id, err := parseID(r.PathValue("id"))
	if err != nil {
		return err
	}
	if p := r.PathValue("prefix"); p != "" && !strings.HasPrefix(r.PathValue("id"), p) {
		return fmt.Errorf("%w: prefix %q does not match id", ErrHubNotFound, p)
	}
	b, cached := s.cache.get(id)
	if r.Method == http.MethodHead {
		if cached {
			w.WriteHeader(http.StatusOK)
			return nil
		}
		ok, err := s.blocks.exists(r.Context(), blockKey(id))
		if err != nil {
			return err
		}
		if !ok {
			return ErrHubNotFound
		}
		w.WriteHeader(http.StatusOK)
		return nil
	}
	if !cached {
		var ok bool
		var err error
		b, ok, err = s.blocks.get(r.Context(), blockKey(id))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("%w: block %s", ErrHubNotFound, short(r.PathValue("id")))
		}
		// Cache only good copies; a bad one is served as stored, so the
		// client's check reports the corruption (and a router fails over).
		// Without a cache there is nothing to decide: the client checks
		// every block anyway, and hashing here halved the throughput.
		if s.cache.enabled() {
			if blake2b.Sum256(b) == id {
				s.cache.add(id, b)
			} else {
				s.log.Error("stored block does not match its id", "id", r.PathValue("id"))
			}
		}
	}
	hdr := w.Header()
	hdr["Content-Type"] = octetStream
	hdr["Cache-Control"] = immutable
	hdr["Content-Length"] = []string{strconv.Itoa(len(b))}
	n, _ := w.Write(b)
	s.metrics.bytesServed.Add(float64(n))
	return nil
}

func (s *Server) postBlock(w http.ResponseWriter, r *http.Request) error {
	_, body, err := s.authenticate(r, MaxBlockSize)
	if err != nil {
		return err
	}
	if len(body) == 0 {
		return fmt.Errorf("%w: empty block", ErrHubBadRequest)
	}
	id := blake2b.Sum256(body)
	hexID := hex.EncodeToString(id[:])
	if want := r.URL.Query().Get("id"); want != "" && want != hexID {
		return fmt.Errorf("%w: block hashes to %s, not %s", ErrHubBadRequest, short(hexID), short(want))
	}
	s.keepBlocks(id) // before the check: a running collection must not delete what we found
	ok, err := s.blocks.exists(r.Context(), blockKey(id))
	if err != nil {
		return err
	}
	code := http.StatusOK
	if !ok {
		if err := s.blocks.set(r.Context(), blockKey(id), body); err != nil {
			return err
		}
		s.metrics.blocksStored.Inc()
		s.metrics.bytesStored.Add(float64(len(body)))
		code = http.StatusCreated
	}
	return writeJSON(w, code, map[string]string{"id": hexID})
}

func (s *Server) verifyBlocks(w http.ResponseWriter, r *http.Request) error {
	body, err := readBody(r, 80*maxVerifyIDs)
	if err != nil {
		return err
	}
	var req hubapi.VerifyRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: %w", ErrHubBadRequest, err)
	}
	if len(req.IDs) > maxVerifyIDs {
		return fmt.Errorf("%w: more than %d ids", ErrHubBadRequest, maxVerifyIDs)
	}
	ids := make([][32]byte, len(req.IDs))
	for i, h := range req.IDs {
		if ids[i], err = parseID(h); err != nil {
			return err
		}
	}
	missing, err := s.missing(r.Context(), ids)
	if err != nil {
		return err
	}
	resp := hubapi.VerifyResponse{Missing: []string{}}
	for _, id := range missing {
		resp.Missing = append(resp.Missing, hex.EncodeToString(id[:]))
	}
	return writeJSON(w, http.StatusOK, resp)
}

// missing returns the ids of ids the block store does not hold, in order.
// A running garbage collection keeps the others: the caller relies on them.
func (s *Server) missing(ctx context.Context, ids [][32]byte) ([][32]byte, error) {
	s.keepBlocks(ids...)
	var out [][32]byte
	for start := 0; start < len(ids); start += 1000 {
		end := min(start+1000, len(ids))
		keys := make([]string, 0, end-start)
		for _, id := range ids[start:end] {
			keys = append(keys, blockKey(id))
		}
		have, err := s.blocks.existsMany(ctx, keys)
		if err != nil {
			return nil, err
		}
		for i, ok := range have {
			if !ok {
				out = append(out, ids[start+i])
			}
		}
	}
	return out, nil
}
