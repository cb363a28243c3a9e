package zdb

import (
	"fmt"
	"runtime"
	"syscall"
	"testing"
)

// BenchmarkGet4K reads random 4 KiB values of an 80 MiB namespace, more
// than the default value cache holds, through pread or the data files'
// maps, with and without the cache. cpu-ns/op counts the kernel's share
// (pread's system call and copy), which wall time on a busy machine hides.
func BenchmarkGet4K(b *testing.B) {
	for _, c := range []struct {
		name  string
		noMap bool
		cache int64
	}{{"pread", true, -1}, {"mapped", false, -1}, {"pread+cache", true, 0}, {"mapped+cache", false, 0}} {
		b.Run(c.name, func(b *testing.B) {
			o := testOpts(b)
			o.NoMap, o.CacheSize = c.noMap, c.cache
			ns, _ := mustOpen(b, o).Namespace(DefaultNamespace)
			val := make([]byte, 4096)
			keys := make([][]byte, 20000)
			for i := range keys {
				keys[i] = []byte(fmt.Sprintf("key:%012d", i))
				ns.Set(keys[i], val, 0)
				if i%100 == 0 {
					ns.CommitAll()
				}
			}
			if err := ns.CommitAll(); err != nil {
				b.Fatal(err)
			}
			buf := make([]byte, 4096)
			runtime.GC()
			var ru0, ru1 syscall.Rusage
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru0)
			b.ResetTimer()
			for i := 0; i < b.N; i++ {
				if _, err := ns.GetInto(keys[(i*7919)%len(keys)], func(int) []byte { return buf }); err != nil {
					b.Fatal(err)
				}
			}
			b.StopTimer()
			syscall.Getrusage(syscall.RUSAGE_SELF, &ru1)
			cpu := syscall.TimevalToNsec(ru1.Utime) - syscall.TimevalToNsec(ru0.Utime) +
				syscall.TimevalToNsec(ru1.Stime) - syscall.TimevalToNsec(ru0.Stime)
			b.ReportMetric(float64(cpu)/float64(b.N), "cpu-ns/op")
		})
	}
}
