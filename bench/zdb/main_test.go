package main

import (
	"bytes"
	"os"
	"strings"
	"testing"
	"time"
)

func TestParseCSV(t *testing.T) {
	out := []byte(`"test","rps","avg_latency_ms","min_latency_ms","p50_latency_ms","p95_latency_ms","p99_latency_ms","max_latency_ms"
"SET","181818.19","0.150","0.032","0.143","0.231","0.319","1.071"
"GET","200000.00","0.130","0.030","0.127","0.199","0.271","0.911"
`)
	for _, tc := range []struct {
		op   string
		want float64
	}{{"SET", 181818.19}, {"GET", 200000}, {"get", 200000}} {
		got, err := parseCSV(out, tc.op)
		if err != nil || got != tc.want {
			t.Errorf("parseCSV(%s) = %v, %v; want %v", tc.op, got, err, tc.want)
		}
	}
	if _, err := parseCSV(out, "INCR"); err == nil {
		t.Error("a test missing from the output gave no error")
	}
	if _, err := parseCSV([]byte("WARNING: Could not fetch server CONFIG\n"), "SET"); err == nil {
		t.Error("output without results gave no error")
	}
	if _, err := parseCSV([]byte(`"SET","fast"`+"\n"), "SET"); err == nil {
		t.Error("a non-numeric rps gave no error")
	}
}

func TestMedianAndTable(t *testing.T) {
	res := results{}
	rw := row{op: "SET", size: 64, clients: 50, pipe: 16}
	for _, v := range []float64{300, 100, 200} {
		res.add("zos zdb", rw, v)
	}
	res.add("redis AOF", rw, 100)
	res.add("redis AOF", rw, 300)
	if m, ok := res.median("zos zdb", rw); !ok || m != 200 {
		t.Errorf("median of 3 = %v, %v; want 200", m, ok)
	}
	if m, ok := res.median("redis AOF", rw); !ok || m != 200 {
		t.Errorf("median of 2 = %v, %v; want 200", m, ok)
	}
	if _, ok := res.median("0-db", rw); ok {
		t.Error("median of nothing reported a value")
	}

	var buf bytes.Buffer
	cfg := config{runs: 3, n: 1000, sizes: []int{64}}
	printThroughput(&buf, cfg, []kind{{name: "zos zdb"}, {name: "redis AOF"}}, res)
	out := buf.String()
	if !strings.Contains(out, "| 64 B | SET | 50 | 16 | 200 | 200 | 1.00 |") {
		t.Errorf("table row missing or wrong:\n%s", out)
	}
	if !strings.Contains(out, "| 64 B | GET | 1 | 1 | - | - | - |") {
		t.Errorf("unmeasured row not shown as '-':\n%s", out)
	}
}

func TestProcessCPUGrows(t *testing.T) {
	before, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(50 * time.Millisecond)
	for x := 0; time.Now().Before(deadline); x++ {
		_ = x * x // burn CPU
	}
	after, err := processCPU(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if d := after - before; d < 20*time.Millisecond {
		t.Errorf("50 ms of spinning counted as %v of CPU", d)
	}
	if _, err := processCPU(1 << 30); err == nil {
		t.Error("a process that does not exist gave no error")
	}
}

func TestCPUTable(t *testing.T) {
	cpu := results{}
	rw := row{op: "GET", size: 64, clients: 50, pipe: 16}
	cpu.add("zos zdb", rw, 1.2)
	cpu.add("redis AOF", rw, 1.5)
	var buf bytes.Buffer
	printCPU(&buf, config{runs: 1, n: 10, sizes: []int{64}}, []kind{{name: "zos zdb"}, {name: "redis AOF"}}, cpu)
	if !strings.Contains(buf.String(), "| 64 B | GET | 50 | 16 | 1.20 | 1.50 | 0.80 |") {
		t.Errorf("CPU table row missing or wrong:\n%s", buf.String())
	}
}
