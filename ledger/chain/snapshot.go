package chain

import (
	"errors"
	"fmt"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"

	"github.com/zosgrid/zos/ledger"
)

// snapshotFile is the ledger state saved at Commit, under HOME/data.
const snapshotFile = "ledger.snapshot"

// SnapshotPath is where a home keeps its ledger snapshot.
func SnapshotPath(home string) string { return filepath.Join(home, "data", snapshotFile) }

// writeSnapshot replaces path atomically: a temporary file in the same
// directory, synced, renamed over the old one, then the directory synced.
// A crash leaves either the old snapshot or the new one, never half of one.
func writeSnapshot(path string, b []byte) error {
	dir := filepath.Dir(path)
	f, err := os.CreateTemp(dir, snapshotFile+".tmp*")
	if err != nil {
		return fmt.Errorf("chain: snapshot: %w", err)
	}
	tmp := f.Name()
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return fmt.Errorf("chain: snapshot: %w", err)
	}
	if d, err := os.Open(dir); err == nil {
		_ = d.Sync()
		d.Close()
	}
	return nil
}

// loadMachine restores the machine from the home's snapshot, or builds it
// at genesis when there is none or it cannot be trusted (logged); CometBFT's
// handshake then replays the stored blocks after the machine's height.
func loadMachine(home string, g ledger.Genesis, log *slog.Logger) (*ledger.Machine, error) {
	b, err := os.ReadFile(SnapshotPath(home))
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return ledger.New(g)
	case err != nil:
		log.Warn("ledger snapshot unreadable; replaying every block from genesis", "path", SnapshotPath(home), "err", err)
		return ledger.New(g)
	}
	m, err := ledger.Restore(g, b)
	if err != nil {
		log.Warn("ledger snapshot unusable; replaying every block from genesis", "path", SnapshotPath(home), "err", err)
		return ledger.New(g)
	}
	log.Info("ledger snapshot loaded", "height", m.Height())
	return m, nil
}
