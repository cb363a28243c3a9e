package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/zosgrid/zos/internal/atomicfile"
)

// State names of a container.
const (
	StateCreated    = "created"
	StateRunning    = "running"
	StateRestarting = "restarting"
	StateExited     = "exited"
)

// Status is what the supervisor knows about a container.
type Status struct {
	State string `json:"state"`
	// Pid is the host pid of the container's init while it runs.
	Pid int `json:"pid,omitempty"`
	// ExitCode is the last exit status (128+signal when killed); -1 when
	// unknown (the init exited while no supervisor was its parent).
	ExitCode   int       `json:"exit_code"`
	OOMKilled  bool      `json:"oom_killed,omitempty"`
	Restarts   int       `json:"restarts,omitempty"`
	StartedAt  time.Time `json:"started_at,omitzero"`
	FinishedAt time.Time `json:"finished_at,omitzero"`
	// Error is why the last start failed, if it did.
	Error string `json:"error,omitempty"`
	// Supervisor is the pid of the supervising process.
	Supervisor int `json:"supervisor,omitempty"`
	// ExecDenied counts launches refused by the exec guard.
	ExecDenied uint64 `json:"exec_denied,omitempty"`
}

// Info is one container as listed by ps and inspect.
type Info struct {
	Config Config `json:"config"`
	Status Status `json:"status"`
	// Supervised says a supervising process holds the container.
	Supervised bool `json:"supervised"`
}

func (r *Runtime) dir(id string) string           { return filepath.Join(r.root, "c", id) }
func (r *Runtime) lcRoot() string                 { return filepath.Join(r.root, "lc") }
func (r *Runtime) logPath(id string) string       { return filepath.Join(r.dir(id), "logs", "current.log") }
func (r *Runtime) stopMarker(id string) string    { return filepath.Join(r.dir(id), "stop-requested") }
func (r *Runtime) lockPath(id string) string      { return filepath.Join(r.dir(id), "supervisor.lock") }
func (r *Runtime) statusPath(id string) string    { return filepath.Join(r.dir(id), "status.json") }
func (r *Runtime) configPath(id string) string    { return filepath.Join(r.dir(id), "config.json") }
func (r *Runtime) supervisorLog(id string) string { return filepath.Join(r.dir(id), "supervisor.log") }

// writeJSON replaces path atomically.
func writeJSON(path string, v any) error {
	if err := atomicfile.WriteJSON(path, v); err != nil {
		return fmt.Errorf("container: %w", err)
	}
	return nil
}

// writeStatus records what runs without a sync: a crash stops the
// container anyway, and a lost or empty status reads as created.
func (r *Runtime) writeStatus(id string, st Status) error {
	if err := atomicfile.WriteJSONVolatile(r.statusPath(id), st); err != nil {
		return fmt.Errorf("container: %w", err)
	}
	return nil
}

func readJSON(path string, v any) error {
	if err := atomicfile.ReadJSON(path, v); err != nil {
		return fmt.Errorf("container: %w", err)
	}
	return nil
}

func (r *Runtime) loadConfig(id string) (Config, error) {
	if err := ValidateID(id); err != nil {
		return Config{}, err
	}
	var c Config
	if err := readJSON(r.configPath(id), &c); err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return Config{}, fmt.Errorf("%w: %s", ErrContainerNotFound, id)
		}
		return Config{}, err
	}
	return c, nil
}

func (r *Runtime) loadStatus(id string) Status {
	var s Status
	if err := readJSON(r.statusPath(id), &s); err != nil {
		return Status{State: StateCreated}
	}
	return s
}
