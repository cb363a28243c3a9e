package hub

import (
	"bufio"
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/crypto/blake2b"

	"github.com/zosgrid/zos/hub/hubapi"
	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/key"
)

// startRedis runs a real redis-server on a free loopback port for the test.
func startRedis(t testing.TB) string {
	t.Helper()
	bin := zostest.RequiresBinary(t, "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no",
		"--dir", t.TempDir(), "--databases", "4")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	zostest.WaitFor(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			return err
		}
		c.Close()
		return nil
	})
	return addr
}

// listFile is the block lister these unit tests use in place of the .fl
// reader (which flist tests itself): a file of hex ids, one a line. The hub
// logic under test is the same: ids in, missing ones refused.
func listFile(_ context.Context, file string) ([][32]byte, error) {
	f, err := os.Open(file)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	var ids [][32]byte
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		id, err := parseID(sc.Text())
		if err != nil {
			return nil, err
		}
		ids = append(ids, id)
	}
	return ids, sc.Err()
}

type testHub struct {
	t     *testing.T
	srv   *Server
	http  *httptest.Server
	clock *zostest.Clock
	key   key.Private
}

func newTestHub(t *testing.T, mod func(*Config)) *testHub {
	t.Helper()
	addr := startRedis(t)
	zostest.CheckLeaks(t)
	clock := zostest.NewClock(time.Now()) // near real time: some tests use real clients too
	cfg := Config{Blocks: "redis://" + addr + "/1", Meta: "redis://" + addr + "/2", Now: clock.Now,
		ListBlocks: listFile, TempDir: t.TempDir()}
	if mod != nil {
		mod(&cfg)
	}
	s, err := New(context.Background(), cfg)
	if err != nil {
		t.Fatal(err)
	}
	return serveTestHub(t, s, clock)
}

// serveTestHub serves s on a loopback test server until the test ends.
func serveTestHub(t *testing.T, s *Server, clock *zostest.Clock) *testHub {
	t.Helper()
	hs := httptest.NewServer(s.Handler())
	t.Cleanup(func() {
		hs.Close()
		s.Close()
		http.DefaultClient.CloseIdleConnections()
	})
	k, _ := key.New()
	return &testHub{t: t, srv: s, http: hs, clock: clock, key: k}
}

func readFile(t *testing.T, p string) []byte {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	return b
}

func (h *testHub) user() string {
	p := h.key.Public()
	return hex.EncodeToString(p[:])
}

// do sends a request, signed with k unless k is zero, and returns status and body.
func (h *testHub) do(method, path string, body []byte, k key.Private) (int, []byte) {
	h.t.Helper()
	req, err := http.NewRequest(method, h.http.URL+path, bytes.NewReader(body))
	if err != nil {
		h.t.Fatal(err)
	}
	if !k.IsZero() {
		if err := hubapi.SignRequest(req, body, k, h.clock.Now()); err != nil {
			h.t.Fatal(err)
		}
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		h.t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, b
}

func (h *testHub) want(code int, method, path string, body []byte, k key.Private) []byte {
	h.t.Helper()
	got, b := h.do(method, path, body, k)
	if got != code {
		h.t.Fatalf("%s %s: status %d, want %d: %s", method, path, got, code, b)
	}
	return b
}

// convert queues the conversion request body and waits until the job is
// done or failed.
func (h *testHub) convert(t *testing.T, body string) JobStatus {
	t.Helper()
	var st JobStatus
	json.Unmarshal(h.want(202, "POST", "/api/v1/convert", []byte(body), h.key), &st)
	zostest.WaitFor(t, 60*time.Second, func() error {
		json.Unmarshal(h.want(200, "GET", "/api/v1/convert/"+st.ID, nil, key.Private{}), &st)
		if st.State == "queued" || st.State == "running" {
			return io.ErrNoProgress
		}
		return nil
	})
	return st
}

func blockID(b []byte) string {
	s := blake2b.Sum256(b)
	return hex.EncodeToString(s[:])
}

func TestBlocks(t *testing.T) {
	h := newTestHub(t, nil)
	var none key.Private
	blk := []byte("an encrypted block, as far as the hub cares")
	id := blockID(blk)

	h.want(401, "POST", "/api/v1/block", blk, none)
	h.want(404, "GET", "/api/v1/block/"+id, nil, none)
	h.want(201, "POST", "/api/v1/block", blk, h.key)
	h.want(200, "POST", "/api/v1/block", blk, h.key) // already there
	h.want(400, "POST", "/api/v1/block?id="+blockID([]byte("other")), blk, h.key)
	h.want(400, "POST", "/api/v1/block", nil, h.key)

	for _, p := range []string{"/api/v1/block/" + id, "/blocks/" + id[:2] + "/" + id, "/blocks/" + id} {
		if got := h.want(200, "GET", p, nil, none); !bytes.Equal(got, blk) {
			t.Errorf("GET %s returned %q", p, got)
		}
	}
	h.want(200, "HEAD", "/api/v1/block/"+id, nil, none)
	h.want(404, "HEAD", "/api/v1/block/"+blockID([]byte("x")), nil, none)
	h.want(404, "GET", "/blocks/ff/"+id, nil, none)
	h.want(400, "GET", "/api/v1/block/nothex", nil, none)

	other := blockID([]byte("never stored"))
	body, _ := json.Marshal(hubapi.VerifyRequest{IDs: []string{id, other}})
	var vr hubapi.VerifyResponse
	json.Unmarshal(h.want(200, "POST", "/api/v1/block/verify", body, none), &vr)
	if len(vr.Missing) != 1 || vr.Missing[0] != other {
		t.Errorf("verify: missing %v, want [%s]", vr.Missing, other)
	}
	h.want(400, "POST", "/api/v1/block/verify", []byte(`{"ids":["zz"]}`), none)

	m := string(h.want(200, "GET", "/metrics", nil, none))
	for _, s := range []string{"zos_hub_blocks_stored_total 1", `zos_hub_requests_total{code="201",route="block_post"} 1`,
		"zos_hub_auth_failures_total 1", fmt.Sprintf("zos_hub_served_bytes_total %d", 3*len(blk))} {
		if !strings.Contains(m, s) {
			t.Errorf("metrics lack %q", s)
		}
	}
}

func TestSignedRequests(t *testing.T) {
	allowed, _ := key.New()
	h := newTestHub(t, func(c *Config) { c.AuthorizedKeys = []key.Public{allowed.Public()} })
	blk := []byte("block")

	// Not in the authorized keys.
	h.want(403, "POST", "/api/v1/block", blk, h.key)

	// Replay: the exact same signed request twice.
	req, _ := http.NewRequest("POST", h.http.URL+"/api/v1/block", nil)
	hubapi.SignRequest(req, blk, allowed, h.clock.Now())
	send := func(body []byte) int {
		r2, _ := http.NewRequest("POST", req.URL.String(), bytes.NewReader(body))
		r2.Header = req.Header.Clone()
		resp, err := http.DefaultClient.Do(r2)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	if c := send([]byte("tampered")); c != 400 {
		t.Errorf("tampered body: %d, want 400", c)
	}
	if c := send(blk); c != 201 {
		t.Errorf("first send: %d, want 201", c)
	}
	if c := send(blk); c != 401 {
		t.Errorf("replay: %d, want 401", c)
	}
	// Stale: signed 10 minutes ago.
	old, _ := http.NewRequest("POST", h.http.URL+"/api/v1/block", bytes.NewReader(blk))
	hubapi.SignRequest(old, blk, allowed, h.clock.Now().Add(-10*time.Minute))
	resp, err := http.DefaultClient.Do(old)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != 401 {
		t.Errorf("stale: %d, want 401", resp.StatusCode)
	}
	// A request for another path cannot be reused either.
	h.want(201, "POST", "/api/v1/block", []byte("another"), allowed)
}

// idList is a stand-in .fl for listFile.
func idList(ids ...string) []byte { return []byte(strings.Join(ids, "\n") + "\n") }

func TestFlists(t *testing.T) {
	h := newTestHub(t, nil)
	var none key.Private
	user := h.user()
	b1, b2 := []byte("block one"), []byte("block two")
	fl := idList(blockID(b1), blockID(b2))
	flHash := blockID(fl)

	// Missing blocks: refused, and nothing of it is visible.
	h.want(201, "POST", "/api/v1/block", b1, h.key)
	got := h.want(409, "PUT", "/api/v1/flists/"+user+"/app-1.fl", fl, h.key)
	var refusal struct {
		Missing []string `json:"missing"`
	}
	json.Unmarshal(got, &refusal)
	if len(refusal.Missing) != 1 || refusal.Missing[0] != blockID(b2) {
		t.Errorf("refusal lists %v, want only block two", refusal.Missing)
	}
	h.want(404, "GET", "/api/v1/flist/"+flHash, nil, none)
	h.want(404, "GET", "/api/v1/flists/"+user+"/app-1.fl", nil, none)

	// Not a flist at all.
	h.want(400, "PUT", "/api/v1/flists/"+user+"/bad.fl", []byte("garbage\n"), h.key)
	// Someone else's name space.
	other, _ := key.New()
	h.want(403, "PUT", "/api/v1/flists/"+user+"/app-1.fl", fl, other)
	h.want(400, "PUT", "/api/v1/flists/"+user+"/-bad", fl, h.key)

	h.want(201, "POST", "/api/v1/block", b2, h.key)
	var put PutResult
	json.Unmarshal(h.want(201, "PUT", "/api/v1/flists/"+user+"/app-1.fl", fl, h.key), &put)
	if put.Hash != flHash || put.Size != int64(len(fl)) {
		t.Errorf("upload result %+v", put)
	}
	if got := h.want(200, "GET", "/api/v1/flists/"+user+"/app-1.fl", nil, none); !bytes.Equal(got, fl) {
		t.Errorf("get by name: %q", got)
	}
	if got := h.want(200, "GET", "/api/v1/flist/"+flHash, nil, none); !bytes.Equal(got, fl) {
		t.Errorf("get by hash: %q", got)
	}

	// Tags.
	h.want(200, "PUT", "/api/v1/tags/"+user+"/app:latest", []byte(`{"name":"app-1.fl"}`), h.key)
	if got := h.want(200, "GET", "/api/v1/flists/"+user+"/app:latest", nil, none); !bytes.Equal(got, fl) {
		t.Errorf("get by tag: %q", got)
	}
	h.want(404, "PUT", "/api/v1/tags/"+user+"/x", []byte(`{"name":"nope"}`), h.key)
	h.want(404, "PUT", "/api/v1/tags/"+user+"/x", []byte(`{"hash":"`+blockID([]byte("n"))+`"}`), h.key)
	h.want(200, "PUT", "/api/v1/tags/"+user+"/pinned", []byte(`{"hash":"`+flHash+`"}`), h.key)

	var list ListResponse
	json.Unmarshal(h.want(200, "GET", "/api/v1/flists/"+user, nil, none), &list)
	if len(list.Flists) != 1 || list.Flists[0].Name != "app-1.fl" || list.Tags["app:latest"] != flHash || list.Tags["pinned"] != flHash {
		t.Errorf("list %+v", list)
	}
	h.want(400, "GET", "/api/v1/flists/nobody", nil, none)

	// Delete: only the owner; the tag keeps pointing at the content.
	h.want(403, "DELETE", "/api/v1/flists/"+user+"/app-1.fl", nil, other)
	h.want(204, "DELETE", "/api/v1/flists/"+user+"/app-1.fl", nil, h.key)
	h.want(404, "GET", "/api/v1/flists/"+user+"/app-1.fl", nil, none)
	h.want(200, "GET", "/api/v1/flists/"+user+"/app:latest", nil, none)
	h.want(204, "DELETE", "/api/v1/tags/"+user+"/app:latest", nil, h.key)
	h.want(404, "DELETE", "/api/v1/tags/"+user+"/app:latest", nil, h.key)
}

func TestLargeFlistIsSplit(t *testing.T) {
	h := newTestHub(t, nil)
	blk := []byte("b")
	h.want(201, "POST", "/api/v1/block", blk, h.key)
	line := blockID(blk) + "\n"
	fl := []byte(strings.Repeat(line, 3*flistPart/len(line)))
	h.want(201, "PUT", "/api/v1/flists/"+h.user()+"/big.fl", fl, h.key)
	if got := h.want(200, "GET", "/api/v1/flist/"+blockID(fl), nil, key.Private{}); !bytes.Equal(got, fl) {
		t.Fatalf("big flist came back with %d bytes, want %d", len(got), len(fl))
	}
}

func TestConvertJobs(t *testing.T) {
	release := make(chan struct{})
	var mu sync.Mutex
	running, peak := 0, 0
	blk := []byte("converted block")
	convert := func(ctx context.Context, req ConvertRequest, out string, progress func(ConvertProgress)) error {
		mu.Lock()
		running++
		peak = max(peak, running)
		mu.Unlock()
		defer func() { mu.Lock(); running--; mu.Unlock() }()
		progress(ConvertProgress{Phase: "pull", Done: 1, Total: 2})
		select {
		case <-release:
		case <-ctx.Done():
			return ctx.Err()
		}
		if req.Image == "fail" {
			return fmt.Errorf("no such image")
		}
		ids := []string{blockID(blk)}
		if req.Image == "missing" {
			ids = append(ids, blockID([]byte("never")))
		}
		return os.WriteFile(out, idList(ids...), 0o644)
	}
	h := newTestHub(t, func(c *Config) { c.Convert = convert; c.MaxJobs = 2 })
	h.want(201, "POST", "/api/v1/block", blk, h.key)
	h.want(401, "POST", "/api/v1/convert", []byte(`{"image":"x"}`), key.Private{})
	h.want(400, "POST", "/api/v1/convert", []byte(`{}`), h.key)

	var ids []string
	for _, img := range []string{"localhost:5000/app:1", "fail", "missing", "b"} {
		var st JobStatus
		json.Unmarshal(h.want(202, "POST", "/api/v1/convert", []byte(`{"image":"`+img+`"}`), h.key), &st)
		ids = append(ids, st.ID)
	}
	status := func(id string) JobStatus {
		var st JobStatus
		json.Unmarshal(h.want(200, "GET", "/api/v1/convert/"+id, nil, key.Private{}), &st)
		return st
	}
	zostest.WaitFor(t, 10*time.Second, func() error {
		mu.Lock()
		defer mu.Unlock()
		if running != 2 {
			return fmt.Errorf("%d running", running)
		}
		return nil
	})
	close(release)
	zostest.WaitFor(t, 10*time.Second, func() error {
		for _, id := range ids {
			if st := status(id); st.State != "done" && st.State != "failed" {
				return fmt.Errorf("job %s is %s", id, st.State)
			}
		}
		return nil
	})
	if peak != 2 {
		t.Errorf("peak concurrency %d, want 2", peak)
	}
	if st := status(ids[0]); st.State != "done" || st.Name != "localhost:5000-app:1" || st.Hash == "" || st.Phase != "pull" {
		t.Errorf("job 0: %+v", st)
	} else if got := h.want(200, "GET", "/api/v1/flists/"+h.user()+"/"+st.Name, nil, key.Private{}); len(got) == 0 {
		t.Error("converted flist not listed")
	}
	if st := status(ids[1]); st.State != "failed" || !strings.Contains(st.Error, "no such image") {
		t.Errorf("job 1: %+v", st)
	}
	if st := status(ids[2]); st.State != "failed" || !strings.Contains(st.Error, "does not hold") {
		t.Errorf("job 2: %+v", st)
	}
	h.want(404, "GET", "/api/v1/convert/nope", nil, key.Private{})
	m := string(h.want(200, "GET", "/metrics", nil, key.Private{}))
	if !strings.Contains(m, `zos_hub_conversions_total{result="done"} 2`) || !strings.Contains(m, `zos_hub_conversions_total{result="failed"} 2`) {
		t.Errorf("conversion metrics wrong:\n%s", m)
	}
}

func TestSafeName(t *testing.T) {
	for in, want := range map[string]string{
		"localhost:5000/app:1.2":     "localhost:5000-app:1.2",
		"busybox@sha256:abc":         "busybox-sha256:abc",
		"/abs":                       "_abs",
		"docker.io/library/alpine:3": "docker.io-library-alpine:3",
	} {
		if got := SafeName(in); got != want {
			t.Errorf("SafeName(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestBadBackend(t *testing.T) {
	for _, u := range []string{"http://x", "zdb://127.0.0.1:1/", "redis://127.0.0.1:1/x", "zdb://127.0.0.1:1/ns"} {
		if _, err := New(context.Background(), Config{Blocks: u, Meta: u, ListBlocks: listFile}); err == nil {
			t.Errorf("New with %q succeeded", u)
		}
	}
}
