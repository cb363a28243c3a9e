package atomicfile

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
)

// Write replaces path with b. The file is synced before the rename, so a
// crash never leaves an empty or partial file under the final name; perm
// applies to a new file. Concurrent writers of one path do not collide:
// each uses its own temporary name, and the last rename wins.
func Write(path string, b []byte, perm os.FileMode) error {
	return write(path, b, perm, true)
}

func write(path string, b []byte, perm os.FileMode, sync bool) error {
	f, err := os.CreateTemp(filepath.Dir(path), "."+filepath.Base(path)+".*.tmp")
	if err != nil {
		return err
	}
	tmp := f.Name()
	err = writeFile(f, b, perm, sync)
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
		return err
	}
	return nil
}

func writeFile(f *os.File, b []byte, perm os.FileMode, sync bool) error {
	_, err := f.Write(b)
	if err == nil {
		err = f.Chmod(perm)
	}
	if err == nil && sync {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	return err
}

// WriteJSON replaces path with v encoded as indented JSON (0600: state
// files may name secrets' locations and are nobody else's business).
func WriteJSON(path string, v any) error { return writeJSON(path, v, true) }

// WriteJSONVolatile is WriteJSON without the sync: a reader still sees the
// old or the new file, never a partial one, but after a crash the file may
// be empty or old. For state that a crash makes stale anyway (which process
// runs, with which pid), where a sync on every change would only add
// latency.
func WriteJSONVolatile(path string, v any) error { return writeJSON(path, v, false) }

func writeJSON(path string, v any, sync bool) error {
	b, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	return write(path, append(b, '\n'), 0o600, sync)
}

// ReadJSON decodes path into v. A missing file returns an error that
// matches os.ErrNotExist; a file that does not decode says it is corrupt
// and where it is.
func ReadJSON(path string, v any) error {
	b, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := json.Unmarshal(b, v); err != nil {
		return fmt.Errorf("%s is corrupt: %w", path, err)
	}
	return nil
}
