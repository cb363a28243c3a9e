package erofs

import (
	"fmt"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestInlineDirectoryEndsWithNUL: the kernel's lookup reads the last name of
// a directory block up to a NUL or the block's end. 6.18 reads directories
// through the page cache, which zero-fills after an inline tail, but a
// kernel that reads the metadata block itself would see the next inode's
// first byte as part of the name. Each directory here ends on a slot
// boundary: compact inode (32) + 3 dirents (36) + ".", ".." and 25 bytes.
func TestInlineDirectoryEndsWithNUL(t *testing.T) {
	entries := []Entry{{Path: "", Mode: unix.S_IFDIR | 0o755}}
	for i := range 10 {
		d := fmt.Sprintf("d%d", i)
		entries = append(entries, Entry{Path: d, Mode: unix.S_IFDIR | 0o755},
			Entry{Path: d + "/" + strings.Repeat("n", 25), Mode: unix.S_IFREG | 0o644, Size: 1})
	}
	b := &builder{entries: entries}
	if err := b.build(); err != nil {
		t.Fatal(err)
	}
	if err := b.layout(); err != nil {
		t.Fatal(err)
	}
	img := b.encode()
	checked := 0
	for _, in := range b.inodes {
		if in.layout != layoutFlatInline || in.mode&unix.S_IFMT != unix.S_IFDIR {
			continue
		}
		end := in.nid<<slotBits + uint64(in.isize()) + uint64(in.xattrs) + in.size
		if end%blockSize != 0 && img[end] != 0 {
			t.Errorf("directory at nid %d: byte %#x right after its inline content, want NUL", in.nid, img[end])
		}
		checked++
	}
	if checked != 11 {
		t.Errorf("checked %d inline directories, want 11", checked)
	}
}
