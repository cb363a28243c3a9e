package starttrace

import (
	"encoding/json"
	"fmt"
	"io"
	"os"
	"strconv"
	"sync"

	"golang.org/x/sys/unix"
)

// Env is the variable that turns tracing on.
const Env = "ZOS_TRACE"

// LibcontainerLogLevel is the log level the parent gives libcontainer's init
// when tracing (logrus' number for info, the default level, at which
// libcontainer stays quiet): the init's only channel back is the log pipe,
// whose info lines the parent prints.
const LibcontainerLogLevel = "4"

// enabled is read once, so that a process may drop ZOS_TRACE from the
// environment its children inherit and still trace itself.
var enabled = os.Getenv(Env) != ""

// Enabled reports whether ZOS_TRACE was set when the process started.
func Enabled() bool { return enabled }

// NowMS is CLOCK_MONOTONIC in milliseconds.
func NowMS() float64 {
	var ts unix.Timespec
	if err := unix.ClockGettime(unix.CLOCK_MONOTONIC, &ts); err != nil {
		return 0
	}
	return float64(ts.Sec)*1e3 + float64(ts.Nsec)/1e6
}

// Line formats one mark.
func Line(role, stage string) string {
	return fmt.Sprintf("zos-trace %.3f %s %s", NowMS(), role, stage)
}

// Mark writes a mark to stderr when tracing.
func Mark(role, stage string) {
	if enabled {
		fmt.Fprintln(os.Stderr, Line(role, stage))
	}
}

// MarkLibcontainerInit sends a mark of libcontainer's re-executed init to its
// parent through libcontainer's log pipe, when the parent traces.
func MarkLibcontainerInit(stage string) {
	if os.Getenv("_LIBCONTAINER_LOGLEVEL") != LibcontainerLogLevel {
		return
	}
	fd, err := strconv.Atoi(os.Getenv("_LIBCONTAINER_LOGPIPE"))
	if err != nil {
		return
	}
	b, _ := json.Marshal(map[string]string{"level": "info", "msg": Line("lcinit", stage)})
	// A raw write: the pipe belongs to libcontainer, which opens it later.
	unix.Write(fd, append(b, '\n'))
}

// FirstWrite wraps w so that the first write is marked (the container's
// first output as the CLI sees it).
func FirstWrite(w io.Writer, role string) io.Writer {
	if !enabled {
		return w
	}
	return &firstWrite{w: w, role: role}
}

type firstWrite struct {
	w    io.Writer
	role string
	once sync.Once
}

func (f *firstWrite) Write(p []byte) (int, error) {
	f.once.Do(func() { Mark(f.role, "first output") })
	return f.w.Write(p)
}
