package store

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync/atomic"
	"time"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/hub/hubapi"
	"github.com/zosgrid/zos/key"
)

// Hub reads and writes blocks through a hub's block API
// (/api/v1/block...), signing writes with an ed25519 key. Reads are public;
// a Hub without a key is read-only. Missing answers, for a batch, which ids
// the hub lacks, so a pack uploads only those.
type Hub struct {
	base   string
	key    key.Private
	c      *http.Client
	now    func() time.Time
	closed atomic.Bool
}

// NewHub returns a store for the hub at base ("http://host:port"). A zero
// key makes it read-only; a nil client uses http.DefaultClient.
func NewHub(base string, k key.Private, c *http.Client) *Hub {
	if c == nil {
		c = http.DefaultClient
	}
	return &Hub{base: strings.TrimRight(base, "/"), key: k, c: c, now: time.Now}
}

// ParseHubURL splits "hub+http(s)://host[:port][/prefix][?key=KEYFILE]" into
// the hub's base URL and the key file (empty for read-only).
func ParseHubURL(raw string) (base, keyFile string, err error) {
	rest, ok := strings.CutPrefix(raw, "hub+")
	if !ok {
		return "", "", fmt.Errorf("%w: %q: want hub+http(s)://host[:port]?key=FILE", ErrBadURL, redactURL(raw))
	}
	u, err := url.Parse(rest)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		return "", "", fmt.Errorf("%w: %q: want hub+http(s)://host[:port]?key=FILE", ErrBadURL, redactURL(raw))
	}
	keyFile = u.Query().Get("key")
	u.RawQuery, u.Fragment = "", ""
	return strings.TrimRight(u.String(), "/"), keyFile, nil
}

// ReadURL is the http store URL that serves this hub's blocks to mounts:
// save it in flists as their route.
func (h *Hub) ReadURL() string { return h.base + hubapi.StorePath }

func (h *Hub) do(ctx context.Context, method, path string, body []byte, sign bool) (*http.Response, error) {
	req, err := http.NewRequestWithContext(ctx, method, h.base+path, bytes.NewReader(body))
	if err != nil {
		return nil, fmt.Errorf("store: hub: %w", err)
	}
	if sign {
		if h.key.IsZero() {
			return nil, fmt.Errorf("%w: hub store has no key (add ?key=FILE to the URL)", ErrReadOnly)
		}
		if err := hubapi.SignRequest(req, body, h.key, h.now()); err != nil {
			return nil, err
		}
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return nil, fmt.Errorf("store: hub: %w", err)
	}
	return resp, nil
}

// hubError turns a non-success answer into an error with the hub's message.
func hubError(resp *http.Response) error {
	b, _ := io.ReadAll(io.LimitReader(resp.Body, 4096))
	var e struct {
		Error string `json:"error"`
	}
	if json.Unmarshal(b, &e) == nil && e.Error != "" {
		return fmt.Errorf("store: hub %s %s: %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status, e.Error)
	}
	return fmt.Errorf("store: hub %s %s: %s", resp.Request.Method, resp.Request.URL.Path, resp.Status)
}

// Get implements Store.
func (h *Hub) Get(ctx context.Context, id flist.ID) ([]byte, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	resp, err := h.do(ctx, http.MethodGet, hubapi.BlockPath(id.String()), nil, false)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
	case http.StatusNotFound:
		return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
	default:
		return nil, hubError(resp)
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBlock+1))
	if err != nil {
		return nil, fmt.Errorf("store: hub read: %w", err)
	}
	if len(b) > maxBlock {
		return nil, fmt.Errorf("store: hub: block %s larger than %d bytes", id, maxBlock)
	}
	return checkGet(id, b)
}

// Has implements Store.
func (h *Hub) Has(ctx context.Context, id flist.ID) (bool, error) {
	if h.closed.Load() {
		return false, ErrClosed
	}
	resp, err := h.do(ctx, http.MethodHead, hubapi.BlockPath(id.String()), nil, false)
	if err != nil {
		return false, err
	}
	resp.Body.Close()
	switch resp.StatusCode {
	case http.StatusOK:
		return true, nil
	case http.StatusNotFound:
		return false, nil
	}
	return false, hubError(resp)
}

// Set implements Store: the hub checks the id again and stores the block.
func (h *Hub) Set(ctx context.Context, id flist.ID, data []byte) error {
	if h.closed.Load() {
		return ErrClosed
	}
	if !flist.CheckID(id, data) {
		return errCorrupt(id)
	}
	resp, err := h.do(ctx, http.MethodPost, "/api/v1/block?id="+id.String(), data, true)
	if err != nil {
		return err
	}
	defer resp.Body.Close()
	if resp.StatusCode != http.StatusOK && resp.StatusCode != http.StatusCreated {
		return hubError(resp)
	}
	return nil
}

// Missing returns the ids the hub does not hold, asking in batches.
func (h *Hub) Missing(ctx context.Context, ids []flist.ID) ([]flist.ID, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	var out []flist.ID
	for start := 0; start < len(ids); start += 10000 {
		end := min(start+10000, len(ids))
		req := hubapi.VerifyRequest{IDs: make([]string, 0, end-start)}
		for _, id := range ids[start:end] {
			req.IDs = append(req.IDs, id.String())
		}
		body, _ := json.Marshal(req)
		resp, err := h.do(ctx, http.MethodPost, "/api/v1/block/verify", body, false)
		if err != nil {
			return nil, err
		}
		if resp.StatusCode != http.StatusOK {
			err := hubError(resp)
			resp.Body.Close()
			return nil, err
		}
		var vr hubapi.VerifyResponse
		err = json.NewDecoder(resp.Body).Decode(&vr)
		resp.Body.Close()
		if err != nil {
			return nil, fmt.Errorf("store: hub verify: %w", err)
		}
		for _, s := range vr.Missing {
			id, err := flist.ParseID(s)
			if err != nil {
				return nil, fmt.Errorf("store: hub verify: %w", err)
			}
			out = append(out, id)
		}
	}
	return out, nil
}

// Close implements Store.
func (h *Hub) Close() error {
	h.closed.Store(true)
	return nil
}

// OpenHubURL opens "hub+http(s)://host[:port]?key=KEYFILE" (see ParseHubURL).
func OpenHubURL(raw string, opts Options) (*Hub, error) {
	base, keyFile, err := ParseHubURL(raw)
	if err != nil {
		return nil, err
	}
	var k key.Private
	if keyFile != "" {
		if k, err = key.Load(keyFile); err != nil {
			return nil, fmt.Errorf("store: hub key: %w", err)
		}
	}
	return NewHub(base, k, opts.HTTPClient), nil
}
