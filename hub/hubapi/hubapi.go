package hubapi

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net/http"
	"strconv"
	"time"

	"github.com/zosgrid/zos/key"
)

// Headers of a signed request.
const (
	HeaderKey       = "X-Zos-Key"
	HeaderTime      = "X-Zos-Time"
	HeaderNonce     = "X-Zos-Nonce"
	HeaderSignature = "X-Zos-Signature"
)

const signDomain = "zos-hub-request-v1\n"

// SignedMessage is the byte string a request signature covers.
func SignedMessage(method, pathQuery, ts, nonce string, body []byte) []byte {
	sum := sha256.Sum256(body)
	return fmt.Appendf(nil, "%s%s\n%s\n%s\n%s\n%s", signDomain, method, pathQuery, ts, nonce, hex.EncodeToString(sum[:]))
}

// SignRequest adds the signature headers to req, whose body is body (nil for
// none), with a fresh random nonce and the time now.
func SignRequest(req *http.Request, body []byte, k key.Private, now time.Time) error {
	var n [16]byte
	if _, err := rand.Read(n[:]); err != nil {
		return err
	}
	nonce := hex.EncodeToString(n[:])
	ts := strconv.FormatInt(now.Unix(), 10)
	pub := k.Public()
	sig := k.Sign(SignedMessage(req.Method, req.URL.RequestURI(), ts, nonce, body))
	req.Header.Set(HeaderKey, hex.EncodeToString(pub[:]))
	req.Header.Set(HeaderTime, ts)
	req.Header.Set(HeaderNonce, nonce)
	req.Header.Set(HeaderSignature, hex.EncodeToString(sig))
	return nil
}

// User is how the hub names the owner of key k in paths: its hex public key.
func User(k key.Public) string { return hex.EncodeToString(k[:]) }

// VerifyRequest is the body of POST /api/v1/block/verify.
type VerifyRequest struct {
	IDs []string `json:"ids"`
}

// VerifyResponse lists the ids the hub does not hold.
type VerifyResponse struct {
	Missing []string `json:"missing"`
}

// BlockPath is the API path of a block.
func BlockPath(hexID string) string { return "/api/v1/block/" + hexID }

// StorePath is the path under which the hub serves blocks in the rfs http
// store layout: an http store URL for mounts is the hub's base URL + StorePath.
const StorePath = "/blocks"
