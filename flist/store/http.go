package store

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync/atomic"

	"github.com/zosgrid/zos/flist"
)

// HTTP reads blocks from a web server (the hub), read-only.
type HTTP struct {
	base   string
	c      *http.Client
	closed atomic.Bool
}

// maxBlock bounds what we read from a server for one block: the largest
// possible encoding of a BlockSize chunk plus slack.
const maxBlock = flist.BlockSize + flist.BlockSize/6 + 1024

// NewHTTP returns a store reading from base (http:// or https://). A nil
// client uses http.DefaultClient.
func NewHTTP(base string, c *http.Client) *HTTP {
	if c == nil {
		c = http.DefaultClient
	}
	return &HTTP{base: strings.TrimRight(base, "/"), c: c}
}

// Get implements Store.
func (h *HTTP) Get(ctx context.Context, id flist.ID) ([]byte, error) {
	if h.closed.Load() {
		return nil, ErrClosed
	}
	hx := id.String()
	for _, u := range []string{h.base + "/" + hx[:2] + "/" + hx, h.base + "/" + hx} {
		b, found, err := h.fetch(ctx, http.MethodGet, u)
		if err != nil {
			return nil, err
		}
		if found {
			return checkGet(id, b)
		}
	}
	return nil, fmt.Errorf("%w: %s", ErrNotFound, id)
}

func (h *HTTP) fetch(ctx context.Context, method, u string) ([]byte, bool, error) {
	req, err := http.NewRequestWithContext(ctx, method, u, nil)
	if err != nil {
		return nil, false, fmt.Errorf("store: http: %w", err)
	}
	resp, err := h.c.Do(req)
	if err != nil {
		return nil, false, fmt.Errorf("store: http: %w", err)
	}
	defer resp.Body.Close()
	switch {
	case resp.StatusCode == http.StatusNotFound:
		return nil, false, nil
	case resp.StatusCode != http.StatusOK:
		return nil, false, fmt.Errorf("store: http %s %s: %s", method, redactURL(u), resp.Status)
	}
	if method == http.MethodHead {
		return nil, true, nil
	}
	b, err := io.ReadAll(io.LimitReader(resp.Body, maxBlock+1))
	if err != nil {
		return nil, false, fmt.Errorf("store: http read: %w", err)
	}
	if len(b) > maxBlock {
		return nil, false, fmt.Errorf("store: http %s: block larger than %d bytes", redactURL(u), maxBlock)
	}
	return b, true, nil
}

// Has implements Store with HEAD requests.
func (h *HTTP) Has(ctx context.Context, id flist.ID) (bool, error) {
	if h.closed.Load() {
		return false, ErrClosed
	}
	hx := id.String()
	for _, u := range []string{h.base + "/" + hx[:2] + "/" + hx, h.base + "/" + hx} {
		_, found, err := h.fetch(ctx, http.MethodHead, u)
		if err != nil || found {
			return found, err
		}
	}
	return false, nil
}

// Set implements Store: always ErrReadOnly.
func (h *HTTP) Set(context.Context, flist.ID, []byte) error {
	if h.closed.Load() {
		return ErrClosed
	}
	return ErrReadOnly
}

// Close implements Store.
func (h *HTTP) Close() error {
	h.closed.Store(true)
	return nil
}
