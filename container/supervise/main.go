package supervise

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"time"

	"github.com/zosgrid/zos/internal/startgc"
	"github.com/zosgrid/zos/internal/starttrace"
)

// Main is `zos init`: it parses its arguments, optionally installs the
// seccomp filter, then execs, supervises one command or runs services. It
// returns the process exit status.
func Main(ctx context.Context, args []string, stdout, stderr io.Writer) int {
	startgc.Restore()
	fs := flag.NewFlagSet("zos init", flag.ContinueOnError)
	fs.SetOutput(stderr)
	services := fs.String("services", "", "directory of YAML service units")
	logDir := fs.String("log-dir", "/var/log/zos", "where services' log files go")
	seccomp := fs.Bool("seccomp", false, "first install the container seccomp filter (and no_new_privs)")
	execOnly := fs.Bool("exec", false, "replace zos init with the command instead of supervising it")
	corex := fs.String("corex", "", "serve the corex API on this address (needs --services; token in $ZOS_COREX_TOKEN)")
	memfdNoexec := fs.Bool("memfd-noexec", false, "run nothing until the runtime has set vm.memfd_noexec=2 for this pid namespace")
	if err := fs.Parse(args); err != nil {
		return 2
	}
	cmd := fs.Args()
	starttrace.Mark("init", "zos init main")
	os.Unsetenv(starttrace.Env) // the image's programs do not inherit it
	if *seccomp {
		if err := ApplySeccomp(); err != nil {
			fmt.Fprintln(stderr, "zos init:", err)
			return 126
		}
		starttrace.Mark("init", "seccomp loaded")
	}
	if *memfdNoexec {
		if err := waitMemfdNoexec(ctx); err != nil {
			fmt.Fprintln(stderr, "zos init:", err)
			return 126
		}
		starttrace.Mark("init", "vm.memfd_noexec seen")
	}
	if *execOnly {
		err := Exec(cmd)
		fmt.Fprintln(stderr, "zos init:", err)
		return 127
	}
	if *services == "" {
		code, err := RunEntrypoint(ctx, cmd)
		if err != nil {
			fmt.Fprintln(stderr, "zos init:", err)
		}
		return code
	}
	units, err := LoadUnits(*services)
	if err != nil {
		fmt.Fprintln(stderr, "zos init:", err)
		return 2
	}
	s, err := New(units, *logDir, stdout, nil)
	if err != nil {
		fmt.Fprintln(stderr, "zos init:", err)
		return 2
	}
	if *corex != "" {
		token := os.Getenv("ZOS_COREX_TOKEN")
		os.Unsetenv("ZOS_COREX_TOKEN") // services do not inherit it
		api, err := NewCorex(s, token, nil, nil)
		if err != nil {
			fmt.Fprintln(stderr, "zos init:", err)
			return 2
		}
		ln, err := net.Listen("tcp", *corex)
		if err != nil {
			fmt.Fprintln(stderr, "zos init: corex:", err)
			return 2
		}
		srv := &http.Server{Handler: api, ReadHeaderTimeout: 10 * time.Second}
		go srv.Serve(ln)
		defer srv.Close()
	}
	if err := s.Run(ctx); err != nil {
		fmt.Fprintln(stderr, "zos init:", err)
		return 1
	}
	return 0
}

// MemfdNoexecKnob is the sysctl that makes memfds of a pid namespace
// non-executable (2: refuse MFD_EXEC, seal every memfd non-executable).
const MemfdNoexecKnob = "/proc/sys/vm/memfd_noexec"

// waitMemfdNoexec returns once vm.memfd_noexec reads 2 in our pid
// namespace. The runtime sets it from the host while this process starts
// (it cannot be set from inside, and only host root may), so the start
// does not wait for it; nothing of the image runs before it is set.
func waitMemfdNoexec(ctx context.Context) error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		b, err := os.ReadFile(MemfdNoexecKnob)
		if err != nil {
			return fmt.Errorf("read %s: %w", MemfdNoexecKnob, err)
		}
		if len(b) > 0 && b[0] == '2' {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("%s is still %q: refusing to start", MemfdNoexecKnob, b)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(time.Millisecond):
		}
	}
}
