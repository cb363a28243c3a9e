package erofs_test

import (
	"bytes"
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/zosgrid/zos/internal/erofs"
)

// A metadata-only image whose file reads its bytes, through overlayfs, from
// the cache file "/ab/cdef" of a data-only layer:
//
//	mount -t erofs -o ro image /lower
//	mount -t overlay overlay -o ro,metacopy=on,redirect_dir=on,lowerdir=/lower::/cache /target
func ExampleWrite() {
	var img bytes.Buffer
	err := erofs.Write(&img, []erofs.Entry{
		{Path: "", Mode: unix.S_IFDIR | 0o755},
		{Path: "etc", Mode: unix.S_IFDIR | 0o755},
		{Path: "etc/hosts", Mode: unix.S_IFREG | 0o644, Size: 158, Mtime: 1700000000, Xattrs: []erofs.Xattr{
			{Name: "trusted.overlay.metacopy"},
			{Name: "trusted.overlay.redirect", Value: []byte("/ab/cdef")},
		}},
	})
	fmt.Println(img.Len(), err)
	// Output: 4096 <nil>
}
