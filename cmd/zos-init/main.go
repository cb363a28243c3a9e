package main

import (
	"context"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/zosgrid/zos/container/supervise"
	"github.com/zosgrid/zos/internal/starttrace"
)

const usage = `Usage: zos-init init [flags] [-- COMMAND [ARGS...]]

The supervisor a container starts as PID 1, as zos init (see zos init --help).
`

func main() {
	if len(os.Args) < 2 || os.Args[1] != "init" {
		fmt.Fprint(os.Stderr, usage)
		os.Exit(2)
	}
	starttrace.Mark("main", "go main of `zos init` (runtime and package init done)")
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	code := supervise.Main(ctx, os.Args[2:], os.Stdout, os.Stderr)
	stop()
	os.Exit(code)
}
