package startmap

import (
	"syscall"
	"testing"
	"unsafe"
)

// kept holds the test's allocations on the heap.
var kept [][]byte

// TestPopulate checks that the pages the allocator hands out after
// populate are already mapped: a fresh object's pages are resident before
// anything touches them, where one allocated just before was not.
func TestPopulate(t *testing.T) {
	resident := func(b []byte) int {
		vec := make([]byte, len(b)/pageSize)
		p := uintptr(unsafe.Pointer(unsafe.SliceData(b)))
		if _, _, e := syscall.Syscall(syscall.SYS_MINCORE, p, uintptr(len(b)), uintptr(unsafe.Pointer(&vec[0]))); e != 0 {
			t.Fatalf("mincore: %v", e)
		}
		n := 0
		for _, r := range vec {
			n += int(r & 1)
		}
		return n
	}
	alloc := func() []byte {
		kept = append(kept, make([]byte, 64<<10))
		return kept[len(kept)-1]
	}
	// Allocate past what the test binary's start left mapped.
	for resident(alloc()) != 0 {
		if len(kept) > 256 {
			t.Fatal("no unmapped heap pages after 16 MB of allocations")
		}
	}
	populate(1 << 20)
	if n := resident(alloc()); n != 64<<10/pageSize {
		t.Errorf("%d of %d pages of a fresh object mapped after populate", n, 64<<10/pageSize)
	}
	kept = nil
}
