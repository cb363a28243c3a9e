package supervise

import (
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"unsafe"

	"golang.org/x/net/websocket"
	"golang.org/x/sys/unix"
)

// Corex is the supervisor's HTTP API ("core-x"), served inside the
// container's network namespace. Every request needs the header
// "Authorization: Bearer TOKEN".
//
//	GET  /services                   list services and their states (JSON)
//	POST /services/NAME/start|stop|restart
//	GET  /services/NAME/logs         the service's log file
//	GET  /terminal  (websocket)      a shell on a pseudo-terminal; binary
//	                                 frames are keystrokes and output
type Corex struct {
	sup   *Supervisor
	token []byte
	shell []string
	log   *slog.Logger
}

// NewCorex returns the API handler for sup. token must not be empty; shell
// is the terminal's command (default /bin/sh).
func NewCorex(sup *Supervisor, token string, shell []string, log *slog.Logger) (*Corex, error) {
	if len(token) < 16 {
		return nil, errors.New("supervise: corex token must be at least 16 characters")
	}
	if len(shell) == 0 {
		shell = []string{"/bin/sh"}
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	return &Corex{sup: sup, token: []byte(token), shell: shell, log: log}, nil
}

func (c *Corex) authorized(r *http.Request) bool {
	got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return ok && subtle.ConstantTimeCompare([]byte(got), c.token) == 1
}

// ServeHTTP implements http.Handler.
func (c *Corex) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	if !c.authorized(r) {
		w.Header().Set("WWW-Authenticate", `Bearer realm="corex"`)
		http.Error(w, "unauthorized", http.StatusUnauthorized)
		return
	}
	path := strings.Trim(r.URL.Path, "/")
	parts := strings.Split(path, "/")
	switch {
	case path == "services" && r.Method == http.MethodGet:
		w.Header().Set("Content-Type", "application/json")
		json.NewEncoder(w).Encode(c.sup.Status())
	case len(parts) == 3 && parts[0] == "services" && r.Method == http.MethodPost:
		var err error
		switch parts[2] {
		case "start":
			err = c.sup.Start(parts[1])
		case "stop":
			err = c.sup.Stop(parts[1])
		case "restart":
			err = c.sup.Restart(parts[1])
		default:
			http.Error(w, "unknown action", http.StatusNotFound)
			return
		}
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		w.WriteHeader(http.StatusNoContent)
	case len(parts) == 3 && parts[0] == "services" && parts[2] == "logs" && r.Method == http.MethodGet:
		p, err := c.sup.LogPath(parts[1])
		if err != nil {
			http.Error(w, err.Error(), http.StatusNotFound)
			return
		}
		f, err := os.Open(p)
		if err != nil {
			http.Error(w, "no log yet", http.StatusNotFound)
			return
		}
		defer f.Close()
		w.Header().Set("Content-Type", "text/plain; charset=utf-8")
		io.Copy(w, f)
	case path == "terminal":
		websocket.Server{Handler: c.terminal}.ServeHTTP(w, r)
	default:
		http.Error(w, "not found", http.StatusNotFound)
	}
}

// terminal runs the shell on a new pseudo-terminal and pipes it to ws.
func (c *Corex) terminal(ws *websocket.Conn) {
	defer ws.Close()
	ws.PayloadType = websocket.BinaryFrame
	master, slave, err := openPTY()
	if err != nil {
		fmt.Fprintf(ws, "corex: %v\r\n", err)
		return
	}
	defer master.Close()
	path, err := exec.LookPath(c.shell[0])
	if err != nil {
		slave.Close()
		fmt.Fprintf(ws, "corex: %v\r\n", err)
		return
	}
	c.sup.rp.mu.Lock()
	p, err := os.StartProcess(path, c.shell, &os.ProcAttr{
		Env:   append(os.Environ(), "TERM=xterm"),
		Files: []*os.File{slave, slave, slave},
		Sys:   &syscall.SysProcAttr{Setsid: true, Setctty: true, Ctty: 0},
	})
	if err != nil {
		c.sup.rp.mu.Unlock()
		slave.Close()
		fmt.Fprintf(ws, "corex: %v\r\n", err)
		return
	}
	done := make(chan syscall.WaitStatus, 1)
	c.sup.rp.waiters[p.Pid] = done
	c.sup.rp.mu.Unlock()
	slave.Close()
	c.log.Info("terminal opened", "pid", p.Pid)
	go io.Copy(master, ws)
	drained := make(chan struct{})
	go func() {
		defer close(drained)
		io.Copy(ws, master) // ends with EIO once no process holds the terminal
	}()
	<-done
	<-drained
	c.log.Info("terminal closed", "pid", p.Pid)
}

// openPTY allocates a pseudo-terminal pair from /dev/ptmx.
func openPTY() (master, slave *os.File, err error) {
	m, err := os.OpenFile("/dev/ptmx", os.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("supervise: open /dev/ptmx: %w", err)
	}
	var unlock int32
	if _, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCSPTLCK, uintptr(unsafe.Pointer(&unlock))); errno != 0 {
		m.Close()
		return nil, nil, fmt.Errorf("supervise: unlock pty: %w", errno)
	}
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, m.Fd(), unix.TIOCGPTPEER, uintptr(unix.O_RDWR|unix.O_NOCTTY))
	if errno != 0 {
		m.Close()
		return nil, nil, fmt.Errorf("supervise: open pty peer: %w", errno)
	}
	return m, os.NewFile(fd, "pty"), nil
}
