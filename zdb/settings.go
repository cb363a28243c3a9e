package zdb

import (
	"crypto/pbkdf2"
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/zosgrid/zos/internal/atomicfile"
)

const sideFileName = "zos-namespace"

// pbkdf2Iterations makes a stolen side file slow to brute-force while a
// SELECT with a password still costs only a few milliseconds.
const pbkdf2Iterations = 20000

// sideFile is what zos persists beside 0-db's descriptor: flags 0-db keeps
// only in memory, and the password as a salted hash.
type sideFile struct {
	Lock         bool   `json:"lock,omitempty"`
	Freeze       bool   `json:"freeze,omitempty"`
	PasswordSalt []byte `json:"password_salt,omitempty"`
	PasswordHash []byte `json:"password_hash,omitempty"`
	// Generation counts FLUSH and compaction swaps: replication positions
	// from an older generation are void.
	Generation uint64 `json:"generation,omitempty"`
	// CutsFrom is the oldest generation whose positions may still be
	// valid: FLUSH and compaction set it to the new generation.
	CutsFrom uint64 `json:"cuts_from,omitempty"`
	// Cuts records the crash repairs since CutsFrom that cut the data log
	// back: each one also bumped Generation, and a position from before a
	// cut stays valid only if it does not lie past the cut point.
	Cuts []logCut `json:"cuts,omitempty"`
}

// logCut says that at generation Gen the log was cut back to (File,
// Offset) by a crash repair (the generation then became Gen+1).
type logCut struct {
	Gen    uint64 `json:"gen"`
	File   uint32 `json:"file"`
	Offset uint32 `json:"offset"`
}

// maxCuts bounds the cut history; positions older than it resync.
const maxCuts = 64

func loadSide(dir string) (sideFile, error) {
	var s sideFile
	b, err := os.ReadFile(filepath.Join(dir, sideFileName))
	if errors.Is(err, fs.ErrNotExist) {
		return s, nil
	}
	if err != nil {
		return s, err
	}
	if err := json.Unmarshal(b, &s); err != nil {
		return s, fmt.Errorf("zdb: %s: %w", filepath.Join(dir, sideFileName), err)
	}
	if s.CutsFrom == 0 && len(s.Cuts) == 0 {
		// Written before cuts were recorded: no older position is known valid.
		s.CutsFrom = s.Generation
	}
	return s, nil
}

func (ns *Namespace) saveSide() error {
	b, err := json.Marshal(ns.side)
	if err != nil {
		return err
	}
	return atomicfile.Write(filepath.Join(ns.idxDir, sideFileName), b, 0o600)
}

func (ns *Namespace) saveDesc() error {
	return atomicfile.Write(filepath.Join(ns.idxDir, descFile), ns.desc.encode(), 0o600)
}

// Settings are a namespace's properties.
type Settings struct {
	MaxSize     uint64
	Public      bool
	Worm        bool
	Lock        bool
	Freeze      bool
	HasPassword bool
	Mode        Mode
}

// Settings returns the namespace's properties.
func (ns *Namespace) Settings() Settings {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return Settings{MaxSize: ns.desc.MaxSize, Public: ns.desc.Public, Worm: ns.desc.Worm,
		Lock: ns.side.Lock, Freeze: ns.side.Freeze, Mode: ns.mode,
		HasPassword: ns.desc.Password != "" || len(ns.side.PasswordHash) > 0}
}

// Update changes properties with fn and persists them (descriptor and side
// file).
func (ns *Namespace) Update(fn func(s *Settings)) error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return ErrClosed
	}
	s := Settings{MaxSize: ns.desc.MaxSize, Public: ns.desc.Public, Worm: ns.desc.Worm,
		Lock: ns.side.Lock, Freeze: ns.side.Freeze, Mode: ns.mode}
	fn(&s)
	if s.Mode != ns.mode {
		if err := ns.setModeLocked(s.Mode); err != nil {
			return err
		}
	}
	ns.desc.MaxSize, ns.desc.Public, ns.desc.Worm = s.MaxSize, s.Public, s.Worm
	ns.side.Lock, ns.side.Freeze = s.Lock, s.Freeze
	if err := ns.saveDesc(); err != nil {
		return err
	}
	return ns.saveSide()
}

// setModeLocked changes the mode of a namespace that never held a key.
func (ns *Namespace) setModeLocked(m Mode) error {
	if m != ModeUser && m != ModeSeq {
		return fmt.Errorf("zdb: invalid mode %d", m)
	}
	if ns.nextID > 0 || ns.curID != ns.firstID || ns.dataEnd != dataHeaderSize || len(ns.pend.segs) > 0 {
		return ErrModeChange
	}
	if err := os.WriteFile(indexPath(ns.idxDir, ns.curID), appendIndexHeader(nil, ns.curID, m), 0o600); err != nil {
		return err
	}
	ns.mode = m
	ns.seqmap = nil
	if m == ModeSeq {
		ns.seqmap = []seqFile{{first: 0, file: ns.curID}}
	}
	return nil
}

// SetPassword sets (or with "" clears) the namespace password. Unless the
// DB runs with CompatPasswords only a salted PBKDF2 hash is kept.
func (ns *Namespace) SetPassword(pw string) error {
	if len(pw) > 255 {
		return fmt.Errorf("zdb: password too long")
	}
	ns.mu.Lock()
	defer ns.mu.Unlock()
	ns.desc.Password = ""
	ns.side.PasswordSalt, ns.side.PasswordHash = nil, nil
	if pw != "" {
		if ns.db.opts.CompatPasswords {
			ns.desc.Password = pw
		} else {
			salt := make([]byte, 16)
			rand.Read(salt)
			h, err := pbkdf2.Key(sha256.New, pw, salt, pbkdf2Iterations, 32)
			if err != nil {
				return err
			}
			ns.side.PasswordSalt, ns.side.PasswordHash = salt, h
		}
	}
	if err := ns.saveDesc(); err != nil {
		return err
	}
	return ns.saveSide()
}

// CheckPassword reports whether pw is the namespace password.
func (ns *Namespace) CheckPassword(pw string) bool {
	ns.mu.RLock()
	desc, salt, hash := ns.desc.Password, ns.side.PasswordSalt, ns.side.PasswordHash
	ns.mu.RUnlock()
	if len(hash) > 0 {
		h, err := pbkdf2.Key(sha256.New, pw, salt, pbkdf2Iterations, len(hash))
		return err == nil && subtle.ConstantTimeCompare(h, hash) == 1
	}
	if desc != "" {
		return subtle.ConstantTimeCompare([]byte(desc), []byte(pw)) == 1
	}
	return false
}

// ClearPassword returns the password in clear when it is stored that way
// (descriptors written by 0-db or under CompatPasswords); the SECURE
// challenge needs it.
func (ns *Namespace) ClearPassword() (string, bool) {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return ns.desc.Password, ns.desc.Password != ""
}

// Access is what decides who may read a namespace, and what its clients
// may write: exported by a primary and applied by its replicas so that a
// copy is no easier to read and refuses what the original refuses.
type Access struct {
	Public        bool   `json:"public"`
	PasswordClear string `json:"password_clear,omitempty"`
	PasswordSalt  []byte `json:"password_salt,omitempty"`
	PasswordHash  []byte `json:"password_hash,omitempty"`
	// Limits is nil from a primary that predates it: keep the local ones.
	Limits *Limits `json:"limits,omitempty"`
}

// Limits are the namespace settings that restrict writes and reads.
type Limits struct {
	MaxSize uint64 `json:"maxsize,omitempty"`
	Worm    bool   `json:"worm,omitempty"`
	Lock    bool   `json:"lock,omitempty"`
	Freeze  bool   `json:"freeze,omitempty"`
}

// Access returns the namespace's access settings, password included (as
// stored: hash, or clear text for 0-db descriptors).
func (ns *Namespace) Access() Access {
	ns.mu.RLock()
	defer ns.mu.RUnlock()
	return Access{Public: ns.desc.Public, PasswordClear: ns.desc.Password,
		PasswordSalt: ns.side.PasswordSalt, PasswordHash: ns.side.PasswordHash,
		Limits: &Limits{MaxSize: ns.desc.MaxSize, Worm: ns.desc.Worm, Lock: ns.side.Lock, Freeze: ns.side.Freeze}}
}

// SetAccess applies access settings exported by Access (on a replica).
func (ns *Namespace) SetAccess(a Access) error {
	ns.mu.Lock()
	defer ns.mu.Unlock()
	if ns.closed {
		return ErrClosed
	}
	if len(a.PasswordClear) > 255 {
		return fmt.Errorf("zdb: password too long")
	}
	ns.desc.Public = a.Public
	ns.desc.Password = a.PasswordClear
	ns.side.PasswordSalt, ns.side.PasswordHash = a.PasswordSalt, a.PasswordHash
	if l := a.Limits; l != nil {
		ns.desc.MaxSize, ns.desc.Worm = l.MaxSize, l.Worm
		ns.side.Lock, ns.side.Freeze = l.Lock, l.Freeze
	}
	if err := ns.saveDesc(); err != nil {
		return err
	}
	return ns.saveSide()
}
