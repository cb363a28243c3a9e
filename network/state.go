package network

import (
	"errors"
	"fmt"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/zosgrid/zos/internal/atomicfile"
	"github.com/zosgrid/zos/internal/dirlock"

	"golang.org/x/sys/unix"
)

// state is what this host remembers about one applied network. It is a
// cache: the spec comes from the deployment and can be applied again.
// Files are 0600 because the spec holds the WireGuard private key.
type state struct {
	Spec        Spec         `json:"spec"`
	Public      netip.Prefix `json:"public"`
	Attachments []Attachment `json:"attachments"`
}

// Attachment is a workload namespace attached to a network.
type Attachment struct {
	Netns     string       `json:"netns"`
	Interface string       `json:"interface"`
	Address   netip.Prefix `json:"address"`
	HostLink  string       `json:"host_link"`
}

// wallState is the remembered wall configuration.
type wallState struct {
	Outward string   `json:"outward"`
	TCP     []uint16 `json:"tcp"`
	UDP     []uint16 `json:"udp"`
}

func (m *Manager) statePath(id string) string { return filepath.Join(m.cfg.StateDir, id+".json") }
func (m *Manager) socketPath(id string) string {
	return filepath.Join(m.cfg.StateDir, id+".sock")
}
func (m *Manager) wallPath() string { return filepath.Join(m.cfg.StateDir, "wall.json") }

func writeJSON(path string, v any) error {
	if err := atomicfile.WriteJSON(path, v); err != nil {
		return fmt.Errorf("network: write state: %w", err)
	}
	return nil
}

func readJSON(path string, v any) error {
	if err := atomicfile.ReadJSON(path, v); err != nil {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}

func (m *Manager) load(name string) (state, error) {
	var st state
	err := readJSON(m.statePath(ID(name)), &st)
	if errors.Is(err, os.ErrNotExist) {
		return st, fmt.Errorf("%w: %s", ErrNotFound, name)
	}
	return st, err
}

func (m *Manager) save(st state) error { return writeJSON(m.statePath(ID(st.Spec.Name)), st) }

// states returns every applied network, sorted by name.
func (m *Manager) states() ([]state, error) {
	ents, err := os.ReadDir(m.cfg.StateDir)
	if err != nil {
		if errors.Is(err, os.ErrNotExist) {
			return nil, nil
		}
		return nil, fmt.Errorf("network: state dir: %w", err)
	}
	var out []state
	for _, e := range ents {
		n := e.Name()
		// Network state files are <id>.json, with an 8-hex-digit id.
		if id, ok := strings.CutSuffix(n, ".json"); !ok || len(id) != 8 || strings.Trim(id, "0123456789abcdef") != "" {
			continue
		}
		var st state
		if err := readJSON(filepath.Join(m.cfg.StateDir, n), &st); err != nil {
			return nil, err
		}
		out = append(out, st)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Spec.Name < out[j].Spec.Name })
	return out, nil
}

// lock takes the host-wide lock of the state directory, so concurrent
// `zos network` commands do not interleave.
func (m *Manager) lock() (func(), error) {
	f, err := dirlock.Take(m.cfg.StateDir, 0o700, unix.LOCK_EX)
	if err != nil {
		return nil, fmt.Errorf("network: state dir: %w", err)
	}
	return func() { f.Close() }, nil
}

var errNotExist = os.ErrNotExist

func removeFile(p string) error {
	if err := os.Remove(p); err != nil && !errors.Is(err, os.ErrNotExist) {
		return fmt.Errorf("network: %w", err)
	}
	return nil
}
