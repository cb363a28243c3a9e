package hub

import (
	"bytes"
	"net/http"
	"testing"
	"time"

	"github.com/zosgrid/zos/hub/hubapi"
	"github.com/zosgrid/zos/key"
)

// FuzzVerify feeds arbitrary signature headers and bodies to the
// authenticator: it must never panic, and never accept a request that the
// fuzzer did not sign with a real key.
func FuzzVerify(f *testing.F) {
	now := time.Unix(1700000000, 0)
	k, _ := key.FromSeed(bytes.Repeat([]byte{7}, 32))
	req, _ := http.NewRequest("POST", "http://hub/api/v1/block", nil)
	hubapi.SignRequest(req, []byte("body"), k, now)
	f.Add(req.Header.Get(hubapi.HeaderKey), req.Header.Get(hubapi.HeaderTime), req.Header.Get(hubapi.HeaderNonce), req.Header.Get(hubapi.HeaderSignature), []byte("body"))
	f.Add("zz", "-1", "short", "00", []byte{})
	f.Add(req.Header.Get(hubapi.HeaderKey), "99999999999999999999", req.Header.Get(hubapi.HeaderNonce), req.Header.Get(hubapi.HeaderSignature), []byte("body"))
	f.Fuzz(func(t *testing.T, kh, ts, nonce, sig string, body []byte) {
		a := newAuthenticator(func() time.Time { return now }, nil)
		r, _ := http.NewRequest("POST", "http://hub/api/v1/block", nil)
		r.Header.Set(hubapi.HeaderKey, kh)
		r.Header.Set(hubapi.HeaderTime, ts)
		r.Header.Set(hubapi.HeaderNonce, nonce)
		r.Header.Set(hubapi.HeaderSignature, sig)
		pub, err := a.verify(r, body)
		if err != nil {
			return
		}
		// Only the seed request itself can pass; a replay of it cannot.
		if pub != k.Public() || !bytes.Equal(body, []byte("body")) {
			t.Fatalf("accepted a request not signed by the key: key %x body %q", pub, body)
		}
		if _, err := a.verify(r, body); err == nil {
			t.Fatal("replay accepted")
		}
	})
}
