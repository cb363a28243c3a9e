package oci

import (
	"archive/tar"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"hash"
	"io"
	"path"
	"slices"
	"strings"
)

// Errors a caller may want to tell apart.
var (
	// ErrOCIBadLayer marks a layer whose content is not a valid tar stream or
	// does not match its digest.
	ErrOCIBadLayer = errors.New("oci: bad layer")
	// ErrOCIUnsafePath marks an entry that would land outside the root.
	ErrOCIUnsafePath = errors.New("oci: unsafe path in layer")
)

const (
	whiteoutPrefix = ".wh."
	opaqueMarker   = ".wh..wh..opq"
)

// Layer is one uncompressed layer: Open returns a fresh reader of its tar
// stream each time it is called. DiffID, when not empty, is the sha256 of the
// uncompressed stream ("sha256:hex") and is checked on the first read.
type Layer struct {
	Open   func() (io.ReadCloser, error)
	DiffID string
}

// FlattenStats counts what the merged stream holds.
type FlattenStats struct {
	Entries   int   // entries written, directories included
	Files     int   // regular files written
	Bytes     int64 // file content bytes written
	Whiteouts int   // whiteout and opaque markers applied
}

// node is one path of the merged tree during the first pass.
type node struct {
	path     string // cleaned, relative, "." for the root
	hdr      *tar.Header
	layer    int
	seq      int // index of the entry in its layer; -1 for implicit dirs
	children map[string]*node
	link     *node // hard links: the non-link node they share content with
	alive    bool  // reachable in the final tree
	emitted  bool
	holder   *node // for a dead link root: the surviving link that carries its content
	isHolder bool  // this link is written as a regular file at its root's position
}

func (n *node) isDir() bool { return n.children != nil }

type pos struct{ layer, seq int }

type flattener struct {
	root   *node
	byPos  map[pos]*node // surviving non-directory entries by their position
	holder map[pos]*node // dead link roots whose content a holder carries
	tw     *tar.Writer
	stats  FlattenStats
}

// Flatten writes the merged filesystem of layers (lowest first) to w as a
// single tar stream; see the package documentation for the rules. Nothing is
// written to disk. On error the stream written so far is incomplete and the
// caller must discard it.
func Flatten(ctx context.Context, layers []Layer, w io.Writer) (FlattenStats, error) {
	f := &flattener{
		root:   &node{path: ".", hdr: rootHeader(), layer: -1, seq: -1, children: map[string]*node{}},
		byPos:  map[pos]*node{},
		holder: map[pos]*node{},
	}
	for i, l := range layers {
		if err := f.scan(ctx, i, l); err != nil {
			return f.stats, err
		}
	}
	f.resolve()
	f.tw = tar.NewWriter(w)
	if err := f.emitDir(f.root); err != nil {
		return f.stats, err
	}
	for i, l := range layers {
		if err := f.emitLayer(ctx, i, l); err != nil {
			return f.stats, err
		}
	}
	// Directories no layer listed and whose children all went away.
	if err := f.emitRemainingDirs(f.root); err != nil {
		return f.stats, err
	}
	if err := f.tw.Close(); err != nil {
		return f.stats, err
	}
	return f.stats, nil
}

func rootHeader() *tar.Header {
	return &tar.Header{Typeflag: tar.TypeDir, Name: "./", Mode: 0o755}
}

// cleanName turns a tar entry name into a relative clean path, refusing
// anything that climbs out of the root.
func cleanName(name string) (string, error) {
	for _, part := range strings.Split(name, "/") {
		if part == ".." {
			return "", fmt.Errorf("%w: %q", ErrOCIUnsafePath, name)
		}
	}
	p := path.Clean("/" + name)
	if p == "/" {
		return ".", nil
	}
	return p[1:], nil
}

// lookup returns the node at p, or nil.
func (f *flattener) lookup(p string) *node {
	n := f.root
	if p == "." {
		return n
	}
	for _, part := range strings.Split(p, "/") {
		if !n.isDir() {
			return nil
		}
		n = n.children[part]
		if n == nil {
			return nil
		}
	}
	return n
}

// parentDir returns the directory node that holds p, creating missing
// directories (as layer i's) on the way.
func (f *flattener) parentDir(p string, layer int) (*node, error) {
	dir := path.Dir(p)
	n := f.root
	if dir == "." {
		return n, nil
	}
	cur := ""
	for _, part := range strings.Split(dir, "/") {
		cur = path.Join(cur, part)
		c := n.children[part]
		if c == nil {
			c = &node{path: cur, layer: layer, seq: -1, children: map[string]*node{},
				hdr: &tar.Header{Typeflag: tar.TypeDir, Name: cur + "/", Mode: 0o755}}
			n.children[part] = c
		} else if !c.isDir() {
			return nil, fmt.Errorf("%w: %q: parent %q is not a directory", ErrOCIBadLayer, p, cur)
		}
		n = c
	}
	return n, nil
}

// scan is the first pass over layer i: headers only, building the tree.
func (f *flattener) scan(ctx context.Context, i int, l Layer) error {
	rc, err := l.Open()
	if err != nil {
		return fmt.Errorf("%w %d: open: %w", ErrOCIBadLayer, i, err)
	}
	defer rc.Close()
	// Without a diff_id to check (spooled layers were checked when they
	// were decompressed), the tar reader gets the file itself: it seeks
	// over file contents instead of reading and hashing them.
	var h hash.Hash
	src := io.Reader(rc)
	if l.DiffID != "" {
		h = sha256.New()
		src = io.TeeReader(rc, h)
	}
	tr := tar.NewReader(src)
	var opaque []*node
	for seq := 0; ; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("%w %d: entry %d: %w", ErrOCIBadLayer, i, seq, err)
		}
		p, err := cleanName(hdr.Name)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		base := path.Base(p)
		switch {
		case base == opaqueMarker:
			f.stats.Whiteouts++
			d := f.lookup(path.Dir(p))
			if d != nil && d.isDir() {
				opaque = append(opaque, d)
			}
			continue
		case strings.HasPrefix(base, whiteoutPrefix):
			f.stats.Whiteouts++
			target := path.Join(path.Dir(p), base[len(whiteoutPrefix):])
			if parent := f.lookup(path.Dir(target)); parent != nil && parent.isDir() {
				delete(parent.children, path.Base(target))
			}
			continue
		}
		if p == "." {
			if hdr.Typeflag != tar.TypeDir {
				return fmt.Errorf("%w %d: the root is not a directory", ErrOCIBadLayer, i)
			}
			f.root.hdr, f.root.layer = hdr, i
			continue
		}
		parent, err := f.parentDir(p, i)
		if err != nil {
			return fmt.Errorf("layer %d: %w", i, err)
		}
		name := path.Base(p)
		old := parent.children[name]
		if hdr.Typeflag == tar.TypeDir {
			if old != nil && old.isDir() {
				old.hdr, old.layer, old.seq = hdr, i, seq
				continue
			}
			parent.children[name] = &node{path: p, hdr: hdr, layer: i, seq: seq, children: map[string]*node{}}
			continue
		}
		n := &node{path: p, hdr: hdr, layer: i, seq: seq}
		if hdr.Typeflag == tar.TypeLink {
			tp, err := cleanName(hdr.Linkname)
			if err != nil {
				return fmt.Errorf("layer %d: hard link %q: %w", i, p, err)
			}
			t := f.lookup(tp)
			if t == nil || t.isDir() {
				return fmt.Errorf("%w %d: hard link %q points to missing %q", ErrOCIBadLayer, i, p, tp)
			}
			if t.link != nil {
				t = t.link
			}
			n.link = t
		}
		parent.children[name] = n
	}
	if h != nil {
		// Drain what the tar reader left (padding, trailing data) so the
		// digest covers the whole stream.
		if _, err := io.Copy(io.Discard, src); err != nil {
			return fmt.Errorf("%w %d: %w", ErrOCIBadLayer, i, err)
		}
		got := "sha256:" + hex.EncodeToString(h.Sum(nil))
		if got != l.DiffID {
			return fmt.Errorf("%w %d: uncompressed digest %s, image says %s", ErrOCIBadLayer, i, got, l.DiffID)
		}
	}
	for _, d := range opaque {
		prune(d, i)
	}
	return nil
}

// prune removes from directory d everything lower layers than i put there,
// keeping directories that still hold entries of layer i.
func prune(d *node, i int) {
	for name, c := range d.children {
		if c.isDir() {
			prune(c, i)
			if c.layer < i && len(c.children) == 0 {
				delete(d.children, name)
			}
			continue
		}
		if c.layer < i {
			delete(d.children, name)
		}
	}
}

// resolve marks the final tree and decides how hard links are written.
func (f *flattener) resolve() {
	var links []*node
	var walk func(n *node)
	walk = func(n *node) {
		n.alive = true
		if !n.isDir() {
			f.byPos[pos{n.layer, n.seq}] = n
			if n.link != nil {
				links = append(links, n)
			}
			return
		}
		for _, c := range n.children {
			walk(c)
		}
	}
	walk(f.root)
	// In stream order, so the holder is the first surviving link.
	slices.SortFunc(links, func(a, b *node) int {
		if a.layer != b.layer {
			return a.layer - b.layer
		}
		return a.seq - b.seq
	})
	for _, n := range links {
		r := n.link
		if r.alive {
			continue
		}
		if r.holder == nil {
			r.holder = n
			n.isHolder = true
			f.holder[pos{r.layer, r.seq}] = r
		}
	}
}

// emitLayer is the second pass over layer i: it writes surviving entries.
func (f *flattener) emitLayer(ctx context.Context, i int, l Layer) error {
	rc, err := l.Open()
	if err != nil {
		return fmt.Errorf("%w %d: open: %w", ErrOCIBadLayer, i, err)
	}
	defer rc.Close()
	tr := tar.NewReader(rc)
	for seq := 0; ; seq++ {
		if err := ctx.Err(); err != nil {
			return err
		}
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%w %d: entry %d: %w", ErrOCIBadLayer, i, seq, err)
		}
		if hdr.Typeflag == tar.TypeDir {
			p, err := cleanName(hdr.Name)
			if err != nil {
				return err
			}
			if n := f.lookup(p); n != nil && n.isDir() {
				if err := f.emitParents(n.path); err != nil {
					return err
				}
				if err := f.emitDir(n); err != nil {
					return err
				}
			}
			continue
		}
		at := pos{i, seq}
		if r := f.holder[at]; r != nil {
			// The content of a replaced link target, written under the name
			// of its first surviving link.
			if err := f.emitFile(r.holder.path, r.hdr, tr); err != nil {
				return err
			}
			r.holder.emitted = true
			continue
		}
		n := f.byPos[at]
		if n == nil || n.emitted {
			continue
		}
		if n.link != nil {
			target := n.link.path
			if !n.link.alive {
				target = n.link.holder.path
			}
			h := *n.hdr
			h.Linkname = target
			if err := f.emitFile(n.path, &h, nil); err != nil {
				return err
			}
			n.emitted = true
			continue
		}
		if err := f.emitFile(n.path, n.hdr, tr); err != nil {
			return err
		}
		n.emitted = true
	}
}

// emitParents writes the directories above p that are not written yet.
func (f *flattener) emitParents(p string) error {
	dir := path.Dir(p)
	if dir == "." {
		return nil
	}
	n := f.root
	for _, part := range strings.Split(dir, "/") {
		n = n.children[part]
		if n == nil || !n.isDir() {
			return fmt.Errorf("oci: internal error: parent of %q missing", p)
		}
		if err := f.emitDir(n); err != nil {
			return err
		}
	}
	return nil
}

func (f *flattener) emitDir(n *node) error {
	if n.emitted {
		return nil
	}
	h := *n.hdr
	h.Name = n.path + "/"
	if n.path == "." {
		h.Name = "./"
	}
	h.Typeflag = tar.TypeDir
	h.Size = 0
	h.Format = tar.FormatPAX
	if err := f.tw.WriteHeader(&h); err != nil {
		return err
	}
	n.emitted = true
	f.stats.Entries++
	return nil
}

// emitFile writes a non-directory entry named p with the header hdr and, for
// regular files, the content read from r.
func (f *flattener) emitFile(p string, hdr *tar.Header, r io.Reader) error {
	if err := f.emitParents(p); err != nil {
		return err
	}
	h := *hdr
	h.Name = p
	h.Format = tar.FormatPAX
	if h.Typeflag == tar.TypeLink {
		h.Size = 0
	}
	if h.Typeflag == tar.TypeReg || h.Typeflag == tar.TypeRegA {
		h.Typeflag = tar.TypeReg
	} else if h.Typeflag != tar.TypeLink {
		h.Size = 0
	}
	if err := f.tw.WriteHeader(&h); err != nil {
		return err
	}
	f.stats.Entries++
	if h.Typeflag == tar.TypeReg {
		f.stats.Files++
		if h.Size > 0 {
			n, err := io.CopyN(f.tw, r, h.Size)
			f.stats.Bytes += n
			if err != nil {
				return fmt.Errorf("%w: %q: %w", ErrOCIBadLayer, p, err)
			}
		}
	}
	return nil
}

func (f *flattener) emitRemainingDirs(n *node) error {
	if !n.isDir() {
		return nil
	}
	if err := f.emitDir(n); err != nil {
		return err
	}
	names := make([]string, 0, len(n.children))
	for name := range n.children {
		names = append(names, name)
	}
	slices.Sort(names)
	for _, name := range names {
		if err := f.emitRemainingDirs(n.children[name]); err != nil {
			return err
		}
	}
	return nil
}
