//go:build e2e

package e2e

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zosgrid/zos/internal/zostest"
)

// zdbStart runs `zos zdb` on a free port with its files under dir.
func zdbStart(t *testing.T, dir string, extra ...string) (*service, *redis.Client, string) {
	t.Helper()
	port := freePort(t)
	args := append([]string{"zdb", "--port", strconv.Itoa(port),
		"--data", filepath.Join(dir, "data"), "--index", filepath.Join(dir, "index")}, extra...)
	s := startZos(t, args...)
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	waitTCP(t, s, addr)
	c := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { c.Close() })
	return s, c, addr
}

func zdbDo(t *testing.T, c *redis.Client, args ...any) string {
	t.Helper()
	v, err := c.Do(context.Background(), args...).Result()
	if err == redis.Nil {
		return "nil"
	}
	if err != nil {
		return "ERR " + err.Error()
	}
	return fmt.Sprint(v)
}

func TestZdbServeStopRestartCheck(t *testing.T) {
	dir := t.TempDir()
	s, c, _ := zdbStart(t, dir, "--sync")
	if got := zdbDo(t, c, "SET", "hello", "world"); got != "hello" {
		t.Fatalf("SET replied %q", got)
	}
	zdbDo(t, c, "NSNEW", "other")
	if err := s.stop(t); err != nil {
		t.Fatalf("stop on SIGTERM: %v", err)
	}
	if !strings.Contains(s.logs.String(), "zdb ready") {
		t.Fatalf("no ready line:\n%s", s.logs.String())
	}
	out := mustZos(t, "zdb", "check", "--data", filepath.Join(dir, "data"), "--index", filepath.Join(dir, "index"))
	if !strings.Contains(out, "consistent") {
		t.Fatalf("check: %s", out)
	}
	_, c, _ = zdbStart(t, dir)
	if got := zdbDo(t, c, "GET", "hello"); got != "world" {
		t.Fatalf("after restart GET = %q", got)
	}
	if got := zdbDo(t, c, "NSLIST"); got != "[default other]" {
		t.Fatalf("NSLIST = %s", got)
	}
}

func TestZdbCheckReportsCorruption(t *testing.T) {
	dir := t.TempDir()
	s, c, _ := zdbStart(t, dir)
	zdbDo(t, c, "SET", "k", "some value")
	s.stop(t)
	d0 := filepath.Join(dir, "data", "default", "d0")
	b, err := os.ReadFile(d0)
	if err != nil {
		t.Fatal(err)
	}
	b[len(b)-2] ^= 0xff
	os.WriteFile(d0, b, 0o600)
	out, _, code := zos(t, "zdb", "check", "--data", filepath.Join(dir, "data"), "--index", filepath.Join(dir, "index"))
	if code == 0 || !strings.Contains(out, "CRC32C") {
		t.Fatalf("check of a corrupt value: exit %d\n%s", code, out)
	}
}

func TestZdbCompactAndReplica(t *testing.T) {
	pdir, sdir := t.TempDir(), t.TempDir()
	_, p, paddr := zdbStart(t, pdir, "--datasize", "4096", "--admin", "pw")
	_, s, _ := zdbStart(t, sdir, "--replica-of", paddr, "--replica-auth", "pw")
	ctx := context.Background()
	// A fresh pooled client per call would lose AUTH: use one connection.
	pc := p.Conn()
	defer pc.Close()
	pc.Do(ctx, "AUTH", "pw")
	for i := 0; i < 50; i++ {
		pc.Do(ctx, "SET", fmt.Sprintf("k%d", i), strings.Repeat("x", 200))
	}
	for i := 0; i < 45; i++ {
		pc.Do(ctx, "DEL", fmt.Sprintf("k%d", i))
	}
	out := zdbMustZosEnv(t, []string{"ZDB_ADMIN=pw"}, "zdb", "compact", "--port", strings.Split(paddr, ":")[1])
	if !strings.HasPrefix(out, "OK files=") {
		t.Fatalf("compact: %s", out)
	}
	zostest.WaitFor(t, 20*time.Second, func() error {
		if n := zdbDo(t, s, "DBSIZE"); n != "5" || zdbDo(t, s, "GET", "k49") != strings.Repeat("x", 200) {
			return fmt.Errorf("replica not converged: dbsize %s", n)
		}
		return nil
	})
	if got := zdbDo(t, s, "SET", "x", "y"); !strings.Contains(got, "read-only") {
		t.Fatalf("write to replica: %s", got)
	}
	if info := zdbDo(t, s, "INFO"); !strings.Contains(info, "role: replica") {
		t.Fatalf("replica INFO: %s", info)
	}
}

// zdbMustZosEnv is mustZos with extra environment variables.
func zdbMustZosEnv(t *testing.T, env []string, args ...string) string {
	t.Helper()
	for _, kv := range env {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	return mustZos(t, args...)
}

// TestZdbKillKeepsAcknowledgedWrites kills a --sync server with SIGKILL
// while clients write, restarts it, and reads back every acknowledged write.
func TestZdbKillKeepsAcknowledgedWrites(t *testing.T) {
	dir := t.TempDir()
	acked := map[string]string{}
	var mu sync.Mutex
	for round := 0; round < 3; round++ {
		s, c, _ := zdbStart(t, dir, "--sync", "--datasize", "65536")
		for k, v := range acked {
			if got := zdbDo(t, c, "GET", k); got != v {
				t.Fatalf("round %d: acknowledged %s = %q, read %q", round, k, v, got)
			}
		}
		var wg sync.WaitGroup
		stop := make(chan struct{})
		for w := 0; w < 4; w++ {
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := 0; ; i++ {
					select {
					case <-stop:
						return
					default:
					}
					k := fmt.Sprintf("r%d-w%d-%d", round, w, i)
					v := strings.Repeat(k, 1+i%40)
					if err := c.Do(context.Background(), "SET", k, v).Err(); err != nil {
						return // the server died mid-request: not acknowledged
					}
					mu.Lock()
					acked[k] = v
					mu.Unlock()
				}
			}()
		}
		zostest.WaitFor(t, 30*time.Second, func() error {
			mu.Lock()
			defer mu.Unlock()
			if len(acked) < (round+1)*200 {
				return fmt.Errorf("%d writes acknowledged", len(acked))
			}
			return nil
		})
		s.cmd.Process.Kill()
		close(stop)
		wg.Wait()
		<-s.done
		s.done <- nil
	}
	s, c, _ := zdbStart(t, dir)
	for k, v := range acked {
		if got := zdbDo(t, c, "GET", k); got != v {
			t.Fatalf("acknowledged %s = %q, read %q", k, v, got)
		}
	}
	if !strings.Contains(s.logs.String(), "zdb ready") {
		t.Fatal("no ready line")
	}
	s.stop(t)
	mustZos(t, "zdb", "check", "--data", filepath.Join(dir, "data"), "--index", filepath.Join(dir, "index"))
}
