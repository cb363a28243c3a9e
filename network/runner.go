package network

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/zosgrid/zos/network/internal/netnsx"
	"github.com/zosgrid/zos/network/wg"
)

// InProcess runs devices inside this process; for long-running callers
// (the node) and for tests. Close stops them all.
type InProcess struct {
	Logger *slog.Logger

	mu   sync.Mutex
	devs map[string]*wg.Device
}

// StartDevice implements DeviceRunner.
func (r *InProcess) StartDevice(ctx context.Context, cfg wg.DeviceConfig) error {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.devs == nil {
		r.devs = map[string]*wg.Device{}
	}
	if d, ok := r.devs[cfg.Socket]; ok {
		d.Close()
	}
	cfg.Logger = r.Logger
	d, err := wg.Start(cfg)
	if err != nil {
		return err
	}
	r.devs[cfg.Socket] = d
	return nil
}

// StopDevice implements DeviceRunner.
func (r *InProcess) StopDevice(ctx context.Context, socket string) error {
	r.mu.Lock()
	d := r.devs[socket]
	delete(r.devs, socket)
	r.mu.Unlock()
	if d != nil {
		return d.Close()
	}
	return nil
}

// Close stops every device.
func (r *InProcess) Close() error {
	r.mu.Lock()
	devs := r.devs
	r.devs = nil
	r.mu.Unlock()
	for _, d := range devs {
		d.Close()
	}
	return nil
}

// Exec runs each device in a helper process that outlives the caller, so a
// command such as `zos network apply` can exit while the network keeps
// working. The helper is started inside the socket namespace as
// Path Args... --tun T --tun-ns P --socket S; its log goes next to the
// socket, and its pid to socket+".pid".
type Exec struct {
	Path string
	Args []string
}

// StartDevice implements DeviceRunner.
func (r Exec) StartDevice(ctx context.Context, cfg wg.DeviceConfig) error {
	// The helper is forked from a thread inside the socket namespace, so the
	// whole process lives there: wireguard-go may rebind its UDP socket from
	// any goroutine (after a link down/up), and it must land there too.
	args := append(append([]string{}, r.Args...), "--tun", cfg.TunName, "--tun-ns", cfg.TunNS, "--socket", cfg.Socket)
	logf, err := os.OpenFile(cfg.Socket+".log", os.O_CREATE|os.O_WRONLY|os.O_TRUNC, 0o600)
	if err != nil {
		return fmt.Errorf("network: device log: %w", err)
	}
	defer logf.Close()
	cmd := exec.Command(r.Path, args...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group keeps the caller's Ctrl-C and job control away
	// from it, and the helper ignores SIGHUP. It deliberately stays in the
	// caller's session (no setsid), as a daemonised wireguard-go does: with
	// the kernel's session autogroups, a session of its own puts the device
	// in a separate CPU scheduling group from the workloads it serves, and
	// on a busy machine every packet handoff between them then waits for
	// that group to win a CPU. Measured with bench/network on a busy
	// 2-core machine: 0.66-0.95x the standalone wireguard-go throughput
	// with setsid, against 0.93-1.16x without (the bench keeps a setsid
	// row to show it); how much it costs depends on the competing load.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := netnsx.Do(cfg.SocketNS, cmd.Start); err != nil {
		return fmt.Errorf("network: start device helper: %w", err)
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	if err := os.WriteFile(cfg.Socket+".pid", []byte(strconv.Itoa(cmd.Process.Pid)), 0o600); err != nil {
		cmd.Process.Kill()
		return fmt.Errorf("network: device pid: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 15*time.Second)
	defer cancel()
	t := time.NewTicker(10 * time.Millisecond)
	defer t.Stop()
	for {
		if _, err := (wg.Client{Socket: cfg.Socket}).Get(ctx); err == nil {
			return nil
		}
		select {
		case err := <-exited:
			out, _ := os.ReadFile(cfg.Socket + ".log")
			return fmt.Errorf("network: device helper exited (%v): %s", err, bytes.TrimSpace(out))
		case <-ctx.Done():
			cmd.Process.Kill()
			return fmt.Errorf("network: device helper did not answer: %w", ctx.Err())
		case <-t.C:
		}
	}
}

// StopDevice implements DeviceRunner: SIGTERM, then SIGKILL after 10 s.
func (r Exec) StopDevice(ctx context.Context, socket string) error {
	b, err := os.ReadFile(socket + ".pid")
	if errors.Is(err, os.ErrNotExist) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("network: device pid: %w", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil || pid <= 1 {
		return fmt.Errorf("network: device pid file %s is corrupt", socket+".pid")
	}
	alive := func() bool {
		// The pid may have been reused: only a process serving this socket counts.
		cmdline, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
		if err != nil || !bytes.Contains(cmdline, []byte(socket)) {
			return false
		}
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		return err == nil && !bytes.Contains(st, []byte(") Z "))
	}
	if alive() {
		syscall.Kill(pid, syscall.SIGTERM)
		tctx, cancel := context.WithTimeout(ctx, 10*time.Second)
		err := waitGone(tctx, func() bool { return !alive() })
		cancel()
		if err != nil {
			syscall.Kill(pid, syscall.SIGKILL)
			if err := waitGone(ctx, func() bool { return !alive() }); err != nil {
				return fmt.Errorf("network: device %d did not stop: %w", pid, err)
			}
		}
	}
	for _, p := range []string{socket, socket + ".pid", socket + ".log"} {
		if err := removeFile(p); err != nil {
			return err
		}
	}
	return nil
}
