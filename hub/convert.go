package hub

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"net/http"
	"os"
	"path/filepath"
	"sync"
	"time"
)

// ConvertRequest is the body of POST /api/v1/convert. Credentials are used
// for the pull only: never stored, logged or returned.
type ConvertRequest struct {
	Image    string `json:"image"`
	Name     string `json:"name,omitempty"` // default: the image reference made safe
	Platform string `json:"platform,omitempty"`
	Username string `json:"username,omitempty"`
	Password string `json:"password,omitempty"`
}

// ConvertProgress is reported by a conversion as it goes.
type ConvertProgress struct {
	Phase       string // "pull", "pack"
	Done, Total int64
}

// ConvertFunc turns req.Image into a .fl file at out, storing its blocks in
// the hub. The hub checks the result like an upload before naming it.
type ConvertFunc func(ctx context.Context, req ConvertRequest, out string, progress func(ConvertProgress)) error

// JobStatus is the state of a conversion job.
type JobStatus struct {
	ID       string     `json:"id"`
	User     string     `json:"user"`
	Image    string     `json:"image"`
	Name     string     `json:"name"`
	State    string     `json:"state"` // queued, running, done, failed
	Phase    string     `json:"phase,omitempty"`
	Done     int64      `json:"done"`
	Total    int64      `json:"total"`
	Error    string     `json:"error,omitempty"`
	Hash     string     `json:"hash,omitempty"`
	Created  time.Time  `json:"created"`
	Finished *time.Time `json:"finished,omitempty"`
}

// jobs runs conversions, at most max at once, and remembers their state.
type jobs struct {
	s      *Server
	sem    chan struct{}
	ctx    context.Context
	cancel context.CancelFunc
	wg     sync.WaitGroup

	mu      sync.Mutex
	all     map[string]*JobStatus
	order   []string // job ids, oldest first (the persisted index)
	pending int
	maxWait int

	// persistMu orders writes of job records: a record is copied and
	// written while it is held, so an older copy never overwrites a newer.
	persistMu sync.Mutex
}

// Job records live in the metadata namespace: "job:<id>" holds a JobStatus
// and jobIndexKey the ids, oldest first, trimmed to maxJobRecords.
const (
	jobIndexKey   = "jobs"
	maxJobRecords = 1000
	// msgInterrupted is the error of a job that was queued or running when
	// the previous hub process stopped without finishing it. Such jobs are
	// not re-queued: registry credentials are never stored.
	msgInterrupted = "interrupted by restart"
)

// load reads the persisted jobs. Jobs that were queued or running when the
// previous hub process stopped are marked failed ("interrupted by
// restart"); finished jobs stay queryable.
func (j *jobs) load(ctx context.Context) error {
	b, ok, err := j.s.meta.get(ctx, jobIndexKey)
	if err != nil {
		return fmt.Errorf("hub: load jobs: %w", err)
	}
	if !ok {
		return nil
	}
	var ids []string
	if err := json.Unmarshal(b, &ids); err != nil {
		return fmt.Errorf("hub: load jobs: bad index: %w", err)
	}
	now := j.s.cfg.Now().UTC()
	var interrupted []string
	for _, id := range ids {
		rec, ok, err := j.s.meta.get(ctx, "job:"+id)
		if err != nil {
			return fmt.Errorf("hub: load job %s: %w", id, err)
		}
		var st JobStatus
		if !ok || json.Unmarshal(rec, &st) != nil || st.ID != id {
			j.s.log.Warn("skipping unreadable job record", "job", id)
			continue
		}
		if st.State != "done" && st.State != "failed" {
			st.State, st.Error, st.Finished = "failed", msgInterrupted, &now
			interrupted = append(interrupted, id)
		}
		j.all[id] = &st
		j.order = append(j.order, id)
	}
	for _, id := range interrupted {
		j.s.log.Warn("conversion interrupted by restart", "job", id)
		j.persist(id, false)
	}
	return nil
}

// persist writes job id's record (and the index when index is set). Errors
// are logged: the job itself goes on.
func (j *jobs) persist(id string, index bool) {
	j.persistMu.Lock()
	defer j.persistMu.Unlock()
	j.mu.Lock()
	st, ok := j.all[id]
	var rec []byte
	if ok {
		rec, _ = json.Marshal(st)
	}
	var idx []byte
	if index {
		idx, _ = json.Marshal(j.order)
	}
	j.mu.Unlock()
	// Not j.ctx: records are written while the hub shuts down too.
	ctx, cancel := context.WithTimeout(context.Background(), 15*time.Second)
	defer cancel()
	if ok {
		if err := j.s.meta.set(ctx, "job:"+id, rec); err != nil {
			j.s.log.Warn("saving job record failed", "job", id, "err", err)
		}
	}
	if index {
		if err := j.s.meta.set(ctx, jobIndexKey, idx); err != nil {
			j.s.log.Warn("saving job index failed", "err", err)
		}
	}
}

func newJobs(s *Server, max int) *jobs {
	ctx, cancel := context.WithCancel(context.Background())
	return &jobs{s: s, sem: make(chan struct{}, max), ctx: ctx, cancel: cancel,
		all: map[string]*JobStatus{}, maxWait: 16 * max}
}

func (j *jobs) close() {
	j.cancel()
	j.wg.Wait()
}

func (j *jobs) get(id string) (JobStatus, bool) {
	j.mu.Lock()
	defer j.mu.Unlock()
	st, ok := j.all[id]
	if !ok {
		return JobStatus{}, false
	}
	return *st, true
}

func (j *jobs) update(id string, fn func(*JobStatus)) {
	j.mu.Lock()
	fn(j.all[id])
	j.mu.Unlock()
}

// submit queues a job for user.
func (j *jobs) submit(user string, req ConvertRequest, convert ConvertFunc) (JobStatus, error) {
	var b [8]byte
	rand.Read(b[:])
	id := hex.EncodeToString(b[:])
	st := &JobStatus{ID: id, User: user, Image: req.Image, Name: req.Name, State: "queued", Created: j.s.cfg.Now().UTC()}
	j.mu.Lock()
	if j.pending >= j.maxWait {
		j.mu.Unlock()
		return JobStatus{}, ErrHubBusy
	}
	j.pending++
	j.all[id] = st
	j.order = append(j.order, id)
	var dropped []string
	for len(j.order) > maxJobRecords {
		// Forget the oldest finished job; keep unfinished ones.
		i := 0
		for i < len(j.order) {
			if o := j.all[j.order[i]]; o.State == "done" || o.State == "failed" {
				break
			}
			i++
		}
		if i == len(j.order) {
			break
		}
		dropped = append(dropped, j.order[i])
		delete(j.all, j.order[i])
		j.order = append(j.order[:i], j.order[i+1:]...)
	}
	out := *st
	j.mu.Unlock()
	j.persist(id, true)
	for _, d := range dropped {
		if err := j.s.meta.del(context.Background(), "job:"+d); err != nil {
			j.s.log.Warn("dropping old job record failed", "job", d, "err", err)
		}
	}
	j.wg.Add(1)
	go j.run(id, user, req, convert)
	return out, nil
}

func (j *jobs) run(id, user string, req ConvertRequest, convert ConvertFunc) {
	defer j.wg.Done()
	err := j.runErr(id, user, req, convert)
	now := j.s.cfg.Now().UTC()
	j.update(id, func(st *JobStatus) {
		st.Finished = &now
		if err != nil {
			st.State, st.Error = "failed", err.Error()
		} else {
			st.State = "done"
		}
	})
	j.persist(id, false)
	if err != nil {
		j.s.metrics.conversions.WithLabelValues("failed").Inc()
		j.s.log.Warn("conversion failed", "job", id, "image", req.Image, "err", err)
		return
	}
	j.s.metrics.conversions.WithLabelValues("done").Inc()
}

func (j *jobs) runErr(id, user string, req ConvertRequest, convert ConvertFunc) error {
	select {
	case j.sem <- struct{}{}:
	case <-j.ctx.Done():
		j.mu.Lock()
		j.pending--
		j.mu.Unlock()
		return fmt.Errorf("hub shutting down: %w", j.ctx.Err())
	}
	defer func() { <-j.sem }()
	j.mu.Lock()
	j.pending--
	j.all[id].State = "running"
	j.mu.Unlock()
	j.persist(id, false)
	dir, err := os.MkdirTemp(j.s.cfg.TempDir, "zos-hub-convert-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	out := filepath.Join(dir, "out.fl")
	err = convert(j.ctx, req, out, func(p ConvertProgress) {
		j.update(id, func(st *JobStatus) { st.Phase, st.Done, st.Total = p.Phase, p.Done, p.Total })
	})
	if err != nil {
		return err
	}
	data, err := os.ReadFile(out)
	if err != nil {
		return err
	}
	e, err := j.s.addFlist(j.ctx, user, req.Name, data)
	if err != nil {
		return err
	}
	j.update(id, func(st *JobStatus) { st.Hash = e.Hash })
	return nil
}

func (s *Server) postConvert(w http.ResponseWriter, r *http.Request) error {
	signer, body, err := s.authenticate(r, 64<<10)
	if err != nil {
		return err
	}
	if s.cfg.Convert == nil {
		return fmt.Errorf("%w: conversions are disabled on this hub", ErrHubNotFound)
	}
	var req ConvertRequest
	if err := json.Unmarshal(body, &req); err != nil {
		return fmt.Errorf("%w: %w", ErrHubBadRequest, err)
	}
	if req.Image == "" {
		return fmt.Errorf("%w: image is required", ErrHubBadRequest)
	}
	if req.Name == "" {
		req.Name = SafeName(req.Image)
	}
	if err := checkName("name", req.Name); err != nil {
		return err
	}
	st, err := s.jobs.submit(hex.EncodeToString(signer[:]), req, s.cfg.Convert)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusAccepted, st)
}

func (s *Server) getConvert(w http.ResponseWriter, r *http.Request) error {
	st, ok := s.jobs.get(r.PathValue("id"))
	if !ok {
		return fmt.Errorf("%w: no job %q", ErrHubNotFound, short(r.PathValue("id")))
	}
	return writeJSON(w, http.StatusOK, st)
}

// SafeName turns an image reference into a flist name: "/" and "@" become "-"
// ("localhost:5000/app:1.2" -> "localhost:5000-app:1.2").
func SafeName(ref string) string {
	b := []byte(ref)
	for i, c := range b {
		switch {
		case c >= 'a' && c <= 'z', c >= 'A' && c <= 'Z', c >= '0' && c <= '9', c == '.', c == '_', c == ':', c == '+', c == '-':
		default:
			b[i] = '-'
		}
	}
	if len(b) > 0 && (b[0] == '.' || b[0] == '-' || b[0] == ':' || b[0] == '+') {
		b[0] = '_'
	}
	if len(b) > 128 {
		b = b[:128]
	}
	return string(b)
}
