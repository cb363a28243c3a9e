package erofs

import (
	"cmp"
	"crypto/sha256"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"math"
	"slices"
	"strings"

	"golang.org/x/sys/unix"
)

// Entry is one file of the tree.
type Entry struct {
	Path      string // slash-separated, relative to the root; "" is the root directory
	Mode      uint32 // st_mode: type bits and permission bits incl. setuid/setgid/sticky
	UID, GID  uint32
	Mtime     int64 // seconds since the epoch; negative values are kept (see the package doc)
	MtimeNsec uint32
	Size      uint64 // regular files: st_size. No data is stored: the file reads as zeros (holes)
	Rdev      uint64 // char/block devices, in Linux encoding (unix.Mkdev)
	Target    string // symlink target
	Xattrs    []Xattr
	LinkTo    string // hard link: Path of another (non-directory) entry; this entry's other fields are ignored
}

// Xattr is one extended attribute, full name with its namespace ("user.x",
// "trusted.overlay.redirect", "security.capability").
type Xattr struct {
	Name  string
	Value []byte
}

// ErrInvalid is wrapped by every error that rejects the entries given to Write.
var ErrInvalid = errors.New("erofs: invalid entries")

const (
	blockBits   = 12
	blockSize   = 1 << blockBits
	superOffset = 1024
	superSize   = 128
	inodeSize   = 64 // the extended on-disk inode
	compactSize = 32 // the compact on-disk inode
	slotBits    = 5  // nid = metadata offset >> slotBits
	direntSize  = 12
	xattrHeader = 12
	nameMax     = 255
	symlinkMax  = 4095 // PATH_MAX less the NUL

	superMagic             = 0xE0F5E1E2
	featureCompatSBChksum  = 0x1
	featureIncompatChunked = 0x4

	layoutFlatPlain  = 0
	layoutFlatInline = 2
	layoutChunked    = 4

	nullAddr       = 0xFFFFFFFF
	chunkBitsMax   = 31 // EROFS_CHUNK_FORMAT_BLKBITS_MASK
	blockMapEntry  = 4
	maxImageBlocks = math.MaxUint32
)

// Dirent file types (the kernel's FT_*).
const (
	ftReg     = 1
	ftDir     = 2
	ftChr     = 3
	ftBlk     = 4
	ftFifo    = 5
	ftSock    = 6
	ftSymlink = 7
)

type dirent struct {
	name string
	ino  int32 // index into builder.inodes
}

// inode is one on-disk inode: an entry, or several hard-linked entries.
// Its fields are ordered by size to keep 100k of them small.
type inode struct {
	size uint64
	nid  uint64
	// dirents of a directory, "." and ".." included, sorted by name;
	// blockStart[i] is the index of the first dirent of content block i.
	dirents    []dirent
	blockStart []int32
	entry      int32 // index of the entry whose attributes the inode takes
	mode       uint32
	nlink      uint32
	xattrs     int32  // size of the xattr body (header included), 0 for none
	chunks     int32  // chunked files: entries of the block map
	startBlk   uint32 // FLAT_PLAIN content: first data block
	chunkBits  uint8  // chunked files: log2 of the chunk size
	layout     uint8
	compact    bool // the 32-byte form holds this inode exactly
	placed     bool
}

type builder struct {
	entries []Entry
	rootDef Entry // the default root, used when entries has none
	root    int32
	inodes  []inode
	ino     []int32 // entry index -> inode index
	order   []int32 // inodes in layout order
	chunked bool
	blocks  uint32
	// Compact inodes have no time of their own: they take the image's
	// epoch, chosen as the most common mtime.
	epoch     int64
	epochNsec uint32
}

// Write writes an EROFS image of entries to w.
//
// Entries may come in any order. Every parent directory of an entry must be
// an entry itself, except the root ("") which defaults to a 0755 directory
// owned by 0:0 with mtime 0. A hard link (LinkTo) shares its target's inode.
// Nothing is written when the entries are invalid; an error while writing
// may leave part of the image in w.
func Write(w io.Writer, entries []Entry) error {
	b := &builder{entries: entries}
	if err := b.build(); err != nil {
		return err
	}
	if err := b.layout(); err != nil {
		return err
	}
	img := b.encode()
	if _, err := w.Write(img); err != nil {
		return fmt.Errorf("erofs: write image: %w", err)
	}
	return nil
}

func invalid(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrInvalid, fmt.Sprintf(format, args...))
}

// entry returns entry i, the default root being index len(entries).
func (b *builder) entry(i int32) *Entry {
	if int(i) == len(b.entries) {
		return &b.rootDef
	}
	return &b.entries[i]
}

// build checks the entries and turns them into inodes with their directory
// contents.
func (b *builder) build() error {
	n := len(b.entries)
	byPath := make(map[string]int32, n+1)
	b.root = -1
	for i := range b.entries {
		e := &b.entries[i]
		if err := checkPath(e.Path); err != nil {
			return err
		}
		if _, dup := byPath[e.Path]; dup {
			return invalid("duplicate path %q", e.Path)
		}
		byPath[e.Path] = int32(i)
		if e.Path == "" {
			b.root = int32(i)
		}
	}
	if b.root < 0 {
		b.rootDef = Entry{Mode: unix.S_IFDIR | 0o755}
		b.root = int32(n)
	}
	total := n + 1 // room for the default root

	// Hard links resolve to the entry that owns the inode.
	owner := make([]int32, total)
	for i := range owner {
		owner[i] = int32(i)
	}
	for i := range b.entries {
		if b.entries[i].LinkTo == "" {
			continue
		}
		j := int32(i)
		for steps := 0; b.entry(j).LinkTo != ""; steps++ {
			t, ok := byPath[b.entry(j).LinkTo]
			if !ok {
				return invalid("%q: hard link to missing entry %q", b.entries[i].Path, b.entry(j).LinkTo)
			}
			if steps > n {
				return invalid("%q: hard links form a cycle", b.entries[i].Path)
			}
			j = t
		}
		if b.entry(j).Mode&unix.S_IFMT == unix.S_IFDIR {
			return invalid("%q: hard link to directory %q", b.entries[i].Path, b.entry(j).Path)
		}
		owner[i] = j
	}

	b.ino = make([]int32, total)
	b.inodes = make([]inode, 0, total)
	for i := int32(0); i < int32(total); i++ {
		if owner[i] != i || (int(i) == n && b.root != int32(n)) {
			continue
		}
		e := b.entry(i)
		xattrs, err := checkEntry(e)
		if err != nil {
			return err
		}
		b.ino[i] = int32(len(b.inodes))
		b.inodes = append(b.inodes, inode{entry: i, mode: e.Mode, xattrs: int32(xattrs)})
	}
	for i := range b.entries {
		if owner[i] != int32(i) {
			b.ino[i] = b.ino[owner[i]]
		}
	}
	rootIno := &b.inodes[b.ino[b.root]]
	if rootIno.mode&unix.S_IFMT != unix.S_IFDIR {
		return invalid("the root is not a directory (mode %#o)", rootIno.mode)
	}

	// Directory contents: every entry but the root is a name in its
	// parent. The names are counted first so that all directories share
	// one exactly sized array.
	parentIno := make([]int32, n)
	size := make([]int32, len(b.inodes))
	for i := range b.entries {
		e := &b.entries[i]
		if e.Path == "" {
			continue
		}
		parent := ""
		if k := strings.LastIndexByte(e.Path, '/'); k >= 0 {
			parent = e.Path[:k]
		}
		p := b.root
		if parent != "" {
			var ok bool
			if p, ok = byPath[parent]; !ok {
				return invalid("%q: missing parent directory %q", e.Path, parent)
			}
		}
		if b.inodes[b.ino[p]].mode&unix.S_IFMT != unix.S_IFDIR {
			return invalid("%q: parent %q is not a directory", e.Path, parent)
		}
		parentIno[i] = b.ino[p]
		size[b.ino[p]]++
	}
	total = 0
	for k := range b.inodes {
		if b.inodes[k].mode&unix.S_IFMT == unix.S_IFDIR {
			size[k] += 2 // "." and ".."
			total += int(size[k])
		}
	}
	arena := make([]dirent, total)
	for k := range b.inodes {
		b.inodes[k].dirents, arena = arena[:0:size[k]], arena[size[k]:]
	}
	for i := range b.entries {
		e := &b.entries[i]
		if e.Path == "" {
			continue
		}
		dir := &b.inodes[parentIno[i]]
		child := b.ino[i]
		dir.dirents = append(dir.dirents, dirent{name: e.Path[strings.LastIndexByte(e.Path, '/')+1:], ino: child})
		c := &b.inodes[child]
		c.nlink++
		if c.mode&unix.S_IFMT == unix.S_IFDIR {
			dir.nlink++ // the child's ".."
		}
	}
	for k := range b.inodes {
		in := &b.inodes[k]
		if in.mode&unix.S_IFMT == unix.S_IFDIR {
			in.nlink++ // its own "."
		}
	}
	rootIno.nlink++ // the root's name is its own ".."
	return nil
}

// checkPath rejects a path with an empty, ".", ".." or too long component,
// or a NUL byte.
func checkPath(p string) error {
	if p == "" {
		return nil
	}
	if strings.IndexByte(p, 0) >= 0 {
		return invalid("%q: path contains a NUL byte", p)
	}
	for c := range strings.SplitSeq(p, "/") {
		switch {
		case c == "" || c == "." || c == "..":
			return invalid("%q: invalid path component %q", p, c)
		case len(c) > nameMax:
			return invalid("%q: name longer than %d bytes", p, nameMax)
		}
	}
	return nil
}

// checkEntry validates the attributes of an entry that owns an inode and
// returns the size of its xattr body.
func checkEntry(e *Entry) (int, error) {
	if e.Mode&^0xFFFF != 0 {
		return 0, invalid("%q: mode %#o has bits beyond 16", e.Path, e.Mode)
	}
	switch e.Mode & unix.S_IFMT {
	case unix.S_IFDIR, unix.S_IFREG, unix.S_IFIFO, unix.S_IFSOCK:
	case unix.S_IFLNK:
		if e.Target == "" || len(e.Target) > symlinkMax || strings.IndexByte(e.Target, 0) >= 0 {
			return 0, invalid("%q: symlink target must be 1..%d bytes without NUL", e.Path, symlinkMax)
		}
	case unix.S_IFCHR, unix.S_IFBLK:
		if unix.Major(e.Rdev) >= 1<<12 || unix.Minor(e.Rdev) >= 1<<20 {
			return 0, invalid("%q: device %d:%d does not fit 32 bits", e.Path, unix.Major(e.Rdev), unix.Minor(e.Rdev))
		}
	default:
		return 0, invalid("%q: unknown file type in mode %#o", e.Path, e.Mode)
	}
	if e.MtimeNsec >= 1e9 {
		return 0, invalid("%q: mtime nanoseconds %d out of range", e.Path, e.MtimeNsec)
	}
	if e.Size > math.MaxInt64 {
		return 0, invalid("%q: size %d out of range", e.Path, e.Size)
	}
	if len(e.Xattrs) == 0 {
		return 0, nil
	}
	n := xattrHeader
	for k, x := range e.Xattrs {
		if len(x.Name) > nameMax || strings.IndexByte(x.Name, 0) >= 0 {
			return 0, invalid("%q: xattr name %q too long or contains NUL", e.Path, x.Name)
		}
		if len(x.Value) > math.MaxUint16 {
			return 0, invalid("%q: xattr %q value of %d bytes exceeds %d", e.Path, x.Name, len(x.Value), math.MaxUint16)
		}
		_, suffix, ok := splitXattr(x.Name)
		if !ok {
			return 0, invalid("%q: xattr %q has an unknown namespace", e.Path, x.Name)
		}
		for _, prev := range e.Xattrs[:k] {
			if prev.Name == x.Name {
				return 0, invalid("%q: duplicate xattr %q", e.Path, x.Name)
			}
		}
		n += align(4+len(suffix)+len(x.Value), 4)
	}
	if n > xattrHeader+4*(math.MaxUint16-1) {
		return 0, invalid("%q: %d bytes of xattrs exceed the inode's %d", e.Path, n, xattrHeader+4*(math.MaxUint16-1))
	}
	return n, nil
}

// xattrPrefixes are the kernel's predefined name indexes. A prefix that
// ends without a dot is a whole name.
var xattrPrefixes = []struct {
	prefix string
	index  uint8
}{
	{"user.", 1},
	{"system.posix_acl_access", 2},
	{"system.posix_acl_default", 3},
	{"trusted.", 4},
	{"security.", 6},
}

// splitXattr returns the name index of an xattr name and the rest of it.
func splitXattr(name string) (index uint8, suffix string, ok bool) {
	for _, p := range xattrPrefixes {
		suffix, ok := strings.CutPrefix(name, p.prefix)
		if !ok {
			continue
		}
		whole := !strings.HasSuffix(p.prefix, ".")
		if whole && suffix != "" || !whole && suffix == "" {
			continue
		}
		return p.index, suffix, true
	}
	return 0, "", false
}

func align(n, a int) int { return (n + a - 1) &^ (a - 1) }

func fileType(mode uint32) uint8 {
	switch mode & unix.S_IFMT {
	case unix.S_IFREG:
		return ftReg
	case unix.S_IFDIR:
		return ftDir
	case unix.S_IFCHR:
		return ftChr
	case unix.S_IFBLK:
		return ftBlk
	case unix.S_IFIFO:
		return ftFifo
	case unix.S_IFSOCK:
		return ftSock
	case unix.S_IFLNK:
		return ftSymlink
	}
	return 0
}

// layout sizes every inode, orders them breadth first and gives each its
// nid and, for FLAT_PLAIN content, its data blocks.
func (b *builder) layout() error {
	root := b.ino[b.root]
	b.order = make([]int32, 0, len(b.inodes))
	b.order = append(b.order, root)
	b.inodes[root].placed = true
	parent := make([]int32, len(b.inodes)) // directories only
	parent[root] = root
	for k := 0; k < len(b.order); k++ {
		in := &b.inodes[b.order[k]]
		if in.mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		in.dirents = append(in.dirents, dirent{".", b.order[k]}, dirent{"..", parent[b.order[k]]})
		slices.SortFunc(in.dirents, func(x, y dirent) int { return strings.Compare(x.name, y.name) })
		for _, d := range in.dirents {
			c := &b.inodes[d.ino]
			if !c.placed {
				c.placed = true
				parent[d.ino] = b.order[k]
				b.order = append(b.order, d.ino)
			}
		}
	}

	b.chooseEpoch()
	off := superOffset + superSize
	for _, k := range b.order {
		in := &b.inodes[k]
		e := b.entry(in.entry)
		var tail int // bytes after the xattrs
		content := false
		switch in.mode & unix.S_IFMT {
		case unix.S_IFDIR:
			in.splitDir()
			content = true
		case unix.S_IFLNK:
			in.size = uint64(len(e.Target))
			content = true
		case unix.S_IFREG:
			in.size = e.Size
			if in.size == 0 {
				in.layout = layoutFlatPlain
				break
			}
			in.layout = layoutChunked
			in.chunkBits = blockBits
			for in.chunkBits < blockBits+chunkBitsMax && uint64(1)<<in.chunkBits < in.size {
				in.chunkBits++
			}
			in.chunks = int32((in.size-1)>>in.chunkBits) + 1
			tail = int(in.chunks) * blockMapEntry
			b.chunked = true
		}
		in.compact = e.UID <= math.MaxUint16 && e.GID <= math.MaxUint16 && in.nlink <= math.MaxUint16 &&
			in.size <= math.MaxUint32 && e.Mtime == b.epoch && e.MtimeNsec == b.epochNsec
		rec := in.isize() + int(in.xattrs)
		if content {
			if rec+int(in.size) <= blockSize {
				in.layout = layoutFlatInline
				tail = int(in.size)
			} else {
				in.layout = layoutFlatPlain
			}
		}
		rec += tail
		next := rec
		if in.layout == layoutFlatInline {
			if off%blockSize+rec > blockSize {
				off = align(off, blockSize) // inline content must not cross a block
			}
			// Lookups read a block's last name up to a NUL or the block's
			// end; kernels that read an inline directory straight from the
			// metadata block would run into the next inode without this NUL.
			next++
		}
		in.nid = uint64(off) >> slotBits
		off += align(next, 1<<slotBits)
	}

	blk := uint64(align(off, blockSize) / blockSize)
	for _, k := range b.order {
		in := &b.inodes[k]
		if in.layout == layoutFlatPlain && in.size > 0 {
			in.startBlk = uint32(blk)
			blk += (in.size + blockSize - 1) / blockSize
		}
		if blk > maxImageBlocks {
			return invalid("image of more than %d blocks", uint64(maxImageBlocks))
		}
	}
	if b.inodes[root].nid > math.MaxUint16 {
		return fmt.Errorf("erofs: root nid %d does not fit 16 bits", b.inodes[root].nid) // cannot happen: the root is first
	}
	b.blocks = uint32(blk)
	return nil
}

// chooseEpoch picks the mtime most inodes have (the earliest among equals),
// so that most inodes can be compact.
func (b *builder) chooseEpoch() {
	type mtime struct {
		sec  int64
		nsec uint32
	}
	cmpTime := func(x, y mtime) int {
		if c := cmp.Compare(x.sec, y.sec); c != 0 {
			return c
		}
		return cmp.Compare(x.nsec, y.nsec)
	}
	times := make([]mtime, len(b.inodes))
	for k := range b.inodes {
		e := b.entry(b.inodes[k].entry)
		times[k] = mtime{e.Mtime, e.MtimeNsec}
	}
	slices.SortFunc(times, cmpTime)
	best, bestN := mtime{}, 0
	for i := 0; i < len(times); {
		j := i + 1
		for j < len(times) && times[j] == times[i] {
			j++
		}
		if j-i > bestN {
			best, bestN = times[i], j-i
		}
		i = j
	}
	b.epoch, b.epochNsec = best.sec, best.nsec
}

func (in *inode) isize() int {
	if in.compact {
		return compactSize
	}
	return inodeSize
}

// splitDir splits a directory's sorted names into content blocks and sets
// the directory's size.
func (in *inode) splitDir() {
	used := 0
	for i, d := range in.dirents {
		need := direntSize + len(d.name)
		if i == 0 || used+need > blockSize {
			in.blockStart = append(in.blockStart, int32(i))
			used = 0
		}
		used += need
	}
	in.size = uint64(len(in.blockStart)-1)*blockSize + uint64(used)
}

// encode renders the laid-out image.
func (b *builder) encode() []byte {
	img := make([]byte, uint64(b.blocks)*blockSize)
	le := binary.LittleEndian
	for seq, k := range b.order {
		in := &b.inodes[k]
		e := b.entry(in.entry)
		p := img[in.nid<<slotBits:]
		if in.xattrs > 0 {
			le.PutUint16(p[2:], uint16((in.xattrs-xattrHeader)/4+1))
		}
		le.PutUint16(p[4:], uint16(in.mode))
		le.PutUint32(p[20:], uint32(seq+1))
		if in.compact {
			// i_mtime at 12 stays 0: kernels before 6.15 ignore it and take
			// the epoch, later ones add it to the epoch.
			le.PutUint16(p[0:], uint16(in.layout)<<1)
			le.PutUint16(p[6:], uint16(in.nlink))
			le.PutUint32(p[8:], uint32(in.size))
			le.PutUint16(p[24:], uint16(e.UID))
			le.PutUint16(p[26:], uint16(e.GID))
		} else {
			le.PutUint16(p[0:], 1|uint16(in.layout)<<1)
			le.PutUint64(p[8:], in.size)
			le.PutUint32(p[24:], e.UID)
			le.PutUint32(p[28:], e.GID)
			le.PutUint64(p[32:], uint64(e.Mtime))
			le.PutUint32(p[40:], e.MtimeNsec)
			le.PutUint32(p[44:], in.nlink)
		}
		switch {
		case in.layout == layoutChunked:
			le.PutUint16(p[16:], uint16(in.chunkBits-blockBits))
		case in.mode&unix.S_IFMT == unix.S_IFCHR || in.mode&unix.S_IFMT == unix.S_IFBLK:
			le.PutUint32(p[16:], encodeDev(e.Rdev))
		default:
			le.PutUint32(p[16:], in.startBlk)
		}

		q := p[in.isize():]
		if in.xattrs > 0 {
			at := xattrHeader
			for _, x := range e.Xattrs {
				index, suffix, _ := splitXattr(x.Name)
				q[at] = uint8(len(suffix))
				q[at+1] = index
				le.PutUint16(q[at+2:], uint16(len(x.Value)))
				n := copy(q[at+4:], suffix)
				n += copy(q[at+4+n:], x.Value)
				at += align(4+n, 4)
			}
			q = q[in.xattrs:]
		}
		var content []byte
		switch in.layout {
		case layoutChunked:
			for c := range in.chunks {
				le.PutUint32(q[c*blockMapEntry:], nullAddr)
			}
			continue
		case layoutFlatInline:
			content = q[:in.size]
		case layoutFlatPlain:
			if in.size == 0 {
				continue
			}
			start := uint64(in.startBlk) * blockSize
			content = img[start : start+in.size]
		}
		if in.mode&unix.S_IFMT == unix.S_IFDIR {
			b.writeDir(content, in)
		} else {
			copy(content, e.Target)
		}
	}

	sb := img[superOffset:]
	le.PutUint32(sb[0:], superMagic)
	le.PutUint32(sb[8:], featureCompatSBChksum)
	sb[12] = blockBits
	le.PutUint16(sb[14:], uint16(b.inodes[b.ino[b.root]].nid))
	le.PutUint64(sb[16:], uint64(len(b.inodes)))
	le.PutUint64(sb[24:], uint64(b.epoch))
	le.PutUint32(sb[32:], b.epochNsec)
	le.PutUint32(sb[36:], b.blocks)
	// meta_blkaddr and xattr_blkaddr stay 0.
	sum := sha256.Sum256(img[superOffset+superSize:])
	uuid := sb[48:64]
	copy(uuid, sum[:16])
	uuid[6] = uuid[6]&0x0f | 0x80 // RFC 9562 version 8: custom
	uuid[8] = uuid[8]&0x3f | 0x80
	if b.chunked {
		le.PutUint32(sb[80:], featureIncompatChunked)
	}
	// The kernel checks crc32c from the superblock to the end of block 0,
	// seeded with ~0 and not inverted at the end.
	le.PutUint32(sb[4:], ^crc32.Checksum(img[superOffset:blockSize], crc32.MakeTable(crc32.Castagnoli)))
	return img
}

// writeDir fills a directory's content: per block, the dirents then their
// names.
func (b *builder) writeDir(dst []byte, in *inode) {
	le := binary.LittleEndian
	for blk, first := range in.blockStart {
		end := len(in.dirents)
		if blk+1 < len(in.blockStart) {
			end = int(in.blockStart[blk+1])
		}
		p := dst[blk*blockSize:]
		ds := in.dirents[first:end]
		nameoff := len(ds) * direntSize
		for i, d := range ds {
			c := &b.inodes[d.ino]
			le.PutUint64(p[i*direntSize:], c.nid)
			le.PutUint16(p[i*direntSize+8:], uint16(nameoff))
			p[i*direntSize+10] = fileType(c.mode)
			nameoff += copy(p[nameoff:], d.name)
		}
	}
}

// encodeDev is the kernel's new_encode_dev: 12 bits of major, 20 of minor.
func encodeDev(rdev uint64) uint32 {
	major, minor := unix.Major(rdev), unix.Minor(rdev)
	return minor&0xff | major<<8 | (minor&^0xff)<<12
}
