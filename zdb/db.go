package zdb

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"os"
	"path/filepath"
	"runtime/debug"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// DefaultNamespace always exists and cannot be deleted.
const DefaultNamespace = "default"

// MaxNamespaceName is the longest namespace name.
const MaxNamespaceName = 128

const descFile = "zdb-namespace"

// Options configure a DB.
type Options struct {
	DataDir  string
	IndexDir string
	// Mode forces every namespace to user or seq; ModeMix (the zero value
	// is ModeUser, so set it explicitly) lets each namespace choose.
	Mode Mode
	// DataSize is the size at which data files rotate (default 256 MiB).
	DataSize int64
	// Sync fsyncs every commit; SyncTime fsyncs a commit when that much
	// time passed since the last fsync.
	Sync     bool
	SyncTime time.Duration
	// CompatPasswords keeps namespace passwords in clear in the descriptor
	// (0-db can then open the directory with its passwords) instead of a
	// salted hash in the zos side file.
	CompatPasswords bool
	// CacheSize is the RAM shared by all namespaces for values read with
	// pread (a file that could not be mapped), and with NoMap for recently
	// written values too; default 64 MiB, negative disables it.
	CacheSize int64
	// NoMap reads values with pread instead of through read-only maps of
	// the data files (see mapping).
	NoMap bool
	// OnJump, if set, is called after a rotation is written: the old files
	// are complete and will not grow (0-db's jump-index/jump-data hooks).
	// It must not block.
	OnJump func(Jump)
	// MissingData, if set, is called when a read needs a data file that is
	// not there (0-db's blocking missing-data hook: full data files may be
	// offloaded and brought back on demand). It gets the namespace and the
	// file's path; a nil error means the file is back, and the read opens it
	// again. It runs while the namespace's readers hold their lock: writes
	// to that namespace wait for it.
	MissingData func(namespace, path string) error
	Logger      *slog.Logger
	Now         func() time.Time
}

// Jump describes a rotation to a new data and index file pair.
type Jump struct {
	Namespace          string
	OldIndex, NewIndex string
	OldData, NewData   string
	// Dirty lists the index files changed since the last reset (INDEX
	// DIRTY); ResetDirty resets those of them that did not change again
	// since, once they are backed up (0-db: its jump-index hook succeeded).
	Dirty      []uint32
	ResetDirty func()
}

// DB is a set of namespaces under one data and one index directory.
type DB struct {
	opts Options
	log  *slog.Logger

	mu sync.Mutex
	ns map[string]*Namespace

	repairsMu sync.Mutex
	repairs   []Repair

	cache    *valueCache
	cacheGen atomic.Uint64

	io struct {
		dataWritten, indexWritten, dataRead, indexRead, writeFailed, readFailed atomic.Uint64
	}
}

// IOStats counts bytes moved to and from the files since Open.
type IOStats struct {
	DataWritten, IndexWritten, DataRead, IndexRead uint64
	WriteFailed, ReadFailed                        uint64
}

// IOStats returns the DB's I/O counters.
func (db *DB) IOStats() IOStats {
	return IOStats{DataWritten: db.io.dataWritten.Load(), IndexWritten: db.io.indexWritten.Load(),
		DataRead: db.io.dataRead.Load(), IndexRead: db.io.indexRead.Load(),
		WriteFailed: db.io.writeFailed.Load(), ReadFailed: db.io.readFailed.Load()}
}

// Open opens (creating if needed) the data and index directories and every
// namespace in them, repairing torn tails (see Repairs).
func Open(opts Options) (*DB, error) {
	if opts.DataDir == "" || opts.IndexDir == "" {
		return nil, errors.New("zdb: data and index directories are required")
	}
	if opts.DataSize <= 0 {
		opts.DataSize = DefaultDataSize
	}
	if opts.DataSize > int64(^uint32(0)) {
		return nil, fmt.Errorf("zdb: datasize %d exceeds the 4 GiB file offset limit", opts.DataSize)
	}
	if opts.CacheSize == 0 {
		opts.CacheSize = 64 << 20
	}
	if opts.Now == nil {
		opts.Now = time.Now
	}
	log := opts.Logger
	if log == nil {
		log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	db := &DB{opts: opts, log: log.With("component", "zdb"), ns: map[string]*Namespace{},
		cache: newValueCache(opts.CacheSize)}
	for _, d := range []string{opts.DataDir, opts.IndexDir} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			return nil, fmt.Errorf("zdb: %w", err)
		}
	}
	des, err := os.ReadDir(opts.IndexDir)
	if err != nil {
		return nil, fmt.Errorf("zdb: %w", err)
	}
	for _, de := range des {
		if !de.IsDir() {
			continue
		}
		if _, err := os.Stat(filepath.Join(opts.IndexDir, de.Name(), descFile)); err != nil {
			continue
		}
		ns, err := db.openNamespace(de.Name(), false)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("zdb: namespace %s: %w", de.Name(), err)
		}
		db.ns[de.Name()] = ns
	}
	if db.ns[DefaultNamespace] == nil {
		ns, err := db.openNamespace(DefaultNamespace, true)
		if err != nil {
			db.Close()
			return nil, fmt.Errorf("zdb: namespace default: %w", err)
		}
		db.ns[DefaultNamespace] = ns
	}
	db.releaseLoadMemory()
	return db, nil
}

// releaseLoadMemory hands the memory of the replay (whole index files read
// and parsed, garbage once the key index is built) back to the kernel.
// Without it the heap the load grew stays resident: with 1 M keys the RSS
// after a restart was about 300 MiB against 90 MiB for the index itself.
func (db *DB) releaseLoadMemory() {
	var loaded int64
	for _, ns := range db.ns {
		for _, n := range ns.idxSizes {
			loaded += n
		}
	}
	if loaded >= 4<<20 {
		debug.FreeOSMemory()
	}
}

func (db *DB) defaultMode() Mode {
	if db.opts.Mode == ModeSeq {
		return ModeSeq
	}
	return ModeUser
}

// Options returns the options the DB runs with.
func (db *DB) Options() Options { return db.opts }

// Repairs lists the torn tails truncated while opening.
func (db *DB) Repairs() []Repair {
	db.repairsMu.Lock()
	defer db.repairsMu.Unlock()
	return append([]Repair(nil), db.repairs...)
}

// Namespace returns an open namespace.
func (db *DB) Namespace(name string) (*Namespace, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	ns := db.ns[name]
	if ns == nil {
		return nil, fmt.Errorf("%w: %s", ErrNamespaceNotFound, name)
	}
	return ns, nil
}

// ValidateName checks a namespace name: 1..128 bytes, not "." or "..", no
// "/" and no NUL.
func ValidateName(name string) error {
	if name == "" || name == "." || name == ".." || len(name) > MaxNamespaceName ||
		strings.ContainsAny(name, "/\x00") {
		return fmt.Errorf("%w: %q", ErrInvalidName, name)
	}
	return nil
}

// Create creates a namespace.
func (db *DB) Create(name string) (*Namespace, error) {
	if err := ValidateName(name); err != nil {
		return nil, err
	}
	if name == DefaultNamespace {
		return nil, fmt.Errorf("%w: %q is reserved", ErrInvalidName, name)
	}
	db.mu.Lock()
	defer db.mu.Unlock()
	if db.ns[name] != nil {
		return nil, fmt.Errorf("%w: %s", ErrNamespaceExists, name)
	}
	ns, err := db.openNamespace(name, true)
	if err != nil {
		return nil, err
	}
	db.ns[name] = ns
	db.log.Info("zdb namespace created", "ns", name)
	return ns, nil
}

// Delete closes a namespace and removes its files.
func (db *DB) Delete(name string) error {
	if name == DefaultNamespace {
		return fmt.Errorf("%w: cannot delete %s", ErrInvalidName, name)
	}
	db.mu.Lock()
	ns := db.ns[name]
	if ns == nil {
		db.mu.Unlock()
		return fmt.Errorf("%w: %s", ErrNamespaceNotFound, name)
	}
	delete(db.ns, name)
	db.mu.Unlock()
	ns.close()
	if err := os.RemoveAll(ns.idxDir); err != nil {
		return err
	}
	if err := os.RemoveAll(ns.dataDir); err != nil {
		return err
	}
	db.log.Info("zdb namespace deleted", "ns", name)
	return nil
}

// Reload closes a namespace and opens it again from disk (after an offline
// change of its files).
func (db *DB) Reload(name string) (*Namespace, error) {
	db.mu.Lock()
	defer db.mu.Unlock()
	old := db.ns[name]
	if old == nil {
		return nil, fmt.Errorf("%w: %s", ErrNamespaceNotFound, name)
	}
	if err := old.close(); err != nil {
		return nil, err
	}
	ns, err := db.openNamespace(name, false)
	if err != nil {
		delete(db.ns, name)
		return nil, err
	}
	db.ns[name] = ns
	old.successor.Store(ns)
	return ns, nil
}

// List returns the namespace names, sorted.
func (db *DB) List() []string {
	db.mu.Lock()
	defer db.mu.Unlock()
	names := make([]string, 0, len(db.ns))
	for n := range db.ns {
		names = append(names, n)
	}
	sort.Strings(names)
	return names
}

// Close commits pending writes and closes every namespace.
func (db *DB) Close() error {
	db.mu.Lock()
	defer db.mu.Unlock()
	var first error
	for name, ns := range db.ns {
		if err := ns.close(); err != nil && first == nil {
			first = err
		}
		delete(db.ns, name)
	}
	return first
}

// close commits what is pending and closes the files; later calls fail
// with ErrClosed.
func (ns *Namespace) close() error {
	err := ns.CommitAll()
	ns.commitMu.Lock()
	ns.mu.Lock()
	ns.closed = true
	ns.closedFlag.Store(true)
	// Under ns.mu: a reader that did not check closed may still be
	// copying from a map.
	if cerr := ns.closeFiles(); err == nil {
		err = cerr
	}
	ns.mu.Unlock()
	ns.commitMu.Unlock()
	return err
}

// Flush removes every key and all history of the namespace, starting over
// from empty files.
func (ns *Namespace) Flush() error {
	if err := ns.CommitAll(); err != nil {
		return err
	}
	ns.commitMu.Lock()
	defer ns.commitMu.Unlock()
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if err := ns.writable(); err != nil {
		return err
	}
	ns.closeFiles()
	for _, dir := range []string{ns.idxDir, ns.dataDir} {
		for _, prefix := range []string{"i", "d"} {
			ids, _ := listFiles(dir, prefix)
			for _, id := range ids {
				p := indexPath(dir, id)
				if prefix == "d" {
					p = dataPath(dir, id)
				}
				if err := os.Remove(p); err != nil {
					return err
				}
			}
		}
	}
	mode := ns.mode
	ns.cacheGen = ns.db.cacheGen.Add(1)
	ns.keys = newKeyIndex()
	ns.seqmap = nil
	ns.nextID, ns.entries, ns.payload, ns.keyBytes = 0, 0, 0, 0
	ns.idxSizes, ns.lastIdx = map[uint32]int64{}, map[uint32]uint32{}
	ns.dataPrev, ns.idxPrev = 0, 0
	ns.seq++
	ns.committed.Store(ns.seq)
	if err := ns.bumpGeneration(); err != nil {
		return err
	}
	if err := ns.initFresh(); err != nil {
		return err
	}
	if mode != ns.mode {
		return ns.setModeLocked(mode)
	}
	return nil
}
