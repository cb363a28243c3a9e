package hub

import (
	"encoding/hex"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"sync"
	"time"

	"github.com/zosgrid/zos/hub/hubapi"
	"github.com/zosgrid/zos/key"
)

// Errors of request authentication.
var (
	ErrHubUnauthenticated = errors.New("hub: request not signed")
	ErrHubBadSignature    = errors.New("hub: bad request signature")
	ErrHubStale           = errors.New("hub: request time outside the allowed window")
	ErrHubReplay          = errors.New("hub: request replayed")
	ErrHubForbidden       = errors.New("hub: key not allowed")
)

// MaxSkew is how far a request's time may be from the hub's clock.
const MaxSkew = 5 * time.Minute

// authenticator checks signed requests and remembers nonces.
type authenticator struct {
	now     func() time.Time
	allowed map[key.Public]bool // nil: any key

	mu     sync.Mutex
	nonces map[string]time.Time // key+nonce -> expiry
	sweep  time.Time
}

func newAuthenticator(now func() time.Time, allowed []key.Public) *authenticator {
	a := &authenticator{now: now, nonces: map[string]time.Time{}}
	if len(allowed) > 0 {
		a.allowed = map[key.Public]bool{}
		for _, k := range allowed {
			a.allowed[k] = true
		}
	}
	return a
}

// verify returns the signer of req (whose body was read into body).
func (a *authenticator) verify(req *http.Request, body []byte) (key.Public, error) {
	var pub key.Public
	kh, ts, nonce, sh := req.Header.Get(hubapi.HeaderKey), req.Header.Get(hubapi.HeaderTime), req.Header.Get(hubapi.HeaderNonce), req.Header.Get(hubapi.HeaderSignature)
	if kh == "" || ts == "" || nonce == "" || sh == "" {
		return pub, ErrHubUnauthenticated
	}
	kb, err := hex.DecodeString(kh)
	if err != nil || len(kb) != len(pub) {
		return pub, fmt.Errorf("%w: bad %s", ErrHubBadSignature, hubapi.HeaderKey)
	}
	copy(pub[:], kb)
	if len(nonce) < 16 || len(nonce) > 64 {
		return pub, fmt.Errorf("%w: nonce must be 16 to 64 characters", ErrHubBadSignature)
	}
	sec, err := strconv.ParseInt(ts, 10, 64)
	if err != nil {
		return pub, fmt.Errorf("%w: bad %s", ErrHubBadSignature, hubapi.HeaderTime)
	}
	sig, err := hex.DecodeString(sh)
	if err != nil || !pub.Verify(hubapi.SignedMessage(req.Method, req.URL.RequestURI(), ts, nonce, body), sig) {
		return pub, ErrHubBadSignature
	}
	now := a.now()
	t := time.Unix(sec, 0)
	if t.Before(now.Add(-MaxSkew)) || t.After(now.Add(MaxSkew)) {
		return pub, ErrHubStale
	}
	if a.allowed != nil && !a.allowed[pub] {
		return pub, ErrHubForbidden
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if now.After(a.sweep) {
		for k, exp := range a.nonces {
			if now.After(exp) {
				delete(a.nonces, k)
			}
		}
		a.sweep = now.Add(MaxSkew)
	}
	id := kh + "/" + nonce
	if exp, seen := a.nonces[id]; seen && !now.After(exp) {
		return pub, ErrHubReplay
	}
	// Remembered until the request's time leaves the window for good.
	a.nonces[id] = t.Add(MaxSkew + time.Second)
	return pub, nil
}
