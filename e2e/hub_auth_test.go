//go:build e2e

package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/sha256"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/google/go-containerregistry/pkg/authn"
	v1 "github.com/google/go-containerregistry/pkg/v1"
	"github.com/redis/go-redis/v9"
)

// tokenServer is a registry token server (the "token" auth of distribution):
// it checks a user's basic credentials, grants the requested actions on
// repositories under the user's prefix and signs a JWT (ES256) with a key
// whose self-signed certificate is the registry's rootcertbundle.
type tokenServer struct {
	t                  *testing.T
	user, pass, prefix string
	issuer, service    string
	key                *ecdsa.PrivateKey
	certDER            []byte
	certFile, realm    string

	mu     sync.Mutex
	scopes []string // scopes granted, in order
	denied int      // requests refused for bad credentials
}

func startTokenServer(t *testing.T, user, pass, prefix string) *tokenServer {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "zos test token issuer"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageDigitalSignature | x509.KeyUsageCertSign,
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &k.PublicKey, k)
	if err != nil {
		t.Fatal(err)
	}
	ts := &tokenServer{t: t, user: user, pass: pass, prefix: prefix, issuer: "zos-test-issuer", service: "zos-test-registry",
		key: k, certDER: der, certFile: filepath.Join(t.TempDir(), "token-ca.pem")}
	if err := os.WriteFile(ts.certFile, pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), 0o644); err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: ts, ReadHeaderTimeout: 10 * time.Second}
	go srv.Serve(l)
	t.Cleanup(func() { srv.Close() })
	// A host name, not 127.0.0.1: go-containerregistry refuses a token realm
	// given as a loopback or private IP literal unless it is the registry's
	// own host:port (an SSRF guard), and a token server on its own port is
	// the common set-up this test is about.
	ts.realm = fmt.Sprintf("http://localhost:%d/token", l.Addr().(*net.TCPAddr).Port)
	return ts
}

// ServeHTTP answers GET /token?service=S&scope=repository:NAME:ACTIONS.
func (ts *tokenServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	u, p, ok := r.BasicAuth()
	if !ok || u != ts.user || p != ts.pass {
		ts.mu.Lock()
		ts.denied++
		ts.mu.Unlock()
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusUnauthorized)
		fmt.Fprint(w, `{"errors":[{"code":"UNAUTHORIZED","message":"bad user name or password"}]}`)
		return
	}
	if r.URL.Query().Get("service") != ts.service {
		http.Error(w, "unknown service", http.StatusBadRequest)
		return
	}
	type access struct {
		Type    string   `json:"type"`
		Name    string   `json:"name"`
		Actions []string `json:"actions"`
	}
	var granted []access
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) != 3 || parts[0] != "repository" || !strings.HasPrefix(parts[1], ts.prefix) {
			continue // nothing outside the user's repositories
		}
		granted = append(granted, access{Type: "repository", Name: parts[1], Actions: strings.Split(parts[2], ",")})
		ts.mu.Lock()
		ts.scopes = append(ts.scopes, scope)
		ts.mu.Unlock()
	}
	now := time.Now()
	header := map[string]any{"typ": "JWT", "alg": "ES256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.certDER)}}
	claims := map[string]any{"iss": ts.issuer, "sub": u, "aud": ts.service, "exp": now.Add(5 * time.Minute).Unix(),
		"nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(), "jti": fmt.Sprint(now.UnixNano()), "access": granted}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	rr, ss, err := ecdsa.Sign(rand.Reader, ts.key, sum[:])
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	sig := make([]byte, 64) // JWS ES256: r and s, 32 bytes each
	rr.FillBytes(sig[:32])
	ss.FillBytes(sig[32:])
	token := signing + "." + base64.RawURLEncoding.EncodeToString(sig)
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(map[string]any{"token": token, "expires_in": 300, "issued_at": now.UTC().Format(time.RFC3339)})
}

func (ts *tokenServer) granted(scope string) bool {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	for _, s := range ts.scopes {
		if s == scope {
			return true
		}
	}
	return false
}

func (ts *tokenServer) deniedCount() int {
	ts.mu.Lock()
	defer ts.mu.Unlock()
	return ts.denied
}

// hubTokenRegistry starts docker-registry with token auth delegated to ts.
func hubTokenRegistry(t *testing.T, ts *tokenServer) string {
	t.Helper()
	addr, _ := hubRegistryWithAuth(t, fmt.Sprintf("auth:\n  token:\n    realm: %s\n    service: %s\n    issuer: %s\n    rootcertbundle: %s\n",
		ts.realm, ts.service, ts.issuer, ts.certFile))
	return addr
}

// zosWith runs the binary with extra environment and stdin.
func zosWith(t *testing.T, env []string, stdin string, args ...string) (string, int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, zosBin(t), args...)
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if ee, ok := err.(*exec.ExitError); ok {
		return string(out), ee.ExitCode()
	} else if err != nil {
		t.Fatalf("zos %s: %v", strings.Join(args, " "), err)
	}
	return string(out), 0
}

// hubPrivateImage pushes img as zos/private:1 to a registry
// behind token auth (user zos, password s3cret-pw) and returns the token
// server, the registry's host:port and the image reference.
func hubPrivateImage(t *testing.T, img v1.Image) (ts *tokenServer, reg, ref string) {
	t.Helper()
	ts = startTokenServer(t, "zos", "s3cret-pw", "zos/")
	reg = hubTokenRegistry(t, ts)
	ref = reg + "/zos/private:1"
	hubPush(t, ref, img, &authn.Basic{Username: "zos", Password: "s3cret-pw"})
	return ts, reg, ref
}

// TestHubImportTokenAuth pulls a private image from a registry that uses
// token auth, with credentials from flags, from the environment and from a
// docker config.json, and checks wrong credentials fail cleanly.
func TestHubImportTokenAuth(t *testing.T) {
	img := hubBusyboxImage(t)
	ts, reg, ref := hubPrivateImage(t, img)
	if !ts.granted("repository:zos/private:push,pull") && !ts.granted("repository:zos/private:pull,push") {
		t.Fatalf("the push did not go through the token server: %v", ts.scopes)
	}

	dir := t.TempDir()
	store := "dir://" + filepath.Join(dir, "blocks")
	emptyDocker := t.TempDir() // no config.json: no credentials from this machine's docker login
	noDocker := "DOCKER_CONFIG=" + emptyDocker

	// Wrong and missing credentials: a clear error and no output file.
	bad := filepath.Join(dir, "bad.fl")
	for _, c := range []struct {
		what  string
		env   []string
		stdin string
		args  []string
	}{
		{"no credentials", []string{noDocker}, "", nil},
		{"wrong password", []string{noDocker}, "wrong\n", []string{"--username", "zos", "--password-stdin"}},
		{"wrong user", []string{noDocker, "ZOS_REGISTRY_PASSWORD=s3cret-pw"}, "", []string{"--username", "mallory"}},
	} {
		before := ts.deniedCount()
		args := append([]string{"flist", "import", "--store", store, "-o", bad}, c.args...)
		out, code := zosWith(t, c.env, c.stdin, append(args, ref)...)
		if code == 0 || !strings.Contains(out, "unauthorized: the registry refused the credentials") {
			t.Errorf("%s: exit %d: %s", c.what, code, out)
		}
		if strings.Contains(out, "s3cret-pw") || (c.stdin != "" && strings.Contains(out, strings.TrimSpace(c.stdin))) {
			t.Errorf("%s: the error shows the password: %s", c.what, out)
		}
		if c.what != "no credentials" && ts.deniedCount() == before {
			t.Errorf("%s: the token server was not asked", c.what)
		}
		if _, err := os.Stat(bad); !os.IsNotExist(err) {
			t.Errorf("%s: failed import left %s behind", c.what, bad)
		}
		if left, _ := filepath.Glob(filepath.Join(dir, ".bad.fl.partial-*")); len(left) > 0 {
			t.Errorf("%s: failed import left %v", c.what, left)
		}
	}

	// Flags, the environment, and a docker config.json all work.
	dockerDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("zos:s3cret-pw"))
	if err := os.WriteFile(filepath.Join(dockerDir, "config.json"), []byte(`{"auths":{"`+reg+`":{"auth":"`+auth+`"}}}`), 0o600); err != nil {
		t.Fatal(err)
	}
	for i, c := range []struct {
		what  string
		env   []string
		stdin string
		args  []string
	}{
		{"--password-stdin", []string{noDocker}, "s3cret-pw\n", []string{"--username", "zos", "--password-stdin"}},
		{"ZOS_REGISTRY_PASSWORD", []string{noDocker, "ZOS_REGISTRY_PASSWORD=s3cret-pw"}, "", []string{"--username", "zos"}},
		{"DOCKER_CONFIG", []string{"DOCKER_CONFIG=" + dockerDir}, "", nil},
	} {
		fl := filepath.Join(dir, fmt.Sprintf("ok%d.fl", i))
		args := append([]string{"flist", "import", "--store", store, "-o", fl}, c.args...)
		if out, code := zosWith(t, c.env, c.stdin, append(args, ref)...); code != 0 {
			t.Errorf("%s: exit %d: %s", c.what, code, out)
			continue
		}
		hubCheckConfig(t, fl, img)
		if i == 0 {
			hubCheckTree(t, fl, store)
		}
	}
	if !ts.granted("repository:zos/private:pull") {
		t.Errorf("no pull scope was asked of the token server: %v", ts.scopes)
	}
}

// TestHubConvertTokenAuth has the hub convert a private image behind token
// auth with the user's credentials, and checks that wrong credentials fail
// the job clearly, that the hub does not fall back on its own docker
// credentials, and that the password is in no job record, answer or log.
func TestHubConvertTokenAuth(t *testing.T) {
	img := hubBusyboxImage(t)
	_, reg, ref := hubPrivateImage(t, img)

	// The hub's own docker config could pull the image: it must not be used
	// for a user's request.
	dockerDir := t.TempDir()
	auth := base64.StdEncoding.EncodeToString([]byte("zos:s3cret-pw"))
	os.WriteFile(filepath.Join(dockerDir, "config.json"), []byte(`{"auths":{"`+reg+`":{"auth":"`+auth+`"}}}`), 0o600)
	t.Setenv("DOCKER_CONFIG", dockerDir) // inherited by the hub process

	zdbAddr := hubZdb(t, "hub-blocks", "hub-meta")
	hubAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t))
	hub := startZos(t, "hub", "--listen", hubAddr, "--blocks", "zdb://"+zdbAddr+"/hub-blocks", "--meta", "zdb://"+zdbAddr+"/hub-meta", "--convert")
	waitTCP(t, hub, hubAddr)
	hubURL := "http://" + hubAddr
	dir := t.TempDir()
	keyFile := filepath.Join(dir, "me.key")
	mustZos(t, "key", "new", "-o", keyFile)
	user := hubUser(t, keyFile)
	conv := []string{"hub", "convert", ref, "--hub", hubURL, "--key", keyFile, "--wait"}

	for _, c := range []struct {
		what, stdin string
		args        []string
	}{
		{"no credentials", "", []string{"--name", "none.fl"}},
		{"wrong password", "wrong-pw\n", []string{"--name", "wrong.fl", "--username", "zos", "--password-stdin"}},
	} {
		out, code := zosWith(t, nil, c.stdin, append(conv, c.args...)...)
		if code == 0 || !strings.Contains(out, "unauthorized: the registry refused the credentials") {
			t.Errorf("convert with %s: exit %d: %s", c.what, code, out)
		}
	}
	if out := mustZos(t, "hub", "ls", "--hub", hubURL, "--user", user); strings.TrimSpace(out) != "" {
		t.Errorf("failed conversions are listed: %s", out)
	}

	out, code := zosWith(t, nil, "s3cret-pw\n", append(conv, "--name", "private.fl", "--username", "zos", "--password-stdin")...)
	if code != 0 || !strings.Contains(out, "converted "+ref) {
		t.Fatalf("convert with credentials: exit %d: %s", code, out)
	}
	fl := filepath.Join(dir, "private.fl")
	resp, err := http.Get(hubURL + "/api/v1/flists/" + user + "/private.fl")
	if err != nil {
		t.Fatal(err)
	}
	b, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil || resp.StatusCode != 200 {
		t.Fatalf("get converted flist: %s %v", resp.Status, err)
	}
	os.WriteFile(fl, b, 0o644)
	hubCheckConfig(t, fl, img)
	hubCheckTree(t, fl, hubURL+"/blocks")

	// No secret anywhere the hub keeps or says things: every metadata value
	// (job records included), the job answers and the hub's log.
	for _, secret := range []string{"s3cret-pw", "wrong-pw"} {
		if strings.Contains(hub.logs.String(), secret) {
			t.Errorf("hub log contains the password %q", secret)
		}
	}
	c := redis.NewClient(&redis.Options{Addr: zdbAddr, Protocol: 2, DisableIdentity: true, PoolSize: 1,
		OnConnect: func(ctx context.Context, cn *redis.Conn) error { return cn.Do(ctx, "SELECT", "hub-meta").Err() }})
	defer c.Close()
	ctx := context.Background()
	n := 0
	reply, err := c.Do(ctx, "SCAN").Slice()
	for err == nil {
		for _, it := range reply[1].([]any) {
			k := it.([]any)[0].(string)
			v, _ := c.Do(ctx, "GET", k).Text()
			n++
			if strings.Contains(v, "s3cret-pw") || strings.Contains(v, "wrong-pw") {
				t.Errorf("metadata %q holds a password: %.200s", k, v)
			}
			if strings.HasPrefix(k, "job:") {
				var st struct{ ID string }
				json.Unmarshal([]byte(v), &st)
				resp, err := http.Get(hubURL + "/api/v1/convert/" + st.ID)
				if err != nil {
					t.Fatal(err)
				}
				jb, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if strings.Contains(string(jb), "s3cret-pw") || strings.Contains(string(jb), "wrong-pw") {
					t.Errorf("job answer holds a password: %s", jb)
				}
			}
		}
		reply, err = c.Do(ctx, "SCAN", reply[0]).Slice()
	}
	if err.Error() != "No more data" || n == 0 {
		t.Fatalf("scanning hub metadata: %d keys, %v", n, err)
	}
}
