package container

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/zosgrid/zos/internal/dirlock"
	"golang.org/x/sys/unix"
)

// Host id ranges: each container with a user namespace maps its ids 0..65535
// to a range of its own, and no two containers may share one (a root of one
// would own the files of the other). A range is claimed by an empty file
// named BASE.ID in the claims directory (root/uids), made under an flock
// there (uids/.lock), so that containers created at the same time, by
// several zos processes, get different ranges; and picking a range reads
// one directory instead of every container's config.
//
// A claim whose container directory is gone (a create that died half-way)
// is stale and reused. State written before claims existed (configs
// holding an IDBase, no claims directory) is claimed once, on first use.
const (
	claimsDirName  = "uids"
	claimsComplete = ".complete" // every config's range has its claim
	firstIDSlot    = 16          // ranges start at 16*65536 = 2^20
	lastIDSlot     = 65000
)

func (r *Runtime) claimsDir() string { return filepath.Join(r.root, claimsDirName) }

func claimName(base uint32, id string) string { return strconv.FormatUint(uint64(base), 10) + "." + id }

// parseClaim splits a claim's file name; ok is false for other files.
func parseClaim(name string) (base uint32, id string, ok bool) {
	b, id, found := strings.Cut(name, ".")
	if !found || ValidateID(id) != nil {
		return 0, "", false
	}
	n, err := strconv.ParseUint(b, 10, 32)
	if err != nil || n%idRange != 0 {
		return 0, "", false
	}
	return uint32(n), id, true
}

// allocIDBase claims the lowest free range of 65536 host ids above 2^20 for
// container id and returns its first id.
func (r *Runtime) allocIDBase(id string) (uint32, error) {
	dir := r.claimsDir()
	lock, err := dirlock.Take(dir, 0o700, unix.LOCK_EX)
	if err != nil {
		return 0, fmt.Errorf("container: %w", err)
	}
	defer lock.Close()
	if _, err := os.Stat(filepath.Join(dir, claimsComplete)); errors.Is(err, os.ErrNotExist) {
		if err := r.claimConfiguredRanges(dir); err != nil {
			return 0, err
		}
	}
	ents, err := os.ReadDir(dir)
	if err != nil {
		return 0, fmt.Errorf("container: id ranges: %w", err)
	}
	used := map[uint32]bool{}
	for _, e := range ents {
		base, owner, ok := parseClaim(e.Name())
		if !ok {
			continue
		}
		if owner != id {
			if _, err := os.Stat(r.dir(owner)); errors.Is(err, os.ErrNotExist) {
				os.Remove(filepath.Join(dir, e.Name())) // stale
				continue
			}
		}
		used[base] = true
	}
	for slot := uint32(firstIDSlot); slot < lastIDSlot; slot++ {
		base := slot * idRange
		if used[base] {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, claimName(base, id)), os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0o600)
		if err != nil {
			return 0, fmt.Errorf("container: claim id range: %w", err)
		}
		f.Close()
		return base, nil
	}
	return 0, errors.New("container: no free uid range")
}

// releaseIDBase drops the claim of container id on the range at base.
func (r *Runtime) releaseIDBase(base uint32, id string) {
	if base != 0 {
		os.Remove(filepath.Join(r.claimsDir(), claimName(base, id)))
	}
}

// claimConfiguredRanges writes the claims of containers whose configs
// predate the claims directory, then marks it complete. Called locked.
func (r *Runtime) claimConfiguredRanges(dir string) error {
	ids, err := r.ids()
	if err != nil {
		return err
	}
	for _, other := range ids {
		c, err := r.loadConfig(other)
		if err != nil || c.IDBase == 0 {
			continue
		}
		f, err := os.OpenFile(filepath.Join(dir, claimName(c.IDBase, other)), os.O_CREATE|os.O_WRONLY, 0o600)
		if err != nil {
			return fmt.Errorf("container: claim id range: %w", err)
		}
		f.Close()
	}
	f, err := os.OpenFile(filepath.Join(dir, claimsComplete), os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		return fmt.Errorf("container: id ranges: %w", err)
	}
	return f.Close()
}
