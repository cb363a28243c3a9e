package main

import (
	"bufio"
	"crypto/rand"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strings"
	"syscall"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"
)

func main() {
	n := flag.Int("n", 10, "runs per case")
	sizeMB := flag.Int("size", 100, "MiB of filler in the image")
	trace := flag.Bool("trace", false, "also print the stages of one traced start of each zos case (ZOS_TRACE)")
	only := flag.String("cases", "", "run only the cases whose name matches this regexp (e.g. runc: runc back to back, as hyperfine does)")
	flag.Parse()
	match, err := regexp.Compile(*only)
	if err != nil {
		fail(err.Error())
	}
	if os.Geteuid() != 0 {
		fail("bench/container needs root")
	}
	zos := os.Getenv("ZOS_BIN")
	if zos == "" {
		zos = "bin/zos"
	}
	zos, _ = filepath.Abs(zos)
	runc, err := exec.LookPath("runc")
	if err != nil {
		fail("runc not found (make deps installs it)")
	}
	busybox, err := exec.LookPath("busybox")
	if err != nil {
		fail("busybox not found (make deps installs busybox-static)")
	}
	work, err := os.MkdirTemp("", "bench-container-")
	check(err)
	defer os.RemoveAll(work)
	os.Chmod(work, 0o755)

	rootfs := filepath.Join(work, "image", "rootfs")
	for _, d := range []string{"bin", "etc", "tmp", "data"} {
		check(os.MkdirAll(filepath.Join(rootfs, d), 0o755))
	}
	b, err := os.ReadFile(busybox)
	check(err)
	check(os.WriteFile(filepath.Join(rootfs, "bin/busybox"), b, 0o755))
	for _, a := range []string{"sh", "echo", "sleep"} {
		check(os.Symlink("busybox", filepath.Join(rootfs, "bin", a)))
	}
	filler, err := os.Create(filepath.Join(rootfs, "data/filler"))
	check(err)
	_, err = io.CopyN(filler, rand.Reader, int64(*sizeMB)<<20)
	check(err)
	filler.Close()

	fl := filepath.Join(work, "image.fl")
	blocks := filepath.Join(work, "blocks")
	run(zos, "flist", "pack", rootfs, "-o", fl, "--store", "dir://"+blocks)
	// Signed and trusted, as a node runs workloads (not --insecure).
	keyFile := filepath.Join(work, "publisher.key")
	run(zos, "key", "new", "-o", keyFile)
	run(zos, "flist", "sign", fl, "--key", keyFile)
	pub, err := exec.Command(zos, "key", "pub", keyFile).Output()
	check(err)
	trust := strings.TrimSpace(string(pub))
	state := filepath.Join(work, "state")
	cache := filepath.Join(work, "cache")
	zosRun := func(image string, extra ...string) []string {
		args := append([]string{"container", "--root", state, "run", "--rm"}, extra...)
		return append(append(args, image, "--"), "/bin/echo", "hi")
	}

	holding := false // the holder container keeps the flist mounted
	bundle := filepath.Join(work, "bundle")
	check(os.MkdirAll(bundle, 0o755))
	writeRuncSpec(runc, bundle)
	setRoot(bundle, rootfs)

	cases := []benchCase{
		{name: "runc, unpacked dir (reference)", cmd: func(i int) []string {
			return []string{runc, "run", "-b", bundle, fmt.Sprintf("bench%d-%d", os.Getpid(), i)}
		}},
		{name: "zos, unpacked dir", cmd: func(int) []string { return append([]string{zos}, zosRun(filepath.Join(work, "image"))...) }},
		{name: "zos, flist mounted, blocks cached", setup: func(int) {
			// Another container of the image keeps it mounted, as on a node.
			if !holding {
				run(zos, "container", "--root", state, "run", "-d", "--name", "holder", "--trust", trust, "--cache", cache, fl, "--", "sleep", "3600")
				holding = true
			}
		}, cmd: func(int) []string {
			return append([]string{zos}, zosRun(fl, "--trust", trust, "--cache", cache)...)
		}},
		{name: "zos, flist cold (not mounted, empty cache)", setup: func(int) {
			if holding {
				run(zos, "container", "--root", state, "rm", "-f", "holder")
				holding = false
			}
			os.RemoveAll(cache)
		}, cmd: func(int) []string {
			return append([]string{zos}, zosRun(fl, "--trust", trust, "--cache", cache)...)
		}},
		{name: "unpack + runc (Docker path)", setup: func(i int) {
			os.RemoveAll(filepath.Join(work, "unpacked"))
		}, pre: func(i int) {
			u := filepath.Join(work, "unpacked")
			run(zos, "flist", "unpack", fl, filepath.Join(u, "rootfs"), "--trust", trust)
			writeRuncSpec(runc, u)
		}, cmd: func(i int) []string {
			return []string{runc, "run", "-b", filepath.Join(work, "unpacked"), fmt.Sprintf("benchu%d-%d", os.Getpid(), i)}
		}},
	}
	// A binary the Go linker has just written starts faster (measured:
	// 20 ms against 27 ms for `zos init --exec -- /bin/true`, 690 page
	// faults against 880) than the same bytes read back into the page
	// cache, as an installed binary is (and runc's is). Every binary of the
	// comparison starts from that state: dropped from the page cache here,
	// read back by the warm-up runs.
	for _, b := range []string{zos, filepath.Join(filepath.Dir(zos), "zos-init"), runc} {
		evictPageCache(b)
	}
	// warm the flist cache once
	run(zos, zosRun(fl, "--trust", trust, "--cache", cache)...)

	if *trace {
		traceStages(cases[1:4], zos)
	}
	cases = slices.DeleteFunc(cases, func(c benchCase) bool { return !match.MatchString(c.name) })
	// One untimed run of each case first (hyperfine's warm-up): the first
	// start of a binary after another case pays for its page cache.
	for _, c := range cases {
		if c.setup != nil {
			c.setup(-1)
		}
		start := time.Now()
		if c.pre != nil {
			c.pre(-1)
		}
		firstOutput(start, c.cmd(-1))
	}

	// The cases take turns (run i of every case, then run i+1), so that a
	// change of the machine's load hits all of them alike.
	fmt.Printf("container start: run -> first output of `echo hi` (image: busybox + %d MiB filler), median of %d, cases interleaved\n\n", *sizeMB, *n)
	ds := make([][]time.Duration, len(cases))
	cpu := make([]time.Duration, len(cases))
	for i := 0; i < *n; i++ {
		for ci, c := range cases {
			if c.setup != nil {
				c.setup(i)
			}
			cpu0 := childrenCPU()
			start := time.Now()
			if c.pre != nil {
				c.pre(i)
			}
			ds[ci] = append(ds[ci], firstOutput(start, c.cmd(i)))
			cpu[ci] += childrenCPU() - cpu0
		}
	}
	if holding {
		run(zos, "container", "--root", state, "rm", "-f", "holder")
	}
	results := map[string]time.Duration{}
	fmt.Println("| case | median | min | max | vs first case | CPU per run |")
	fmt.Println("| --- | --- | --- | --- | --- | --- |")
	var ref time.Duration
	for ci, c := range cases {
		d := ds[ci]
		sort.Slice(d, func(i, j int) bool { return d[i] < d[j] })
		med := d[len(d)/2]
		results[c.name] = med
		if ref == 0 {
			ref = med
		}
		fmt.Printf("| %s | %s | %s | %s | %.2fx | %s |\n", c.name, ms(med), ms(d[0]), ms(d[len(d)-1]), float64(med)/float64(ref), ms(cpu[ci]/time.Duration(*n)))
	}
	fmt.Println("\nCPU per run: user+sys of the timed command and the children it waited for (the detached flist mount excluded)")
	runcRef, cached, cold, docker := results["runc, unpacked dir (reference)"], results["zos, flist mounted, blocks cached"],
		results["zos, flist cold (not mounted, empty cache)"], results["unpack + runc (Docker path)"]
	if runcRef > 0 && cached > 0 {
		r := float64(cached) / float64(runcRef)
		fmt.Printf("\ntarget 1, cached flist within 1.5x of runc on a directory: %.2fx (%s)\n", r, verdict(r <= 1.5))
	}
	if cold > 0 && docker > 0 {
		r := float64(docker) / float64(cold)
		fmt.Printf("target 2, cold flist at least 5x faster than unpack + runc: %.1fx (%s)\n", r, verdict(r >= 5))
	}
}

// childrenCPU is the user and system time of the children waited for so
// far (and of their waited-for descendants).
func childrenCPU() time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_CHILDREN, &ru); err != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

func verdict(ok bool) string {
	if ok {
		return "met"
	}
	return "not met"
}

// traceStages runs each case once with ZOS_TRACE set and prints when each
// stage was reached, in ms from the invocation (CLOCK_MONOTONIC, the clock
// of the marks).
func traceStages(cases []benchCase, zos string) {
	for i, c := range cases {
		if c.setup != nil {
			c.setup(i)
		}
		argv := c.cmd(0)
		cmd := exec.Command(argv[0], argv[1:]...)
		cmd.Env = append(os.Environ(), "ZOS_TRACE=1")
		t0 := monotonicMS()
		out, err := cmd.CombinedOutput()
		if err != nil {
			fail(fmt.Sprintf("%s: %v: %s", strings.Join(argv, " "), err, out))
		}
		fmt.Printf("stages of one start, %s (ms from invocation; +ms since the previous stage)\n\n", c.name)
		prev := t0
		for _, l := range strings.Split(string(out), "\n") {
			i := strings.Index(l, "zos-trace ")
			if i < 0 {
				continue
			}
			f := strings.SplitN(strings.TrimRight(l[i+len("zos-trace "):], `"`), " ", 3)
			if len(f) < 3 {
				continue
			}
			var t float64
			fmt.Sscan(f[0], &t)
			fmt.Printf("  %8.1f  (+%6.1f)  %-6s %s\n", t-t0, t-prev, f[1], f[2])
			prev = t
		}
		fmt.Println()
	}
}

// monotonicMS is CLOCK_MONOTONIC in milliseconds, as in zos' trace marks.
func monotonicMS() float64 {
	var ts syscall.Timespec
	const clockMonotonic = 1
	syscall.Syscall(syscall.SYS_CLOCK_GETTIME, clockMonotonic, uintptr(unsafe.Pointer(&ts)), 0)
	return float64(ts.Sec)*1e3 + float64(ts.Nsec)/1e6
}

type benchCase struct {
	name  string
	setup func(i int) // not timed
	cmd   func(i int) []string
	pre   func(i int) // timed, before cmd (unpack)
}

// firstOutput runs argv and returns the time from start to its first byte of stdout.
func firstOutput(start time.Time, argv []string) time.Duration {
	cmd := exec.Command(argv[0], argv[1:]...)
	out, err := cmd.StdoutPipe()
	check(err)
	var stderr strings.Builder
	cmd.Stderr = &stderr
	check(cmd.Start())
	r := bufio.NewReader(out)
	_, err = r.ReadByte()
	d := time.Since(start)
	io.Copy(io.Discard, r)
	if werr := cmd.Wait(); err != nil || werr != nil {
		fail(fmt.Sprintf("%s: %v %v: %s", strings.Join(argv, " "), err, werr, stderr.String()))
	}
	return d
}

func writeRuncSpec(runc, bundle string) {
	os.Remove(filepath.Join(bundle, "config.json"))
	cmd := exec.Command(runc, "spec")
	cmd.Dir = bundle
	out, err := cmd.CombinedOutput()
	if err != nil {
		fail(fmt.Sprintf("runc spec: %v: %s", err, out))
	}
	var spec map[string]any
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	check(err)
	check(json.Unmarshal(b, &spec))
	proc := spec["process"].(map[string]any)
	proc["terminal"] = false
	proc["args"] = []string{"/bin/echo", "hi"}
	b, err = json.Marshal(spec)
	check(err)
	check(os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644))
}

// setRoot points a bundle's config at an absolute root directory.
func setRoot(bundle, root string) {
	var spec map[string]any
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	check(err)
	check(json.Unmarshal(b, &spec))
	spec["root"] = map[string]any{"path": root, "readonly": true}
	b, err = json.Marshal(spec)
	check(err)
	check(os.WriteFile(filepath.Join(bundle, "config.json"), b, 0o644))
}

func run(argv0 string, args ...string) {
	out, err := exec.Command(argv0, args...).CombinedOutput()
	if err != nil {
		fail(fmt.Sprintf("%s %s: %v\n%s", argv0, strings.Join(args, " "), err, out))
	}
}

// evictPageCache drops path's cached pages (no error if it is absent).
func evictPageCache(path string) {
	f, err := os.Open(path)
	if err != nil {
		return
	}
	defer f.Close()
	unix.Fadvise(int(f.Fd()), 0, 0, unix.FADV_DONTNEED)
}

func ms(d time.Duration) string { return fmt.Sprintf("%.1f ms", float64(d.Microseconds())/1000) }

func check(err error) {
	if err != nil {
		fail(err.Error())
	}
}

func fail(msg string) {
	fmt.Fprintln(os.Stderr, "bench/container:", msg)
	os.Exit(1)
}
