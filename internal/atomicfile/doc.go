// Package atomicfile replaces small state files (JSON records, descriptors,
// progress markers) so that a reader, or the next start after a crash, sees
// either the old content or the new, never a torn mix: the bytes go to a
// fresh temporary file in the same directory, are flushed to disk, and the
// temporary file is renamed over the old one.
//
// May import: the standard library only.
// Must never be imported by: nothing restricted (it is shared, leaf code).
package atomicfile
