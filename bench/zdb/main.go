package main

import (
	"bytes"
	"context"
	"encoding/csv"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"sort"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/redis/go-redis/v9"
)

const usage = `Usage: go run ./bench/zdb [flags]

Benchmarks zos zdb against redis-server (appendonly yes, appendfsync everysec,
no RDB snapshots) and, when ZDB_REFERENCE=/path/to/zdb is set, the C 0-db.
Each pass starts every server fresh, in its own temporary directory on a free
loopback port, and drives them with redis-benchmark (Debian redis-tools) one
at a time, row by row, in an order that rotates from row to row and pass to
pass:

  SET -d {64,4096} -c C -P P -r 2000000000   (random keyspace: every SET is a new key)
  GET -d {64,4096} -c C -P P -r N            (the N keys key:000000000000.. preloaded)
  for (C,P) in (1,1) (50,1) (50,16)

Each cell is the median of -runs passes. Servers take turns within each row,
not whole passes, because this machine's speed drifts over tens of seconds:
whole passes one server after the other gave one of them the fast minutes.
Then, for
zos zdb and 0-db, -keys keys of 64 B are loaded with a pipelined client, VmRSS
is read from /proc, the server is restarted and the time until it answers
PING is measured. Results are markdown tables on stdout; progress on stderr.

Environment: ZOS_BIN (default bin/zos), ZDB_REFERENCE (0-db binary, optional),
REDIS_SERVER (default redis-server), REDIS_BENCHMARK (default redis-benchmark).

The full run takes several minutes; use -quick (or a small -n) to check that
everything works. Numbers are only meaningful on a quiet machine.

Flags:
`

type config struct {
	n       int
	runs    int
	keys    int
	sizes   []int
	only    map[string]bool
	zosArgs []string
	memory  bool
	tmp     string
	timeout time.Duration
}

// row is one line of the throughput table.
type row struct {
	op      string
	size    int
	clients int
	pipe    int
}

var rows = func() []row {
	var rs []row
	for _, op := range []string{"SET", "GET"} {
		for _, cp := range [][2]int{{1, 1}, {50, 1}, {50, 16}} {
			rs = append(rs, row{op: op, clients: cp[0], pipe: cp[1]})
		}
	}
	return rs
}()

func main() {
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "bench/zdb:", err)
		os.Exit(1)
	}
}

func run() error {
	var cfg config
	var sizes, servers, zosFlags string
	var quick bool
	fs := flag.NewFlagSet("bench/zdb", flag.ContinueOnError)
	fs.Usage = func() { fmt.Fprint(fs.Output(), usage); fs.PrintDefaults() }
	fs.IntVar(&cfg.n, "n", 200000, "requests per redis-benchmark run (and keys preloaded for GET)")
	fs.IntVar(&cfg.runs, "runs", 3, "passes per cell (the median is printed)")
	fs.IntVar(&cfg.keys, "keys", 1000000, "keys loaded for the memory and start-up comparison")
	fs.StringVar(&sizes, "sizes", "64,4096", "value sizes in bytes, comma separated")
	fs.StringVar(&servers, "servers", "zos,redis,0-db", "servers to run, comma separated (zos, redis, 0-db)")
	fs.StringVar(&zosFlags, "zos-flags", "", "extra flags for zos zdb, space separated (e.g. \"--cache -1\" to measure without the value cache)")
	fs.BoolVar(&cfg.memory, "memory", true, "run the memory and start-up comparison")
	fs.BoolVar(&quick, "quick", false, "short validation run: -n 20000 -runs 1 -keys 100000")
	fs.StringVar(&cfg.tmp, "tmp", "", "parent directory of the servers' temporary directories (default $TMPDIR)")
	fs.DurationVar(&cfg.timeout, "timeout", 5*time.Minute, "limit for one redis-benchmark run")
	if err := fs.Parse(os.Args[1:]); err != nil {
		if errors.Is(err, flag.ErrHelp) {
			return nil
		}
		return err
	}
	if quick {
		cfg.n, cfg.runs, cfg.keys = 20000, 1, 100000
	}
	if cfg.n <= 0 || cfg.runs <= 0 || cfg.keys <= 0 {
		return errors.New("-n, -runs and -keys must be positive")
	}
	for _, s := range strings.Split(sizes, ",") {
		v, err := strconv.Atoi(strings.TrimSpace(s))
		if err != nil || v <= 0 || v > 8<<20 {
			return fmt.Errorf("-sizes: %q is not a value size between 1 B and 8 MiB", s)
		}
		cfg.sizes = append(cfg.sizes, v)
	}
	cfg.zosArgs = strings.Fields(zosFlags)
	cfg.only = map[string]bool{}
	for _, s := range strings.Split(servers, ",") {
		cfg.only[strings.TrimSpace(s)] = true
	}

	kinds, err := serverKinds(cfg.only, cfg.zosArgs)
	if err != nil {
		return err
	}
	benchBin := envOr("REDIS_BENCHMARK", "redis-benchmark")
	if _, err := exec.LookPath(benchBin); err != nil {
		return fmt.Errorf("%s not found (Debian package redis-tools; `make deps`): %w", benchBin, err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()

	res, cpu := results{}, results{}
	for pass := 1; pass <= cfg.runs; pass++ {
		for _, size := range cfg.sizes {
			progress("pass %d/%d: %d B values", pass, cfg.runs, size)
			if err := benchPass(ctx, cfg, benchBin, kinds, pass, size, res, cpu); err != nil {
				return err
			}
		}
	}
	printThroughput(os.Stdout, cfg, kinds, res)
	printCPU(os.Stdout, cfg, kinds, cpu)

	if cfg.memory {
		var mem []memResult
		for _, k := range kinds {
			if k.name == "redis AOF" {
				continue // the issue asks for zos zdb against 0-db here
			}
			progress("memory: %s, %d keys", k.name, cfg.keys)
			m, err := memoryRun(ctx, cfg, k)
			if err != nil {
				return err
			}
			mem = append(mem, m)
		}
		printMemory(os.Stdout, cfg, mem)
	}
	return nil
}

func serverKinds(only map[string]bool, zosArgs []string) ([]kind, error) {
	var ks []kind
	if only["zos"] {
		bin := envOr("ZOS_BIN", "bin/zos")
		if _, err := os.Stat(bin); err != nil {
			return nil, fmt.Errorf("zos binary %s: %w (run `make build` or set ZOS_BIN)", bin, err)
		}
		ks = append(ks, zosKind(absPath(bin), zosArgs))
	}
	if only["redis"] {
		bin := envOr("REDIS_SERVER", "redis-server")
		p, err := exec.LookPath(bin)
		if err != nil {
			return nil, fmt.Errorf("%s not found (Debian package redis-server; `make deps`): %w", bin, err)
		}
		ks = append(ks, redisKind(p))
	}
	if only["0-db"] {
		if ref := os.Getenv("ZDB_REFERENCE"); ref != "" {
			if _, err := os.Stat(ref); err != nil {
				return nil, fmt.Errorf("ZDB_REFERENCE: %w", err)
			}
			ks = append(ks, zeroDBKind(absPath(ref)))
		} else {
			progress("ZDB_REFERENCE is not set: running without the C 0-db")
		}
	}
	if len(ks) == 0 {
		return nil, errors.New("no server to benchmark (see -servers)")
	}
	return ks, nil
}

// results holds every measured requests/s: server → row → passes.
type results map[string]map[row][]float64

func (r results) add(server string, rw row, rps float64) {
	if r[server] == nil {
		r[server] = map[row][]float64{}
	}
	r[server][rw] = append(r[server][rw], rps)
}

func (r results) median(server string, rw row) (float64, bool) {
	v := append([]float64(nil), r[server][rw]...)
	if len(v) == 0 {
		return 0, false
	}
	sort.Float64s(v)
	if len(v)%2 == 1 {
		return v[len(v)/2], true
	}
	return (v[len(v)/2-1] + v[len(v)/2]) / 2, true
}

// benchPass runs the six rows of one value size against a fresh instance
// of every server: each is started and preloaded with n keys (for GET),
// then each row runs on every server in turn, the order rotating with the
// row and the pass so that no server always goes first. Besides requests/s
// it records each server's CPU time per request (cpu, in µs).
func benchPass(ctx context.Context, cfg config, benchBin string, kinds []kind, pass, size int, res, cpu results) error {
	servers := make([]*server, len(kinds))
	defer func() {
		for _, s := range servers {
			if s != nil {
				s.close()
			}
		}
	}()
	for i, k := range kinds {
		s, err := startFresh(ctx, cfg.tmp, k)
		if err != nil {
			return err
		}
		servers[i] = s
		began := time.Now()
		if err := load(ctx, s, cfg.n, size, 4); err != nil {
			return fmt.Errorf("%s: preload: %w", k.name, err)
		}
		progress("  %s: preloaded %d keys in %v", k.name, cfg.n, time.Since(began).Round(time.Millisecond))
		// Every GET below must be a hit: make sure the keys are all there.
		c := s.client()
		have, err := c.Do(ctx, "DBSIZE").Int64()
		c.Close()
		if err != nil || have < int64(cfg.n) {
			return fmt.Errorf("%s: after preloading %d keys DBSIZE = %d, %v", k.name, cfg.n, have, err)
		}
	}
	for ri, rw := range rows {
		rw.size = size
		keyspace := 2000000000
		if rw.op == "GET" {
			keyspace = cfg.n
		}
		for j := range servers {
			i := (j + ri + pass) % len(servers)
			s, name := servers[i], kinds[i].name
			before, cerr := processCPU(s.cmd.Process.Pid)
			rps, err := redisBenchmark(ctx, cfg, benchBin, s, rw, keyspace)
			if err != nil {
				return fmt.Errorf("%s: %s -d %d -c %d -P %d: %w", name, rw.op, size, rw.clients, rw.pipe, err)
			}
			after, cerr2 := processCPU(s.cmd.Process.Pid)
			res.add(name, rw, rps)
			if cerr == nil && cerr2 == nil {
				us := float64(after-before) / float64(time.Microsecond) / float64(cfg.n)
				cpu.add(name, rw, us)
				progress("  %s -d %d -c %d -P %d, %s: %.0f req/s, server CPU %.2f µs/request", rw.op, size, rw.clients, rw.pipe, name, rps, us)
			} else {
				progress("  %s -d %d -c %d -P %d, %s: %.0f req/s (server CPU not measured: %v)", rw.op, size, rw.clients, rw.pipe, name, rps, errors.Join(cerr, cerr2))
			}
		}
	}
	return nil
}

// redisBenchmark runs one redis-benchmark and returns its requests/s.
func redisBenchmark(ctx context.Context, cfg config, bin string, s *server, rw row, keyspace int) (float64, error) {
	ctx, cancel := context.WithTimeout(ctx, cfg.timeout)
	defer cancel()
	args := []string{"-h", "127.0.0.1", "-p", strconv.Itoa(s.port.Port()),
		"-t", strings.ToLower(rw.op), "-n", strconv.Itoa(cfg.n), "-d", strconv.Itoa(rw.size),
		"-c", strconv.Itoa(rw.clients), "-P", strconv.Itoa(rw.pipe), "-r", strconv.Itoa(keyspace), "--csv"}
	cmd := exec.CommandContext(ctx, bin, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	if err := cmd.Run(); err != nil {
		return 0, fmt.Errorf("redis-benchmark: %w: %s", err, strings.TrimSpace(errb.String()))
	}
	return parseCSV(out.Bytes(), rw.op)
}

// parseCSV finds the requests/s of test op in redis-benchmark's --csv output:
// a header line "test","rps",... then one line per test.
func parseCSV(out []byte, op string) (float64, error) {
	r := csv.NewReader(bytes.NewReader(out))
	r.FieldsPerRecord = -1
	for {
		rec, err := r.Read()
		if err == io.EOF {
			break
		}
		if err != nil {
			return 0, fmt.Errorf("redis-benchmark output: %w", err)
		}
		if len(rec) >= 2 && strings.EqualFold(rec[0], op) {
			return strconv.ParseFloat(rec[1], 64)
		}
	}
	return 0, fmt.Errorf("no %s result in redis-benchmark output %q", op, out)
}

// load writes the n keys key:000000000000.. (redis-benchmark's names) with
// size-byte values of 'x' (its filler), through conns pipelined connections.
func load(ctx context.Context, s *server, n, size, conns int) error {
	c := s.client()
	defer c.Close()
	value := bytes.Repeat([]byte("x"), size)
	const batch = 1000
	var wg sync.WaitGroup
	errs := make(chan error, conns)
	next := make(chan int)
	go func() {
		defer close(next)
		for i := 0; i < n; i += batch {
			select {
			case next <- i:
			case <-ctx.Done():
				return
			}
		}
	}()
	for w := 0; w < conns; w++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for start := range next {
				p := c.Pipeline()
				for i := start; i < start+batch && i < n; i++ {
					p.Do(ctx, "SET", fmt.Sprintf("key:%012d", i), value)
				}
				cmds, err := p.Exec(ctx)
				if err != nil && !errors.Is(err, redis.Nil) {
					errs <- err
					for range next {
					}
					return
				}
				for _, cmd := range cmds {
					if err := cmd.Err(); err != nil && !errors.Is(err, redis.Nil) {
						errs <- err
						for range next {
						}
						return
					}
				}
			}
		}()
	}
	wg.Wait()
	close(errs)
	if err := <-errs; err != nil {
		return err
	}
	return ctx.Err()
}

// memResult is one line of the memory and start-up table.
type memResult struct {
	server     string
	rssEmpty   int64
	load       time.Duration
	rssLoaded  int64
	startup    time.Duration
	rssStarted int64
	dbsize     int64
}

// memoryRun loads cfg.keys keys of 64 B, reads VmRSS, restarts the server
// and measures the time until PING answers, then VmRSS again.
func memoryRun(ctx context.Context, cfg config, k kind) (memResult, error) {
	m := memResult{server: k.name}
	s, err := startFresh(ctx, cfg.tmp, k)
	if err != nil {
		return m, err
	}
	defer s.close()
	if m.rssEmpty, err = s.rss(); err != nil {
		return m, err
	}
	began := time.Now()
	if err := load(ctx, s, cfg.keys, 64, 8); err != nil {
		return m, fmt.Errorf("%s: load: %w", k.name, err)
	}
	m.load = time.Since(began)
	if m.rssLoaded, err = s.rss(); err != nil {
		return m, err
	}
	progress("  loaded in %v, RSS %s", m.load.Round(time.Millisecond), mib(m.rssLoaded))
	if err := s.stop(); err != nil {
		return m, fmt.Errorf("%s: stop: %w", k.name, err)
	}
	if m.startup, err = s.start(ctx); err != nil {
		return m, err
	}
	if m.rssStarted, err = s.rss(); err != nil {
		return m, err
	}
	c := s.client()
	defer c.Close()
	m.dbsize, _ = c.Do(ctx, "DBSIZE").Int64()
	progress("  restarted in %v, RSS %s, DBSIZE %d", m.startup.Round(time.Millisecond), mib(m.rssStarted), m.dbsize)
	return m, nil
}

func printThroughput(w io.Writer, cfg config, kinds []kind, res results) {
	fmt.Fprintf(w, "\n### zdb throughput (requests/s, median of %d, -n %d)\n\n", cfg.runs, cfg.n)
	printTable(w, cfg, kinds, res, kilo)
}

// printCPU prints the servers' CPU time per request: on a shared, noisy
// machine it moves far less from pass to pass than requests/s, and at
// -P 16 the server, not redis-benchmark, is the bottleneck.
func printCPU(w io.Writer, cfg config, kinds []kind, cpu results) {
	fmt.Fprintf(w, "\n### server CPU time per request (µs, user+system, all threads; median of %d; lower is better)\n\n", cfg.runs)
	printTable(w, cfg, kinds, cpu, func(v float64) string { return strconv.FormatFloat(v, 'f', 2, 64) })
}

func printTable(w io.Writer, cfg config, kinds []kind, res results, format func(float64) string) {
	if len(cfg.zosArgs) > 0 {
		fmt.Fprintf(w, "zos zdb ran with %s.\n\n", strings.Join(cfg.zosArgs, " "))
	}
	names := make([]string, len(kinds))
	for i, k := range kinds {
		names[i] = k.name
	}
	ratios := ratioColumns(names)
	fmt.Fprintf(w, "| value | op | c | P | %s |", strings.Join(names, " | "))
	for _, r := range ratios {
		fmt.Fprintf(w, " %s |", r[0]+"/"+r[1])
	}
	fmt.Fprintf(w, "\n|%s\n", strings.Repeat(" --- |", 4+len(names)+len(ratios)))
	for _, size := range cfg.sizes {
		for _, rw := range rows {
			rw.size = size
			fmt.Fprintf(w, "| %s | %s | %d | %d |", sizeName(size), rw.op, rw.clients, rw.pipe)
			for _, n := range names {
				v, ok := res.median(n, rw)
				if !ok {
					fmt.Fprint(w, " - |")
					continue
				}
				fmt.Fprintf(w, " %s |", format(v))
			}
			for _, r := range ratios {
				a, okA := res.median(r[0], rw)
				b, okB := res.median(r[1], rw)
				if !okA || !okB || b == 0 {
					fmt.Fprint(w, " - |")
					continue
				}
				fmt.Fprintf(w, " %.2f |", a/b)
			}
			fmt.Fprintln(w)
		}
	}
}

// ratioColumns pairs zos zdb with every other server present.
func ratioColumns(names []string) [][2]string {
	var out [][2]string
	for _, n := range names {
		if n != "zos zdb" && contains(names, "zos zdb") {
			out = append(out, [2]string{"zos zdb", n})
		}
	}
	return out
}

func printMemory(w io.Writer, cfg config, mem []memResult) {
	fmt.Fprintf(w, "\n### zdb memory and start-up with %d keys (16 B keys, 64 B values)\n\n", cfg.keys)
	if len(cfg.zosArgs) > 0 {
		fmt.Fprintf(w, "zos zdb ran with %s.\n\n", strings.Join(cfg.zosArgs, " "))
	}
	fmt.Fprintln(w, "| server | RSS empty | load | RSS loaded | RSS per key (loaded - empty) | start-up to PONG | RSS after restart | DBSIZE after restart |")
	fmt.Fprintln(w, "| --- | --- | --- | --- | --- | --- | --- | --- |")
	perKey := func(m memResult) float64 { return float64(m.rssLoaded-m.rssEmpty) / float64(cfg.keys) }
	for _, m := range mem {
		fmt.Fprintf(w, "| %s | %s | %v | %s | %.0f B | %v | %s | %d |\n", m.server, mib(m.rssEmpty),
			m.load.Round(time.Millisecond), mib(m.rssLoaded), perKey(m), m.startup.Round(time.Millisecond),
			mib(m.rssStarted), m.dbsize)
	}
	if len(mem) == 2 && mem[1].rssLoaded > 0 && mem[1].startup > 0 && mem[1].rssStarted > 0 && perKey(mem[1]) > 0 {
		a, b := mem[0], mem[1]
		fmt.Fprintf(w, "| %s/%s | | %.2f | %.2f | %.2f | %.2f | %.2f | |\n", a.server, b.server,
			a.load.Seconds()/b.load.Seconds(), float64(a.rssLoaded)/float64(b.rssLoaded), perKey(a)/perKey(b),
			a.startup.Seconds()/b.startup.Seconds(), float64(a.rssStarted)/float64(b.rssStarted))
	}
}

func sizeName(b int) string {
	if b%1024 == 0 {
		return fmt.Sprintf("%d KiB", b/1024)
	}
	return fmt.Sprintf("%d B", b)
}

func kilo(v float64) string {
	if v >= 10000 {
		return fmt.Sprintf("%.0fk", v/1000)
	}
	if v >= 1000 {
		return fmt.Sprintf("%.1fk", v/1000)
	}
	return fmt.Sprintf("%.0f", v)
}

func mib(b int64) string { return fmt.Sprintf("%.1f MiB", float64(b)/(1<<20)) }

func contains(list []string, s string) bool {
	for _, v := range list {
		if v == s {
			return true
		}
	}
	return false
}

func envOr(name, def string) string {
	if v := os.Getenv(name); v != "" {
		return v
	}
	return def
}

func absPath(p string) string {
	if strings.Contains(p, "/") {
		if a, err := os.Getwd(); err == nil && !strings.HasPrefix(p, "/") {
			return a + "/" + p
		}
	}
	return p
}

func progress(format string, args ...any) {
	fmt.Fprintf(os.Stderr, time.Now().Format("15:04:05 ")+format+"\n", args...)
}

// processCPU is the CPU time pid's threads have used (user and system),
// from each thread's schedstat, in nanoseconds: finer than the 10 ms ticks
// of /proc/PID/stat. The servers measured keep their threads for their
// whole life, so no thread's time is lost by its exit.
func processCPU(pid int) (time.Duration, error) {
	dir := fmt.Sprintf("/proc/%d/task", pid)
	tasks, err := os.ReadDir(dir)
	if err != nil {
		return 0, err
	}
	var total time.Duration
	for _, t := range tasks {
		b, err := os.ReadFile(dir + "/" + t.Name() + "/schedstat")
		if err != nil {
			continue // the thread ended meanwhile
		}
		f := strings.Fields(string(b))
		if len(f) == 0 {
			return 0, fmt.Errorf("%s/%s/schedstat: %q", dir, t.Name(), b)
		}
		ns, err := strconv.ParseInt(f[0], 10, 64)
		if err != nil {
			return 0, fmt.Errorf("%s/%s/schedstat: %w", dir, t.Name(), err)
		}
		total += time.Duration(ns)
	}
	return total, nil
}
