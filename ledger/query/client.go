package query

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"time"

	"github.com/zosgrid/zos/key"
	"github.com/zosgrid/zos/ledger"
)

// DefaultAddr is where a validator serves the API unless told otherwise,
// and where clients look for it: loopback.
const DefaultAddr = "127.0.0.1:8850"

// ErrTx is returned by Client.Send when the ledger refused the transaction.
var ErrTx = errors.New("query: transaction failed")

// Client talks to the API.
type Client struct {
	Base string // e.g. http://127.0.0.1:8850
	HTTP *http.Client
}

// NewClient returns a client for base ("host:port" or a URL).
func NewClient(base string) *Client {
	if !strings.Contains(base, "://") {
		base = "http://" + base
	}
	return &Client{Base: strings.TrimRight(base, "/"), HTTP: &http.Client{Timeout: time.Minute}}
}

// Get decodes GET path into out.
func (c *Client) Get(ctx context.Context, path string, out any) error {
	req, err := http.NewRequestWithContext(ctx, http.MethodGet, c.Base+path, nil)
	if err != nil {
		return err
	}
	return c.do(req, out)
}

func (c *Client) do(req *http.Request, out any) error {
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(io.LimitReader(resp.Body, 64<<20))
	if err != nil {
		return fmt.Errorf("query: %w", err)
	}
	if resp.StatusCode != http.StatusOK {
		var e apiError
		if json.Unmarshal(b, &e) == nil && e.Error != "" {
			return fmt.Errorf("query: %s: %s", req.URL.Path, e.Error)
		}
		return fmt.Errorf("query: %s: %s", req.URL.Path, resp.Status)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("query: %s: %w", req.URL.Path, err)
	}
	return nil
}

// sendAttempts bounds how often Send signs a message anew after the ledger
// said its nonce was used.
const sendAttempts = 4

// Send signs msg with k (next nonce from the ledger), submits it and waits
// for its block. A refused transaction returns ErrTx with the ledger's
// reason, and the result. A node a block behind hands out a nonce that
// block used, and another transaction of k may use it first: when the
// ledger answers that the nonce was wrong, Send reads the account again and
// signs with the new nonce, a few times. A wrong nonce has no effect on the
// ledger (not even the fee), so the message never applies twice.
func (c *Client) Send(ctx context.Context, k key.Private, msg ledger.Msg) (SubmitResult, error) {
	var st Status
	if err := c.Get(ctx, "/status", &st); err != nil {
		return SubmitResult{}, err
	}
	badNonce := ledger.Code(ledger.ErrBadNonce)
	for attempt := 1; ; attempt++ {
		var acct AccountView
		if err := c.Get(ctx, "/accounts/"+k.Public().String(), &acct); err != nil {
			return SubmitResult{}, err
		}
		tx, err := ledger.NewTx(st.ChainID, k, acct.Nonce, msg)
		if err != nil {
			return SubmitResult{}, err
		}
		res, err := c.SendRaw(ctx, tx)
		if res.Code != badNonce || attempt == sendAttempts {
			return res, err
		}
	}
}

// SendRaw submits an already signed transaction.
func (c *Client) SendRaw(ctx context.Context, tx []byte) (SubmitResult, error) {
	req, err := http.NewRequestWithContext(ctx, http.MethodPost, c.Base+"/tx", bytes.NewReader(tx))
	if err != nil {
		return SubmitResult{}, err
	}
	req.Header.Set("Content-Type", "application/json")
	var res SubmitResult
	if err := c.do(req, &res); err != nil {
		return SubmitResult{}, err
	}
	if res.Code != 0 {
		return res, fmt.Errorf("%w: code %d: %s", ErrTx, res.Code, res.Log)
	}
	return res, nil
}
