package mount

import (
	"bufio"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/internal/dirlock"
)

// pinsDir holds one file per kernel mount (see kernel.go) that lists the
// cache entries the mount serves: the kernel opens those files by their
// names in the cache directory, so no process sharing the directory may
// evict them while the mount exists. A pin file is a header line
// ("zos-flist-pins 1 MNTID TARGET"), then the 32-byte ids.
//
// The pins lock (internal/dirlock, in pinsDir) is locked exclusively to add or remove a pin and
// shared by an eviction for as long as it removes files, so that a pin
// written before its mount checks its files keeps every one of them. Its
// first 8 bytes count the changes: an evicting process re-reads the pins
// only when the count moved.
const (
	pinsDir    = "pins"
	pinsHeader = "zos-flist-pins 1"
)

// pinSet is what this process last read of pinsDir.
type pinSet struct {
	gen    uint64
	loaded bool
	ids    map[flist.ID]bool
}

// pin is a pin file written by this process.
type pin struct {
	c    *Cache
	path string
	f    *os.File // locked shared while the mount lives (see cleanPins)
}

// withPinsLock runs fn with pinsLock locked (how: LOCK_SH or LOCK_EX).
func (c *Cache) withPinsLock(how int, fn func(lock *os.File) error) error {
	lock, err := dirlock.Take(filepath.Join(c.dir, pinsDir), 0o700, how)
	if err != nil {
		return fmt.Errorf("mount: pins: %w", err)
	}
	defer lock.Close()
	return fn(lock)
}

func pinsGen(lock *os.File) uint64 {
	var b [8]byte
	if n, _ := lock.ReadAt(b[:], 0); n < 8 {
		return 0
	}
	return binary.LittleEndian.Uint64(b[:])
}

func bumpPinsGen(lock *os.File) error {
	var b [8]byte
	binary.LittleEndian.PutUint64(b[:], pinsGen(lock)+1)
	_, err := lock.WriteAt(b[:], 0)
	return err
}

// pin records ids as used by a kernel mount, whose mount id (statx
// STATX_MNT_ID) the caller sets with pin.setMount once it is mounted.
func (c *Cache) pin(ids []flist.ID) (*pin, error) {
	var p *pin
	err := c.withPinsLock(unix.LOCK_EX, func(lock *os.File) error {
		f, err := os.CreateTemp(filepath.Join(c.dir, pinsDir), "pin-")
		if err != nil {
			return err
		}
		w := bufio.NewWriter(f)
		w.WriteString(pinHeaderLine(0))
		for _, id := range ids {
			w.Write(id[:])
		}
		if err := w.Flush(); err != nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
		if err := unix.Flock(int(f.Fd()), unix.LOCK_SH); err != nil {
			f.Close()
			os.Remove(f.Name())
			return err
		}
		p = &pin{c: c, path: f.Name(), f: f}
		return bumpPinsGen(lock)
	})
	if err != nil {
		return nil, fmt.Errorf("mount: pin cache entries: %w", err)
	}
	return p, nil
}

// setMount records the mount the pin is for, so that a pin left by a
// process that died while its mount stays keeps protecting it, and one
// whose mount is gone is removed (cleanPins).
func (p *pin) setMount(mntID uint64) error {
	_, err := p.f.WriteAt([]byte(pinHeaderLine(mntID)), 0)
	return err
}

// pinHeaderLine has a fixed length, so that setMount rewrites it in place.
func pinHeaderLine(mntID uint64) string { return fmt.Sprintf("%s %020d\n", pinsHeader, mntID) }

// release removes the pin: its entries may be evicted again.
func (p *pin) release() error {
	err := p.c.withPinsLock(unix.LOCK_EX, func(lock *os.File) error {
		if err := os.Remove(p.path); err != nil && !errors.Is(err, os.ErrNotExist) {
			return err
		}
		return bumpPinsGen(lock)
	})
	p.f.Close()
	return err
}

// pinnedLocked returns the ids no eviction may remove, re-reading pinsDir
// if a pin was added or removed since the last call. The caller holds
// c.mu and pinsLock (shared).
func (c *Cache) pinnedLocked(lock *os.File) map[flist.ID]bool {
	gen := pinsGen(lock)
	if c.pins.loaded && c.pins.gen == gen {
		return c.pins.ids
	}
	ids := map[flist.ID]bool{}
	dir := filepath.Join(c.dir, pinsDir)
	names, _ := os.ReadDir(dir)
	for _, d := range names {
		if !strings.HasPrefix(d.Name(), "pin-") {
			continue
		}
		_, list, err := readPin(filepath.Join(dir, d.Name()))
		if err != nil {
			c.log.Warn("unreadable cache pin, ignored", "file", d.Name(), "err", err)
			continue
		}
		for _, id := range list {
			ids[id] = true
		}
	}
	c.pins = pinSet{gen: gen, loaded: true, ids: ids}
	return ids
}

// readPin returns a pin file's mount id (0: not mounted yet) and ids.
func readPin(path string) (mntID uint64, ids []flist.ID, err error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0, nil, err
	}
	n := len(pinHeaderLine(0))
	if len(b) < n || (len(b)-n)%len(flist.ID{}) != 0 || !strings.HasPrefix(string(b), pinsHeader+" ") {
		return 0, nil, errors.New("not a pin file")
	}
	if mntID, err = strconv.ParseUint(strings.TrimSpace(string(b[len(pinsHeader)+1:n])), 10, 64); err != nil {
		return 0, nil, errors.New("not a pin file")
	}
	body := b[n:]
	ids = make([]flist.ID, len(body)/len(flist.ID{}))
	for i := range ids {
		copy(ids[i][:], body[i*len(flist.ID{}):])
	}
	return mntID, ids, nil
}

// cleanPins removes the pins whose process is gone (nobody holds their
// lock) and whose mount is gone too (its mount id is not in the mount
// table): what a killed mount process that was unmounted by hand leaves.
func (c *Cache) cleanPins() {
	dir := filepath.Join(c.dir, pinsDir)
	names, err := os.ReadDir(dir)
	if err != nil || len(names) == 0 {
		return
	}
	live, err := mountIDs()
	if err != nil {
		return
	}
	c.withPinsLock(unix.LOCK_EX, func(lock *os.File) error {
		removed := false
		for _, d := range names {
			if !strings.HasPrefix(d.Name(), "pin-") {
				continue
			}
			p := filepath.Join(dir, d.Name())
			f, err := os.Open(p)
			if err != nil {
				continue
			}
			held := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB) != nil
			f.Close()
			if held {
				continue
			}
			mntID, _, err := readPin(p)
			if err == nil && mntID != 0 && live[mntID] {
				continue // the mount outlived its process: keep its files
			}
			c.log.Info("removing the pin of a kernel mount that is gone", "mount_id", mntID)
			os.Remove(p)
			removed = true
		}
		if removed {
			return bumpPinsGen(lock)
		}
		return nil
	})
}

// mountIDs returns the mount ids of this mount namespace.
func mountIDs() (map[uint64]bool, error) {
	b, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		return nil, err
	}
	ids := map[uint64]bool{}
	for _, line := range strings.Split(string(b), "\n") {
		f, _, _ := strings.Cut(line, " ")
		if id, err := strconv.ParseUint(f, 10, 64); err == nil {
			ids[id] = true
		}
	}
	return ids, nil
}
