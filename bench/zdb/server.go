package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zosgrid/zos/internal/freeport"
)

// kind is one server under test: how to start it in a directory on a port.
type kind struct {
	name string // column title
	bin  string
	args func(dir string, port int) []string
}

// zosKind runs `zos zdb`; extra flags (from -zos-flags) come last.
func zosKind(bin string, extra []string) kind {
	return kind{name: "zos zdb", bin: bin, args: func(dir string, port int) []string {
		return append([]string{"zdb", "--listen", "127.0.0.1", "--port", strconv.Itoa(port),
			"--data", filepath.Join(dir, "data"), "--index", filepath.Join(dir, "index"), "--mode", "user"}, extra...)
	}}
}

func redisKind(bin string) kind {
	return kind{name: "redis AOF", bin: bin, args: func(dir string, port int) []string {
		return []string{"--bind", "127.0.0.1", "--port", strconv.Itoa(port), "--dir", dir,
			"--appendonly", "yes", "--appendfsync", "everysec", "--save", "", "--protected-mode", "no"}
	}}
}

func zeroDBKind(bin string) kind {
	return kind{name: "0-db", bin: bin, args: func(dir string, port int) []string {
		return []string{"--listen", "127.0.0.1", "--port", strconv.Itoa(port),
			"--data", filepath.Join(dir, "data"), "--index", filepath.Join(dir, "index"), "--mode", "user"}
	}}
}

// server is one running server process in its own temporary directory.
type server struct {
	kind kind
	dir  string
	port *freeport.Reservation // held until close, so a restart finds it free
	cmd  *exec.Cmd
	done chan error
	log  *os.File
}

func (s *server) addr() string { return s.port.Addr() }

// startFresh starts k in a new temporary directory under root on a free port
// and waits until it answers PING.
func startFresh(ctx context.Context, root string, k kind) (*server, error) {
	dir, err := os.MkdirTemp(root, strings.ReplaceAll(k.name, " ", "-")+"-")
	if err != nil {
		return nil, err
	}
	port, err := freeport.Reserve("127.0.0.1", 0)
	if err != nil {
		return nil, err
	}
	s := &server{kind: k, dir: dir, port: port}
	if _, err := s.start(ctx); err != nil {
		port.Release()
		return nil, err
	}
	return s, nil
}

// start launches the process (again) and returns the time from exec to the
// first PONG.
func (s *server) start(ctx context.Context) (time.Duration, error) {
	logf, err := os.OpenFile(filepath.Join(s.dir, "server.log"), os.O_CREATE|os.O_WRONLY|os.O_APPEND, 0o644)
	if err != nil {
		return 0, err
	}
	cmd := exec.Command(s.kind.bin, s.kind.args(s.dir, s.port.Port())...)
	cmd.Dir = s.dir
	cmd.Stdout, cmd.Stderr = logf, logf
	// The server must not outlive the benchmark if it is interrupted.
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	began := time.Now()
	if err := cmd.Start(); err != nil {
		logf.Close()
		return 0, fmt.Errorf("start %s: %w", s.kind.name, err)
	}
	s.cmd, s.log, s.done = cmd, logf, make(chan error, 1)
	go func() { s.done <- cmd.Wait() }()
	if err := s.waitPong(ctx, 5*time.Minute); err != nil {
		s.stop()
		return 0, fmt.Errorf("%s: %w (log: %s)", s.kind.name, err, s.tailLog())
	}
	return time.Since(began), nil
}

// waitPong polls PING on a raw connection until +PONG arrives.
func (s *server) waitPong(ctx context.Context, timeout time.Duration) error {
	deadline := time.Now().Add(timeout)
	for {
		select {
		case err := <-s.done:
			s.done <- err
			return fmt.Errorf("exited before answering PING: %v", err)
		case <-ctx.Done():
			return ctx.Err()
		default:
		}
		if ping(s.addr()) == nil {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("no PONG within %v", timeout)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func ping(addr string) error {
	c, err := net.DialTimeout("tcp", addr, time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	c.SetDeadline(time.Now().Add(2 * time.Second))
	if _, err := c.Write([]byte("*1\r\n$4\r\nPING\r\n")); err != nil {
		return err
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return err
	}
	if line != "+PONG\r\n" {
		return fmt.Errorf("PING answered %q", line)
	}
	return nil
}

// stop sends SIGTERM and waits (a big index may take a while to flush);
// after two minutes it kills the process.
func (s *server) stop() error {
	if s.cmd == nil {
		return nil
	}
	defer func() { s.cmd = nil; s.log.Close() }()
	s.cmd.Process.Signal(syscall.SIGTERM)
	select {
	case err := <-s.done:
		var ee *exec.ExitError
		if errors.As(err, &ee) && (ee.Sys().(syscall.WaitStatus).Signaled() || ee.ExitCode() == 128+int(syscall.SIGTERM)) {
			return nil // stopped by our signal (0-db exits with 143 when it handles it)
		}
		return err
	case <-time.After(2 * time.Minute):
		s.cmd.Process.Kill()
		<-s.done
		return fmt.Errorf("%s did not stop within 2m of SIGTERM", s.kind.name)
	}
}

// close stops the server, removes its directory and releases its port.
func (s *server) close() {
	s.stop()
	os.RemoveAll(s.dir)
	s.port.Release()
}

// rss reads VmRSS of the server process from /proc, in bytes.
func (s *server) rss() (int64, error) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if f := strings.Fields(line); len(f) >= 2 && f[0] == "VmRSS:" {
			kb, err := strconv.ParseInt(f[1], 10, 64)
			return kb * 1024, err
		}
	}
	return 0, errors.New("no VmRSS in /proc status")
}

func (s *server) tailLog() string {
	b, _ := os.ReadFile(filepath.Join(s.dir, "server.log"))
	if len(b) > 800 {
		b = b[len(b)-800:]
	}
	return strings.TrimSpace(string(b))
}

func (s *server) client() *redis.Client {
	return redis.NewClient(&redis.Options{
		Addr: s.addr(), Protocol: 2, DisableIdentity: true,
		PoolSize: 8, ReadTimeout: time.Minute, WriteTimeout: time.Minute,
	})
}
