package server

import (
	"flag"
	"fmt"
	"os"
	"os/exec"
	"testing"
)

// eventLoopEnv set makes every test server hand its waiting clients to an
// event loop, however few they are.
const eventLoopEnv = "ZDB_SERVER_TEST_EVENT_LOOP"

// TestMain runs the package's tests twice: as configured (few clients wait
// in their goroutines), then again in a child with every client served by
// the event loop, so that each protocol test covers both ways of serving a
// connection.
func TestMain(m *testing.M) {
	code := m.Run()
	if code != 0 || os.Getenv(eventLoopEnv) != "" || flagSet("test.bench") || flagSet("test.fuzz") {
		os.Exit(code)
	}
	fmt.Printf("zdb/server: the same tests again, every client served by the event loop (%s=1)\n", eventLoopEnv)
	cmd := exec.Command(os.Args[0], os.Args[1:]...)
	cmd.Env = append(os.Environ(), eventLoopEnv+"=1")
	cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		fmt.Fprintln(os.Stderr, "zdb/server: event loop run:", err)
		os.Exit(1)
	}
	os.Exit(0)
}

func flagSet(name string) bool {
	f := flag.Lookup(name)
	return f != nil && f.Value.String() != ""
}
