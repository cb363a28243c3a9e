package flist

import (
	"io/fs"
	"syscall"
)

// RootIno is the inode number of the root directory.
const RootIno = 1

// Inode is one row of the inode table, with its extra data.
type Inode struct {
	Ino    uint64
	Parent uint64
	Name   string
	Size   uint64
	UID    uint32
	GID    uint32
	Mode   uint32 // raw st_mode: type bits and permissions
	Rdev   uint64
	Ctime  int64
	Mtime  int64
	Data   []byte // extra table: symlink target
}

// Type returns the S_IFMT bits of Mode.
func (i Inode) Type() uint32 { return i.Mode & syscall.S_IFMT }

// IsDir reports whether i is a directory.
func (i Inode) IsDir() bool { return i.Type() == syscall.S_IFDIR }

// IsRegular reports whether i is a regular file.
func (i Inode) IsRegular() bool { return i.Type() == syscall.S_IFREG }

// IsSymlink reports whether i is a symbolic link.
func (i Inode) IsSymlink() bool { return i.Type() == syscall.S_IFLNK }

// FileMode converts Mode to an io/fs mode (for printing).
func (i Inode) FileMode() fs.FileMode {
	m := fs.FileMode(i.Mode & 0o777)
	switch i.Type() {
	case syscall.S_IFDIR:
		m |= fs.ModeDir
	case syscall.S_IFLNK:
		m |= fs.ModeSymlink
	case syscall.S_IFIFO:
		m |= fs.ModeNamedPipe
	case syscall.S_IFSOCK:
		m |= fs.ModeSocket
	case syscall.S_IFCHR:
		m |= fs.ModeDevice | fs.ModeCharDevice
	case syscall.S_IFBLK:
		m |= fs.ModeDevice
	}
	if i.Mode&syscall.S_ISUID != 0 {
		m |= fs.ModeSetuid
	}
	if i.Mode&syscall.S_ISGID != 0 {
		m |= fs.ModeSetgid
	}
	if i.Mode&syscall.S_ISVTX != 0 {
		m |= fs.ModeSticky
	}
	return m
}

// Route is one row of the route table.
type Route struct {
	Start, End uint8
	URL        string
}

// Xattr is one extended attribute of an inode.
type Xattr struct {
	Name  string
	Value []byte
}

// Signature is one ed25519 signature over the metadata hash.
type Signature struct {
	PublicKey [32]byte
	Sig       []byte
}
