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
	"github.com/zosgrid/zos/internal/startgc"
	"github.com/zosgrid/zos/internal/startmap"
	"github.com/zosgrid/zos/internal/starttrace"
)

// The main goroutine keeps the main thread: libcontainer runs helper
// goroutines that lock a thread, join a container's mount namespace and
// exit, which kills the thread, except the main thread, which Go parks
// instead, leaving the process's /proc/self view and a container's mounts
// pinned until exit.
func init() { runtime.LockOSThread() }

func main() {
	startgc.Restore() // first: a long-lived zos must collect garbage
	// Re-executed by libcontainer to become a container's first process.
	if container.IsLibcontainerInit() {
		starttrace.MarkLibcontainerInit("go main (runtime and package init done)")
		// startmap's init mapped the heap the package inits used; this
		// process execs, so the heap mapped for its setup is not kept.
		startmap.HeapAgain()
		container.LibcontainerInit() // never returns
	}
	if len(os.Args) > 1 {
		starttrace.Mark("main", "go main of `zos "+os.Args[1]+"` (runtime and package init done)")
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	var err error
	if initArgs, ok := containerInitArgs(os.Args); ok {
		// `zos init` starts every container: skip building the whole
		// command tree (every command's flags) it does not use.
		err = runInit(ctx, initArgs, os.Stdout, os.Stderr)
	} else {
		err = newRootCmd(os.Args[1:]).ExecuteContext(ctx)
	}
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
