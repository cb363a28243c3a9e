package network

import (
	"context"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/network/wg"
)

// helperEnv makes the test binary act as the device helper (what
// `zos network device` does), so Exec can be tested without building zos.
const helperEnv = "ZOS_NETWORK_TEST_DEVICE_HELPER"

func TestMain(m *testing.M) {
	if os.Getenv(helperEnv) == "1" {
		fs := flag.NewFlagSet("device", flag.ExitOnError)
		var cfg wg.DeviceConfig
		fs.StringVar(&cfg.TunName, "tun", "", "")
		fs.StringVar(&cfg.TunNS, "tun-ns", "", "")
		fs.StringVar(&cfg.Socket, "socket", "", "")
		fs.Parse(os.Args[1:])
		ctx, stop := context.WithCancel(context.Background())
		defer stop()
		if err := wg.Run(ctx, cfg); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Exit(0)
	}
	os.Exit(m.Run())
}

// procStat returns the process group and session of pid.
func procStat(t *testing.T, pid int) (pgrp, session int) {
	t.Helper()
	st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	// After "pid (comm) ": state, ppid, pgrp, session.
	f := strings.Fields(string(st[strings.LastIndexByte(string(st), ')')+1:]))
	pgrp, _ = strconv.Atoi(f[2])
	session, _ = strconv.Atoi(f[3])
	return pgrp, session
}

// The device helper outlives its caller in a process group of its own, but
// stays in the caller's session: a session of its own would also give it a
// CPU scheduling autogroup of its own, which costs throughput and latency
// on a busy machine (see Exec).
func TestExecHelperSession(t *testing.T) {
	zostest.RequiresNetns(t)
	ns := testNS(t, "zt"+randSuffix(t)+"-exec")
	t.Setenv(helperEnv, "1")
	sock := filepath.Join(t.TempDir(), "dev.sock")
	r := Exec{Path: os.Args[0]}
	ctx := context.Background()
	if err := r.StartDevice(ctx, wg.DeviceConfig{TunName: "wg0", TunNS: ns, Socket: sock}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.StopDevice(ctx, sock) })
	b, err := os.ReadFile(sock + ".pid")
	if err != nil {
		t.Fatal(err)
	}
	pid, err := strconv.Atoi(string(b))
	if err != nil {
		t.Fatal(err)
	}
	pgrp, session := procStat(t, pid)
	_, mySession := procStat(t, os.Getpid())
	if pgrp != pid {
		t.Errorf("helper %d is in process group %d, want its own", pid, pgrp)
	}
	if session != mySession {
		t.Errorf("helper %d is in session %d, want the caller's %d", pid, session, mySession)
	}
	if err := r.StopDevice(ctx, sock); err != nil {
		t.Fatal(err)
	}
	// The helper may still be finishing its exit when StopDevice returns
	// (its command line is gone first); it must be gone or a zombie soon.
	zostest.WaitFor(t, 5*time.Second, func() error {
		st, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(st), ") Z ") {
			return nil
		}
		return fmt.Errorf("helper %d still running after StopDevice: %s", pid, st)
	})
}
