// Package regfile opens and reads regular files with fewer system calls
// than package os. os.Open and os.OpenFile hand every descriptor to the
// network poller, which refuses regular files, and toggle its blocking mode
// around that attempt: four wasted system calls per file, and os.ReadFile
// adds a read that only finds the end of the file. On the block paths of
// flists (one store file read and one cache file written per 512 KiB block,
// often per small file) those calls are a measurable part of the cost, more
// so in virtual machines where every system call traps.
//
// May import: the standard library and golang.org/x/sys/unix.
// Must never be imported by: nothing restricted (it is shared, leaf code).
package regfile
