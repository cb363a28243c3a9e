package main

import (
	"archive/tar"
	"bufio"
	"crypto/rand"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

var (
	src     = flag.String("src", "/usr", "tree to pack and read")
	quick   = flag.Bool("quick", false, "small sizes, to validate the benchmark")
	workDir = flag.String("work", "", "scratch directory (default: a temp dir, removed at the end)")
	readers = flag.Int("readers", 4, "parallel readers for the read benchmarks")
	mntArgs = flag.String("mount-args", "", "extra arguments for zos flist mount (space separated), to compare settings")
)

type row struct{ what, zos, base, ratio string }

func main() {
	flag.Parse()
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/flist:", err)
		os.Exit(1)
	}
}

func zosBin() string {
	if b := os.Getenv("ZOS_BIN"); b != "" {
		return b
	}
	return "bin/zos"
}

func sh(name string, args ...string) error {
	cmd := exec.Command(name, args...)
	var errb strings.Builder
	cmd.Stderr = &errb
	cmd.Stdout = io.Discard
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("%s %s: %v: %s", name, strings.Join(args, " "), err, errb.String())
	}
	return nil
}

func timed(f func() error) (time.Duration, error) {
	t := time.Now()
	err := f()
	return time.Since(t), err
}

func mibps(bytes int64, d time.Duration) float64 { return float64(bytes) / (1 << 20) / d.Seconds() }

func run() error {
	if os.Geteuid() != 0 {
		return errors.New("needs root (FUSE mounts)")
	}
	zos := zosBin()
	if _, err := os.Stat(zos); err != nil {
		return fmt.Errorf("zos binary: %w (run make build or set ZOS_BIN)", err)
	}
	w := *workDir
	if w == "" {
		d, err := os.MkdirTemp("", "bench-flist-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(d)
		w = d
	}
	bigSize := int64(100 << 20)
	if *quick {
		bigSize = 16 << 20
	}
	var rows []row
	srcBytes, srcFiles, err := treeSize(*src)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "source %s: %d files, %.1f MiB\n", *src, srcFiles, float64(srcBytes)/(1<<20))

	// 1. Pack vs tar | zstd.
	store := "dir://" + filepath.Join(w, "store")
	fl := filepath.Join(w, "a.fl")
	dPack, err := timed(func() error { return sh(zos, "flist", "pack", *src, "-o", fl, "--store", store) })
	if err != nil {
		return err
	}
	zst := filepath.Join(w, "a.tar.zst")
	dTar, err := timed(func() error {
		return sh("sh", "-c", fmt.Sprintf("tar -C %q -cf - . 2>/dev/null | zstd -q -T0 -3 -o %q", *src, zst))
	})
	if err != nil {
		return err
	}
	storeA, _, _ := treeSize(filepath.Join(w, "store"))
	zstSize := fileSize(zst)
	rows = append(rows, row{"pack " + *src + " (MiB/s of content)", f1(mibps(srcBytes, dPack)), f1(mibps(srcBytes, dTar)) + " (tar -c \\| zstd -3 -T0)", ratio(mibps(srcBytes, dPack), mibps(srcBytes, dTar))})
	rows = append(rows, row{"stored size (MiB)", f1(mb(storeA)), f1(mb(zstSize)) + " (tar.zst)", ratio(float64(storeA), float64(zstSize))})

	// 2. Reads, each zos row next to its local-disk baseline taken under the
	// same conditions (and the same machine noise):
	//   cold: kernel caches dropped, empty block cache   vs local, caches dropped
	//   hot:  same mount read again (page cache full)    vs local read again
	//   warm: block cache full, caches dropped, same mount, then after a
	//         remount (cached files trusted on record)   vs local, caches dropped
	// and the old "warm" row (remounted, read again), which is hot after a
	// remount. The FUSE requests of each zos row are counted (SIGUSR1 stats of
	// the mount process) and printed in a second table.
	if err := dropCaches(); err != nil {
		return err
	}
	dLocalCold, n, err := readTree(*src)
	if err != nil {
		return err
	}
	dLocal, _, err := readTree(*src)
	if err != nil {
		return err
	}
	localCold, local := mibps(n, dLocalCold), mibps(n, dLocal)
	if err := dropCaches(); err != nil {
		return err
	}
	dStore, nStore, err := readTree(filepath.Join(w, "store"))
	if err != nil {
		return err
	}
	storeRate := mibps(nStore, dStore) * float64(n) / float64(nStore) // content MiB/s the store delivers
	cache := filepath.Join(w, "cache")
	mp := filepath.Join(w, "mp")
	var phases []phase
	// measure reads the mounted tree once and records its requests.
	measure := func(m *mounted, name string, drop bool) (float64, error) {
		if drop {
			if err := dropCaches(); err != nil {
				return 0, err
			}
		}
		before := m.stats()
		d, got, err := readTree(mp)
		if err != nil {
			return 0, err
		}
		if got != n {
			return 0, fmt.Errorf("%s: mounted tree has %d bytes, source %d", name, got, n)
		}
		phases = append(phases, phase{name, m.stats().minus(before)})
		return mibps(n, d), nil
	}
	m, err := mountFlist(zos, fl, mp, cache, "--kernel=false")
	if err != nil {
		return err
	}
	cold, err := measure(m, "cold", true)
	var hot, warmSame float64
	if err == nil {
		// Multi-block files may be assembled into whole-file cache
		// entries during this read (see flist/mount).
		hot, err = measure(m, "hot (same mount)", false)
	}
	if err == nil {
		warmSame, err = measure(m, "warm (same mount, caches dropped)", true)
	}
	m.stop()
	if err != nil {
		return err
	}
	// A new mount process trusts the cached files verified earlier on their
	// verification records (flist/mount), re-hashing only the others. First
	// served by the FUSE daemon, then by the kernel (every file is cached:
	// overlayfs over an EROFS image of the metadata, see flist/mount).
	// remount mounts the flist again with extra flags, times it, and reads
	// the tree warm (caches dropped), then hot; beforeRead runs once mounted.
	remount := func(label string, beforeRead func() error, extra ...string) (dMount time.Duration, warm, hot float64, err error) {
		dMount, err = timed(func() (err error) { m, err = mountFlist(zos, fl, mp, cache, extra...); return err })
		if err != nil {
			return 0, 0, 0, err
		}
		defer m.stop()
		if err = beforeRead(); err != nil {
			return 0, 0, 0, err
		}
		if warm, err = measure(m, "warm"+label+" (caches dropped)", true); err != nil {
			return 0, 0, 0, err
		}
		hot, err = measure(m, "hot"+label, false)
		return dMount, warm, hot, err
	}
	var localCold2 float64
	dMountFuse, warmRemount, hotRemount, err := remount(" after remount", func() error {
		d, _, err := timedDropped(*src)
		localCold2 = mibps(n, d)
		return err
	}, "--kernel=false")
	if err != nil {
		return err
	}
	dMountKernel, warmKernel, hotKernel, err := remount(", kernel mount", func() error { return nil }, "--kernel=true")
	if err != nil {
		return err
	}
	rows = append(rows,
		row{"read whole tree, cold (caches dropped, empty block cache), MiB/s", f1(cold), f1(localCold) + " (local disk, caches dropped)", ratio(cold, localCold)},
		row{"  same, against reading the store's files (caches dropped), MiB/s", f1(cold), f1(storeRate) + " (store files, content-equivalent rate)", ratio(cold, storeRate)},
		row{"read whole tree, hot (same mount again), MiB/s", f1(hot), f1(local) + " (local disk, read again)", ratio(hot, local)},
		row{"read whole tree, warm (block cache full, caches dropped, same FUSE mount), MiB/s", f1(warmSame), f1(localCold2) + " (local disk, caches dropped)", ratio(warmSame, localCold2)},
		row{"read whole tree, warm after remount, FUSE (caches dropped, cached files trusted on their verification records), MiB/s", f1(warmRemount), f1(localCold2) + " (local disk, caches dropped)", ratio(warmRemount, localCold2)},
		row{"read whole tree, hot after remount, FUSE (read again), MiB/s", f1(hotRemount), f1(local) + " (local disk, read again)", ratio(hotRemount, local)},
		row{"read whole tree, warm after remount, kernel mount (every file cached; caches dropped), MiB/s", f1(warmKernel), f1(localCold2) + " (local disk, caches dropped)", ratio(warmKernel, localCold2)},
		row{"read whole tree, hot after remount, kernel mount (read again), MiB/s", f1(hotKernel), f1(local) + " (local disk, read again)", ratio(hotKernel, local)},
		row{"remount of the cached flist, process start to mounted, s: kernel mount vs FUSE", f2(dMountKernel.Seconds()), f2(dMountFuse.Seconds()) + " (FUSE)", ratio(dMountFuse.Seconds(), dMountKernel.Seconds())},
	)

	// 3. Time to first byte of a big file vs unpacking everything.
	bigSrc := filepath.Join(w, "big-src")
	if err := makeBigTree(bigSrc, bigSize); err != nil {
		return err
	}
	bigFl := filepath.Join(w, "big.fl")
	if err := sh(zos, "flist", "pack", bigSrc, "-o", bigFl, "--store", store); err != nil {
		return err
	}
	cache2 := filepath.Join(w, "cache2")
	var ttfb time.Duration
	if err := dropCaches(); err != nil {
		return err
	}
	t0 := time.Now()
	m, err = mountFlist(zos, bigFl, mp, cache2)
	if err != nil {
		return err
	}
	f, err := os.Open(filepath.Join(mp, "big.bin"))
	if err == nil {
		_, err = f.Read(make([]byte, 1))
		ttfb = time.Since(t0)
		f.Close()
	}
	m.stop()
	if err != nil {
		return err
	}
	if err := dropCaches(); err != nil {
		return err
	}
	dUnpack, err := timed(func() error {
		return sh(zos, "flist", "unpack", bigFl, filepath.Join(w, "unpacked"), "--insecure")
	})
	if err != nil {
		return err
	}
	rows = append(rows, row{fmt.Sprintf("first byte of a %d MiB file (mount+open+read), ms", bigSize>>20), ms(ttfb), ms(dUnpack) + " (unpack whole tree first)", ratio(dUnpack.Seconds(), ttfb.Seconds()) + " faster"})

	// 4. Dedup: a second tree sharing most files.
	before, _, _ := treeSize(filepath.Join(w, "store"))
	var changed int
	dB, err := timed(func() error {
		var err error
		changed, err = packVariant(zos, *src, filepath.Join(w, "b.fl"), store)
		return err
	})
	if err != nil {
		return err
	}
	after, _, _ := treeSize(filepath.Join(w, "store"))
	growth := after - before
	rows = append(rows, row{fmt.Sprintf("store growth for a second tree (%d of %d files changed), MiB", changed, srcFiles), f1(mb(growth)), f1(mb(zstSize)) + " (its tar.zst)", fmt.Sprintf("%.1f%% of a full copy", 100*float64(growth)/float64(zstSize))})
	_ = dB

	fmt.Println("| benchmark | zos | baseline | zos / baseline |")
	fmt.Println("| --- | --- | --- | --- |")
	for _, r := range rows {
		fmt.Printf("| %s | %s | %s | %s |\n", r.what, r.zos, r.base, r.ratio)
	}
	fmt.Printf("\nFUSE requests served by the daemon per read of the whole tree (%d files, %.1f MiB):\n\n", srcFiles, mb(n))
	fmt.Println("| read | lookup (incl. READDIRPLUS entries) | getattr | open | of which passthrough | read | read MiB | release | files stored ahead in the page cache (MiB) | block fetches | cache hits | cache files re-hashed / trusted on record |")
	fmt.Println("| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |")
	for _, p := range phases {
		if p.s == nil {
			fmt.Printf("| %s | n/a (mount process prints no stats) |\n", p.name)
			continue
		}
		o, c := p.s.Ops, p.s.Cache
		fmt.Printf("| %s | %d | %d | %d | %d | %d | %.1f | %d | %d (%.1f) | %d | %d | %d / %d |\n", p.name, o.Lookup, o.Getattr, o.Open, o.OpenPassthrough, o.Read, mb(o.ReadBytes), o.Release, o.Stored, mb(o.StoredBytes), c.Misses, c.Hits, c.Rehashed, c.Trusted)
	}
	return nil
}

// timedDropped reads dir after dropping the kernel's caches.
func timedDropped(dir string) (time.Duration, int64, error) {
	if err := dropCaches(); err != nil {
		return 0, 0, err
	}
	return readTree(dir)
}

// mountStats is the "stats" line of zos flist mount (on SIGUSR1).
type mountStats struct {
	Ops struct {
		Lookup, Getattr, Open, Read, Release int64
		OpenPassthrough                      int64 `json:"open_passthrough"`
		ReadBytes                            int64 `json:"read_bytes"`
		Stored                               int64
		StoredBytes                          int64 `json:"stored_bytes"`
	}
	Cache struct{ Hits, Misses, Rehashed, Trusted int64 }
}

func (s *mountStats) minus(b *mountStats) *mountStats {
	if s == nil || b == nil {
		return nil
	}
	d := *s
	d.Ops.Lookup -= b.Ops.Lookup
	d.Ops.Getattr -= b.Ops.Getattr
	d.Ops.Open -= b.Ops.Open
	d.Ops.OpenPassthrough -= b.Ops.OpenPassthrough
	d.Ops.Read -= b.Ops.Read
	d.Ops.ReadBytes -= b.Ops.ReadBytes
	d.Ops.Release -= b.Ops.Release
	d.Ops.Stored -= b.Ops.Stored
	d.Ops.StoredBytes -= b.Ops.StoredBytes
	d.Cache.Hits -= b.Cache.Hits
	d.Cache.Misses -= b.Cache.Misses
	d.Cache.Rehashed -= b.Cache.Rehashed
	d.Cache.Trusted -= b.Cache.Trusted
	return &d
}

type phase struct {
	name string
	s    *mountStats
}

func f1(v float64) string       { return fmt.Sprintf("%.1f", v) }
func f2(v float64) string       { return fmt.Sprintf("%.2f", v) }
func mb(n int64) float64        { return float64(n) / (1 << 20) }
func ms(d time.Duration) string { return fmt.Sprintf("%.0f", float64(d.Microseconds())/1000) }
func ratio(a, b float64) string { return fmt.Sprintf("%.2f", a/b) }
func fileSize(p string) int64   { st, _ := os.Stat(p); return st.Size() }

// treeSize sums regular file sizes.
func treeSize(dir string) (int64, int, error) {
	var n int64
	var files int
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil // unreadable entries are skipped by every side alike
		}
		if d.Type().IsRegular() {
			if info, err := d.Info(); err == nil {
				n += info.Size()
				files++
			}
		}
		return nil
	})
	return n, files, err
}

// readTree reads every regular file with parallel readers.
func readTree(dir string) (time.Duration, int64, error) {
	paths := make(chan string, 1024)
	var total atomic.Int64
	var firstErr error
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for range *readers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			buf := make([]byte, 1<<20)
			for p := range paths {
				f, err := os.Open(p)
				if err != nil {
					mu.Lock()
					firstErr = errors.Join(firstErr, err)
					mu.Unlock()
					continue
				}
				for {
					n, err := f.Read(buf)
					total.Add(int64(n))
					if err != nil {
						if err != io.EOF {
							mu.Lock()
							firstErr = errors.Join(firstErr, err)
							mu.Unlock()
						}
						break
					}
				}
				f.Close()
			}
		}()
	}
	filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			paths <- p
		}
		return nil
	})
	close(paths)
	wg.Wait()
	return time.Since(start), total.Load(), firstErr
}

// mounted is a running zos flist mount process.
type mounted struct {
	cmd   *exec.Cmd
	lines chan string // "stats" lines of its stdout
}

// mountFlist starts `zos flist mount` and waits until it is mounted.
func mountFlist(zos, fl, mp, cache string, extra ...string) (*mounted, error) {
	os.MkdirAll(mp, 0o755)
	args := []string{"flist", "mount", fl, mp, "--insecure", "--cache", cache, "--cache-size", "100G"}
	args = append(args, extra...)
	args = append(args, strings.Fields(*mntArgs)...)
	cmd := exec.Command(zos, args...)
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = io.Discard
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	r := bufio.NewReader(out)
	line, err := r.ReadString('\n')
	if err != nil || !strings.HasPrefix(line, "mounted") {
		cmd.Process.Kill()
		cmd.Wait()
		return nil, fmt.Errorf("mount did not start: %q %v", line, err)
	}
	m := &mounted{cmd: cmd, lines: make(chan string, 16)}
	go func() {
		for {
			line, err := r.ReadString('\n')
			if strings.HasPrefix(line, "stats ") {
				m.lines <- strings.TrimPrefix(line, "stats ")
			}
			if err != nil {
				close(m.lines)
				return
			}
		}
	}()
	return m, nil
}

// stats asks the mount process for its counters; nil if it prints none
// (an older zos).
func (m *mounted) stats() *mountStats {
	if err := m.cmd.Process.Signal(syscall.SIGUSR1); err != nil {
		return nil
	}
	select {
	case line, ok := <-m.lines:
		var s mountStats
		if !ok || json.Unmarshal([]byte(line), &s) != nil {
			return nil
		}
		return &s
	case <-time.After(2 * time.Second):
		return nil
	}
}

func (m *mounted) stop() {
	m.cmd.Process.Signal(os.Interrupt)
	m.cmd.Wait()
}

// dropCaches writes dirty pages back and drops the kernel's page, dentry
// and inode caches, so that the next read comes from disk.
func dropCaches() error {
	if err := sh("sync"); err != nil {
		return err
	}
	if err := os.WriteFile("/proc/sys/vm/drop_caches", []byte("3\n"), 0o200); err != nil {
		return fmt.Errorf("drop caches: %w", err)
	}
	return nil
}

func makeBigTree(dir string, size int64) error {
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		return err
	}
	f, err := os.Create(filepath.Join(dir, "big.bin"))
	if err != nil {
		return err
	}
	if _, err := io.CopyN(f, rand.Reader, size); err != nil {
		f.Close()
		return err
	}
	if err := f.Close(); err != nil {
		return err
	}
	for i := range 200 {
		if err := os.WriteFile(filepath.Join(dir, "etc", fmt.Sprintf("f%03d", i)), []byte(strings.Repeat("config ", i+1)), 0o644); err != nil {
			return err
		}
	}
	return nil
}

// packVariant packs, as a tar stream, src with one file in 20 changed (a
// few bytes appended), like a new version of the same tree.
func packVariant(zos, src, out, store string) (int, error) {
	cmd := exec.Command(zos, "flist", "pack", "-", "-o", out, "--store", store)
	in, err := cmd.StdinPipe()
	if err != nil {
		return 0, err
	}
	var errb strings.Builder
	cmd.Stderr = &errb
	if err := cmd.Start(); err != nil {
		return 0, err
	}
	tw := tar.NewWriter(in)
	i, changed := 0, 0
	werr := filepath.WalkDir(src, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return nil
		}
		rel, _ := filepath.Rel(src, p)
		if rel == "." {
			return nil
		}
		info, err := d.Info()
		if err != nil {
			return nil
		}
		link := ""
		if d.Type()&fs.ModeSymlink != 0 {
			link, _ = os.Readlink(p)
		}
		h, err := tar.FileInfoHeader(info, link)
		if err != nil {
			return nil // sockets and the like
		}
		h.Name = rel
		if !d.Type().IsRegular() {
			return tw.WriteHeader(h)
		}
		b, err := os.ReadFile(p)
		if err != nil {
			return nil
		}
		i++
		if i%20 == 0 {
			b = append(b, []byte("\nversion 2\n")...)
			changed++
		}
		h.Size = int64(len(b))
		if err := tw.WriteHeader(h); err != nil {
			return err
		}
		_, err = tw.Write(b)
		return err
	})
	if werr == nil {
		werr = tw.Close()
	}
	in.Close()
	if err := cmd.Wait(); err != nil {
		return 0, fmt.Errorf("pack variant: %v: %s", err, errb.String())
	}
	return changed, werr
}
