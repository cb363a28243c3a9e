package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"runtime"
	"syscall"

	"github.com/zosgrid/zos/container"
)

// The main goroutine keeps the main thread: libcontainer runs helper
// goroutines that lock a thread, join a container's mount namespace and
// exit, which kills the thread, except the main thread, which Go parks
// instead, leaving the process's /proc/self view and a container's mounts
// pinned until exit.
func init() { runtime.LockOSThread() }

func main() {
	// Re-executed by libcontainer to become a container's first process.
	if container.IsLibcontainerInit() {
		container.LibcontainerInit() // never returns
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	err := newRootCmd().ExecuteContext(ctx)
	stop()
	if err != nil {
		var exit exitError
		if errors.As(err, &exit) {
			os.Exit(exit.code)
		}
		fmt.Fprintln(os.Stderr, "zos:", err)
		os.Exit(1)
	}
}

// exitError lets a command choose the process exit status (for example the
// status of a program it ran) without printing anything more.
type exitError struct{ code int }

func (e exitError) Error() string { return fmt.Sprintf("exit status %d", e.code) }
