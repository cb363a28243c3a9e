package startmap

/*
#define _GNU_SOURCE
#include <link.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/prctl.h>

#ifndef MADV_POPULATE_READ
#define MADV_POPULATE_READ 22
#endif
#ifndef MADV_POPULATE_WRITE
#define MADV_POPULATE_WRITE 23
#endif

#define ZOS_PAGE 4096UL
#define ZOS_DOWN(a) ((a) & ~(ZOS_PAGE - 1))
#define ZOS_UP(a) ZOS_DOWN((a) + ZOS_PAGE - 1)

// zos_startmap_segments applies *(int *)arg to the main program's
// read-only loaded segments (text, rodata): MADV_POPULATE_READ maps them
// from the page cache, MADV_DONTNEED drops their page table entries again
// (the pages stay cached and fault in when used). When populating, the
// file-backed part of the writable segment (.data, past RELRO, which is
// read-only by now) is also mapped, as private copies; it is never dropped,
// which would lose them. Errors are ignored: pages then fault as usual.
static int zos_startmap_segments(struct dl_phdr_info *info, size_t size, void *arg) {
	int advice = *(int *)arg;
	unsigned long relro = 0;
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type == PT_GNU_RELRO)
			relro = info->dlpi_addr + p->p_vaddr + p->p_memsz;
	}
	for (int i = 0; i < info->dlpi_phnum; i++) {
		const ElfW(Phdr) *p = &info->dlpi_phdr[i];
		if (p->p_type != PT_LOAD)
			continue;
		unsigned long start = info->dlpi_addr + p->p_vaddr;
		if (!(p->p_flags & PF_W)) {
			unsigned long end = ZOS_UP(start + p->p_memsz);
			madvise((void *)ZOS_DOWN(start), end - ZOS_DOWN(start), advice);
			continue;
		}
		if (advice != MADV_POPULATE_READ)
			continue;
		unsigned long end = ZOS_UP(start + p->p_filesz);
		if (relro > start)
			start = relro;
		start = ZOS_UP(start);
		if (end > start)
			madvise((void *)start, end - start, MADV_POPULATE_WRITE);
	}
	return 1; // the first object is the main program: stop there
}

static void zos_startmap(void) {
	int advice = MADV_POPULATE_READ;
	dl_iterate_phdr(zos_startmap_segments, &advice);
}

static void zos_startmap_release(void) {
	int advice = MADV_DONTNEED;
	dl_iterate_phdr(zos_startmap_segments, &advice);
}

// zos_startmap_done says whether the constructor mapped the segments.
static int zos_startmap_done;

__attribute__((constructor)) static void zos_startmap_early(void) {
	// In libcontainer's re-executed init, nsenter's constructor clones the
	// process into the one that goes on (named runc:[2:INIT]); a child does
	// not inherit the page table entries of file mappings. Constructors run
	// in link order: before nsenter's, leave it to the Go init below.
	if (getenv("_LIBCONTAINER_INITPIPE")) {
		char name[17] = {0};
		if (prctl(PR_GET_NAME, name, 0, 0, 0) != 0 || strcmp(name, "runc:[2:INIT]") != 0)
			return;
	}
	zos_startmap();
	zos_startmap_done = 1;
}

static int zos_startmap_mapped(void) { return zos_startmap_done; }
*/
import "C"

import (
	"syscall"
	"time"
)

// releaseAfter is when a process still running gives back the mappings it
// did not use: past its start, a long-running zos (a zdb server, a
// container's supervisor, an flist mount) shows in RSS the pages it uses,
// not the whole binary.
const releaseAfter = 2 * time.Second

func init() {
	populate(ahead) // first: the heap the package inits are about to touch
	if C.zos_startmap_mapped() == 0 {
		if _, ok := syscall.Getenv("_LIBCONTAINER_INITPIPE"); ok {
			C.zos_startmap()
		}
	}
	time.AfterFunc(releaseAfter, func() { C.zos_startmap_release() })
}
