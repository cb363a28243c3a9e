package hub

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"regexp"
	"slices"
	"sync"
	"time"

	"golang.org/x/crypto/blake2b"
)

const flistPart = 1 << 20

// names and tags: what is safe in a URL path segment and a file name.
// nameRE is compiled on first use: package init runs in every start of the
// zos binary (each container start runs it three times), and the bounded
// repetition makes a large program.
var nameRE = sync.OnceValue(func() *regexp.Regexp { return regexp.MustCompile(`^[A-Za-z0-9_][A-Za-z0-9_.:+-]{0,127}$`) })

// FlistEntry is one uploaded flist of a user.
type FlistEntry struct {
	Name     string    `json:"name"`
	Hash     string    `json:"hash"`
	Size     int64     `json:"size"`
	Uploaded time.Time `json:"uploaded"`
}

// userIndex is what the hub knows about one user's flists.
type userIndex struct {
	Flists map[string]FlistEntry `json:"flists"`
	Tags   map[string]string     `json:"tags"` // tag -> hash
}

// flManifest describes how a .fl body is split in the meta namespace.
type flManifest struct {
	Size  int64 `json:"size"`
	Parts int   `json:"parts"`
}

func checkName(kind, n string) error {
	if !nameRE().MatchString(n) {
		return fmt.Errorf("%w: %s %q: use letters, digits and _.:+- (at most 128)", ErrHubBadRequest, kind, n)
	}
	return nil
}

func checkUser(u string) error {
	if b, err := hex.DecodeString(u); err != nil || len(b) != 32 {
		return fmt.Errorf("%w: user %q is not a 64-digit hex public key", ErrHubBadRequest, short(u))
	}
	return nil
}

func (s *Server) loadIndex(ctx context.Context, user string) (*userIndex, error) {
	b, ok, err := s.meta.get(ctx, "user:"+user)
	if err != nil {
		return nil, err
	}
	idx := &userIndex{Flists: map[string]FlistEntry{}, Tags: map[string]string{}}
	if !ok {
		return idx, nil
	}
	if err := json.Unmarshal(b, idx); err != nil {
		return nil, fmt.Errorf("hub: index of %s: %w", short(user), err)
	}
	if idx.Flists == nil {
		idx.Flists = map[string]FlistEntry{}
	}
	if idx.Tags == nil {
		idx.Tags = map[string]string{}
	}
	return idx, nil
}

func (s *Server) saveIndex(ctx context.Context, user string, idx *userIndex) error {
	b, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	return s.meta.set(ctx, "user:"+user, b)
}

// updateIndex applies edit to user's index and saves it, unless edit fails.
// Index edits are serialised: each is a read, modify, write of one record.
func (s *Server) updateIndex(ctx context.Context, user string, edit func(*userIndex) error) error {
	s.indexMu.Lock()
	defer s.indexMu.Unlock()
	idx, err := s.loadIndex(ctx, user)
	if err != nil {
		return err
	}
	if err := edit(idx); err != nil {
		return err
	}
	return s.saveIndex(ctx, user, idx)
}

// storeFlist writes a .fl body under its hash (parts first, manifest last).
func (s *Server) storeFlist(ctx context.Context, hash string, data []byte) error {
	if ok, err := s.meta.exists(ctx, "fl:"+hash); err != nil || ok {
		return err
	}
	m := flManifest{Size: int64(len(data))}
	for off := 0; off < len(data); off += flistPart {
		end := min(off+flistPart, len(data))
		if err := s.meta.set(ctx, fmt.Sprintf("flp:%s:%d", hash, m.Parts), data[off:end]); err != nil {
			return err
		}
		m.Parts++
	}
	b, _ := json.Marshal(m)
	return s.meta.set(ctx, "fl:"+hash, b)
}

// loadFlist reads a .fl body back and checks it against its hash.
func (s *Server) loadFlist(ctx context.Context, hash string) ([]byte, error) {
	b, ok, err := s.meta.get(ctx, "fl:"+hash)
	if err != nil {
		return nil, err
	}
	if !ok {
		return nil, fmt.Errorf("%w: flist %s", ErrHubNotFound, short(hash))
	}
	var m flManifest
	if err := json.Unmarshal(b, &m); err != nil {
		return nil, fmt.Errorf("hub: manifest of %s: %w", short(hash), err)
	}
	data := make([]byte, 0, m.Size)
	for i := 0; i < m.Parts; i++ {
		p, ok, err := s.meta.get(ctx, fmt.Sprintf("flp:%s:%d", hash, i))
		if err != nil {
			return nil, err
		}
		if !ok {
			return nil, fmt.Errorf("hub: flist %s: part %d missing", short(hash), i)
		}
		data = append(data, p...)
	}
	if sum := blake2b.Sum256(data); hex.EncodeToString(sum[:]) != hash {
		return nil, fmt.Errorf("hub: flist %s: stored content does not match its hash", short(hash))
	}
	return data, nil
}

// blocksOf lists the blocks a .fl body references.
func (s *Server) blocksOf(ctx context.Context, data []byte) ([][32]byte, error) {
	f, err := os.CreateTemp(s.cfg.TempDir, "zos-hub-*.fl")
	if err != nil {
		return nil, err
	}
	defer os.Remove(f.Name())
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, err
	}
	return s.cfg.ListBlocks(ctx, f.Name())
}

// checkBlocks refuses a .fl whose blocks the hub does not all hold.
func (s *Server) checkBlocks(ctx context.Context, data []byte) error {
	ids, err := s.blocksOf(ctx, data)
	if err != nil {
		return fmt.Errorf("%w: not a valid flist: %w", ErrHubBadRequest, err)
	}
	missing, err := s.missing(ctx, ids)
	if err != nil {
		return err
	}
	if len(missing) > 0 {
		me := &missingError{}
		for _, id := range missing {
			me.ids = append(me.ids, hex.EncodeToString(id[:]))
		}
		return me
	}
	return nil
}

// PutResult answers an upload.
type PutResult struct {
	User string `json:"user"`
	FlistEntry
}

func (s *Server) putFlist(w http.ResponseWriter, r *http.Request) error {
	user, body, err := s.authUser(r, s.cfg.MaxFlistSize)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := checkName("name", name); err != nil {
		return err
	}
	e, err := s.addFlist(r.Context(), user, name, body)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusCreated, PutResult{User: user, FlistEntry: e})
}

// addFlist checks, stores and names a .fl body for user.
func (s *Server) addFlist(ctx context.Context, user, name string, data []byte) (FlistEntry, error) {
	// Shared with other uploads; a garbage collection starts only when no
	// upload is between its block check and its index entry.
	s.gate.RLock()
	defer s.gate.RUnlock()
	if err := s.checkBlocks(ctx, data); err != nil {
		return FlistEntry{}, err
	}
	sum := blake2b.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	s.keepFlist(hash)
	if err := s.storeFlist(ctx, hash, data); err != nil {
		return FlistEntry{}, err
	}
	e := FlistEntry{Name: name, Hash: hash, Size: int64(len(data)), Uploaded: s.cfg.Now().UTC().Truncate(time.Second)}
	if err := s.updateIndex(ctx, user, func(idx *userIndex) error {
		idx.Flists[name] = e
		return nil
	}); err != nil {
		return FlistEntry{}, err
	}
	s.metrics.flistsUploaded.Inc()
	s.log.Info("flist stored", "user", short(user), "name", name, "hash", hash, "size", len(data))
	return e, nil
}

// ListResponse is a user's flists and tags.
type ListResponse struct {
	User   string            `json:"user"`
	Flists []FlistEntry      `json:"flists"`
	Tags   map[string]string `json:"tags"`
}

func (s *Server) listFlists(w http.ResponseWriter, r *http.Request) error {
	user := r.PathValue("user")
	if err := checkUser(user); err != nil {
		return err
	}
	idx, err := s.loadIndex(r.Context(), user)
	if err != nil {
		return err
	}
	resp := ListResponse{User: user, Flists: []FlistEntry{}, Tags: idx.Tags}
	for _, e := range idx.Flists {
		resp.Flists = append(resp.Flists, e)
	}
	slices.SortFunc(resp.Flists, func(a, b FlistEntry) int {
		if a.Name < b.Name {
			return -1
		}
		if a.Name > b.Name {
			return 1
		}
		return 0
	})
	return writeJSON(w, http.StatusOK, resp)
}

// resolve finds the hash a name or tag of user points to.
func (s *Server) resolve(ctx context.Context, user, name string) (string, error) {
	if err := checkUser(user); err != nil {
		return "", err
	}
	idx, err := s.loadIndex(ctx, user)
	if err != nil {
		return "", err
	}
	if e, ok := idx.Flists[name]; ok {
		return e.Hash, nil
	}
	if h, ok := idx.Tags[name]; ok {
		return h, nil
	}
	return "", fmt.Errorf("%w: %s has no flist or tag %q", ErrHubNotFound, short(user), name)
}

func (s *Server) serveFlist(w http.ResponseWriter, r *http.Request, hash string) error {
	data, err := s.loadFlist(r.Context(), hash)
	if err != nil {
		return err
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("X-Zos-Flist-Hash", hash)
	w.Header().Set("Content-Length", fmt.Sprint(len(data)))
	n, _ := w.Write(data)
	s.metrics.bytesServed.Add(float64(n))
	return nil
}

func (s *Server) getFlistByName(w http.ResponseWriter, r *http.Request) error {
	hash, err := s.resolve(r.Context(), r.PathValue("user"), r.PathValue("name"))
	if err != nil {
		return err
	}
	return s.serveFlist(w, r, hash)
}

func (s *Server) getFlistByHash(w http.ResponseWriter, r *http.Request) error {
	hash := r.PathValue("hash")
	if _, err := parseID(hash); err != nil {
		return err
	}
	return s.serveFlist(w, r, hash)
}

func (s *Server) deleteFlist(w http.ResponseWriter, r *http.Request) error {
	user, _, err := s.authUser(r, 0)
	if err != nil {
		return err
	}
	name := r.PathValue("name")
	if err := s.updateIndex(r.Context(), user, func(idx *userIndex) error {
		if _, ok := idx.Flists[name]; !ok {
			return fmt.Errorf("%w: no flist %q", ErrHubNotFound, name)
		}
		delete(idx.Flists, name)
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// TagRequest points a tag at a flist by name or by hash.
type TagRequest struct {
	Name string `json:"name,omitempty"`
	Hash string `json:"hash,omitempty"`
}

func (s *Server) putTag(w http.ResponseWriter, r *http.Request) error {
	user, body, err := s.authUser(r, 4096)
	if err != nil {
		return err
	}
	tag := r.PathValue("tag")
	if err := checkName("tag", tag); err != nil {
		return err
	}
	var req TagRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: %w", ErrHubBadRequest, err)
	}
	if req.Hash != "" {
		// A collection may be dropping this body (no name may point to it).
		// Taken before indexMu, in the order addFlist takes them.
		s.gate.RLock()
		defer s.gate.RUnlock()
		if s.gc.Load() != nil {
			return fmt.Errorf("%w: garbage collection running, tag by hash again in a moment", ErrHubBusy)
		}
	}
	hash := req.Hash
	if err := s.updateIndex(r.Context(), user, func(idx *userIndex) error {
		if _, clash := idx.Flists[tag]; clash {
			return fmt.Errorf("%w: %q is already a flist name", ErrHubBadRequest, tag)
		}
		switch {
		case req.Name != "" && req.Hash != "":
			return fmt.Errorf("%w: give a name or a hash, not both", ErrHubBadRequest)
		case req.Name != "":
			e, ok := idx.Flists[req.Name]
			if !ok {
				return fmt.Errorf("%w: no flist %q", ErrHubNotFound, req.Name)
			}
			hash = e.Hash
		case req.Hash != "":
			if _, err := parseID(hash); err != nil {
				return err
			}
			if ok, err := s.meta.exists(r.Context(), "fl:"+hash); err != nil {
				return err
			} else if !ok {
				return fmt.Errorf("%w: flist %s", ErrHubNotFound, short(hash))
			}
		default:
			return fmt.Errorf("%w: give a name or a hash", ErrHubBadRequest)
		}
		idx.Tags[tag] = hash
		return nil
	}); err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, map[string]string{"tag": tag, "hash": hash})
}

func (s *Server) deleteTag(w http.ResponseWriter, r *http.Request) error {
	user, _, err := s.authUser(r, 0)
	if err != nil {
		return err
	}
	tag := r.PathValue("tag")
	if err := s.updateIndex(r.Context(), user, func(idx *userIndex) error {
		if _, ok := idx.Tags[tag]; !ok {
			return fmt.Errorf("%w: no tag %q", ErrHubNotFound, tag)
		}
		delete(idx.Tags, tag)
		return nil
	}); err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}
