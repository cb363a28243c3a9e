package supervise

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/net/websocket"

	"github.com/zosgrid/zos/internal/zostest"
)

const testToken = "0123456789abcdef-token"

func TestCorexAPI(t *testing.T) {
	sh := zostest.RequiresBinary(t, "sh")
	if _, err := os.Stat("/dev/ptmx"); err != nil {
		t.Skip("skipped: no /dev/ptmx")
	}
	units := []Unit{{Name: "web", Exec: sh + " -c 'echo web up; exec sleep 60'", Restart: "always"}}
	logs := t.TempDir()
	s, err := New(units, logs, nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() { done <- s.Run(ctx) }()
	defer func() { cancel(); <-done }()
	api, err := NewCorex(s, testToken, []string{sh}, nil)
	if err != nil {
		t.Fatal(err)
	}
	srv := httptest.NewServer(api)
	defer srv.Close()
	do := func(method, path, token string) (int, string) {
		req, _ := http.NewRequest(method, srv.URL+path, nil)
		if token != "" {
			req.Header.Set("Authorization", "Bearer "+token)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		b, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, string(b)
	}
	for _, tok := range []string{"", "wrong-token-wrong-token"} {
		if code, _ := do("GET", "/services", tok); code != http.StatusUnauthorized {
			t.Errorf("token %q: status %d, want 401", tok, code)
		}
	}
	zostest.WaitFor(t, 10*time.Second, func() error {
		_, body := do("GET", "/services", testToken)
		var st []ServiceStatus
		if err := json.Unmarshal([]byte(body), &st); err != nil || len(st) != 1 || st[0].State != StateRunning {
			return fmt.Errorf("services %s %v", body, err)
		}
		return nil
	})
	// wait for its first output before stopping it (else the stop may
	// come before the shell ran echo)
	zostest.WaitFor(t, 10*time.Second, func() error {
		if code, body := do("GET", "/services/web/logs", testToken); code != 200 || !strings.Contains(body, "web up") {
			return fmt.Errorf("logs %d %q", code, body)
		}
		return nil
	})
	if code, _ := do("POST", "/services/web/stop", testToken); code != http.StatusNoContent {
		t.Errorf("stop: %d", code)
	}
	zostest.WaitFor(t, 20*time.Second, func() error {
		if st := state(s, "web"); st.State != StateStopped {
			return fmt.Errorf("web is %s", st.State)
		}
		return nil
	})
	if code, _ := do("POST", "/services/web/start", testToken); code != http.StatusNoContent {
		t.Errorf("start: %d", code)
	}
	if code, _ := do("POST", "/services/nope/start", testToken); code != http.StatusNotFound {
		t.Errorf("unknown service: %d", code)
	}
	// the restarted service's output is appended to the same log
	zostest.WaitFor(t, 10*time.Second, func() error {
		if code, body := do("GET", "/services/web/logs", testToken); code != 200 || strings.Count(body, "web up") != 2 {
			return fmt.Errorf("logs %d %q", code, body)
		}
		return nil
	})
	if _, err := os.Stat(filepath.Join(logs, "web.log")); err != nil {
		t.Error(err)
	}

	// terminal: a shell on a pty over a websocket
	cfg, _ := websocket.NewConfig(strings.Replace(srv.URL, "http", "ws", 1)+"/terminal", srv.URL)
	cfg.Header.Set("Authorization", "Bearer "+testToken)
	ws, err := websocket.DialConfig(cfg)
	if err != nil {
		t.Fatal(err)
	}
	defer ws.Close()
	ws.PayloadType = websocket.BinaryFrame
	if _, err := ws.Write([]byte("echo $((6*7))\nexit\n")); err != nil {
		t.Fatal(err)
	}
	ws.SetReadDeadline(time.Now().Add(10 * time.Second))
	var got strings.Builder
	buf := make([]byte, 1024)
	for !strings.Contains(got.String(), "42") {
		n, err := ws.Read(buf)
		got.Write(buf[:n])
		if err != nil {
			t.Fatalf("terminal output %q: %v", got.String(), err)
		}
	}
	// an unauthenticated terminal is refused
	cfg2, _ := websocket.NewConfig(strings.Replace(srv.URL, "http", "ws", 1)+"/terminal", srv.URL)
	if _, err := websocket.DialConfig(cfg2); err == nil {
		t.Error("terminal without token accepted")
	}
}
