//go:build e2e

// Package e2e drives the built zos binary (ZOS_BIN, set by `make e2e`) the way
// a user would. Every test starts its own processes on loopback or inside
// network namespaces it creates, and cleans up after itself.
package e2e

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/freeport"
)

// zosBin returns the binary under test.
func zosBin(t testing.TB) string {
	t.Helper()
	bin := os.Getenv("ZOS_BIN")
	if bin == "" {
		t.Fatal("ZOS_BIN is not set: run the end-to-end tests with `make e2e`")
	}
	abs, err := filepath.Abs(bin)
	if err != nil {
		t.Fatal(err)
	}
	return abs
}

// zos runs the binary to completion and returns stdout, stderr and the exit
// code. It fails the test if the binary could not be started at all.
func zos(t testing.TB, args ...string) (stdout, stderr string, code int) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, zosBin(t), args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	if ee, ok := err.(*exec.ExitError); ok {
		return out.String(), errb.String(), ee.ExitCode()
	}
	if err != nil {
		t.Fatalf("zos %s: %v", strings.Join(args, " "), err)
	}
	return out.String(), errb.String(), 0
}

// mustZos runs the binary and fails the test unless it exits 0.
func mustZos(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, code := zos(t, args...)
	if code != 0 {
		t.Fatalf("zos %s: exit %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), code, out, errOut)
	}
	return out
}

// service is a long-running zos process started by a test.
type service struct {
	cmd  *exec.Cmd
	logs *syncBuffer
	done chan error
}

// startZos starts a long-running zos command; it is stopped with SIGTERM (and
// killed if it does not stop) when the test ends. Its output is printed if
// the test fails.
func startZos(t testing.TB, args ...string) *service {
	t.Helper()
	return startProcess(t, zosBin(t), args...)
}

// startProcess starts bin with args as a service, stopped (and its output
// shown if the test failed) at cleanup.
func startProcess(t testing.TB, bin string, args ...string) *service {
	t.Helper()
	name := filepath.Base(bin) + " " + strings.Join(args, " ")
	cmd := exec.Command(bin, args...)
	logs := &syncBuffer{}
	cmd.Stdout, cmd.Stderr = logs, logs
	if err := cmd.Start(); err != nil {
		t.Fatalf("start %s: %v", name, err)
	}
	s := &service{cmd: cmd, logs: logs, done: make(chan error, 1)}
	go func() { s.done <- cmd.Wait() }()
	t.Cleanup(func() {
		s.stop(t)
		if t.Failed() {
			t.Logf("output of %s:\n%s", name, logs.String())
		}
	})
	return s
}

// stop sends SIGTERM and waits; after 10 s it kills the process.
func (s *service) stop(t testing.TB) error {
	if s.cmd.ProcessState != nil {
		return nil
	}
	s.cmd.Process.Signal(os.Interrupt)
	select {
	case err := <-s.done:
		s.done <- err
		return err
	case <-time.After(10 * time.Second):
		s.cmd.Process.Kill()
		err := <-s.done
		s.done <- err
		return fmt.Errorf("did not stop within 10s of SIGTERM: %w", err)
	}
}

// freePort returns a TCP port on 127.0.0.1 reserved until the test ends: the
// kernel gives it to no other process (no listener on port 0, no outgoing
// connection), while a server the test starts — and restarts — can listen on
// it (see internal/freeport).
func freePort(t testing.TB) int {
	t.Helper()
	r, err := freeport.Reserve("127.0.0.1", 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Release() })
	return r.Port()
}

// waitTCP waits until addr accepts connections or the service exits.
func waitTCP(t testing.TB, s *service, addr string) {
	t.Helper()
	deadline := time.Now().Add(30 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-s.done:
			s.done <- err
			t.Fatalf("service exited before listening on %s: %v", addr, err)
		default:
		}
		c, err := net.DialTimeout("tcp", addr, time.Second)
		if err == nil {
			c.Close()
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("nothing listening on %s after 30s", addr)
}
