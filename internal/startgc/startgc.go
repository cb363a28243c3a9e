package startgc

import (
	"os"
	"runtime/debug"
	"slices"
	"strings"
)

// Env marks a process started with GOGC=off by Environ.
const Env = "ZOS_START_GOGC_OFF"

// Environ returns env with GOGC=off and the marker added, unless env
// already sets GOGC.
func Environ(env []string) []string {
	if slices.ContainsFunc(env, func(e string) bool { return strings.HasPrefix(e, "GOGC=") }) {
		return env
	}
	return append(slices.Clip(env), "GOGC=off", Env+"=1")
}

// Restore turns the collector back on (GOGC=100) in a process started
// through Environ and unsets GOGC and the marker. Call it first in main.
func Restore() {
	if os.Getenv(Env) == "" {
		return
	}
	os.Unsetenv(Env)
	os.Unsetenv("GOGC")
	debug.SetGCPercent(100)
}
