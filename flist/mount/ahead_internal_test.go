package mount

import (
	"math/rand/v2"
	"testing"
)

// The read-ahead window's counts stay consistent whatever the misses and
// takes: pending is the size of the files from next to end, the window
// never passes its bounds, and workers are counted in and out.
func TestAheadWindowInvariants(t *testing.T) {
	rng := rand.New(rand.NewPCG(1, 2))
	sizes := make([]uint64, 5000)
	for i := range sizes {
		sizes[i] = uint64(rng.IntN(1 << 20))
	}
	var a aheadWindow
	workers, reader := 0, 0
	for step := range 200000 {
		switch r := rng.IntN(10); {
		case r < 3: // a walking reader misses
			reader = min(reader+rng.IntN(40), len(sizes)-1)
			workers += a.miss(reader, sizes)
		case r == 3: // a miss anywhere
			workers += a.miss(rng.IntN(len(sizes)), sizes)
		default:
			if workers > 0 {
				if _, ok := a.take(sizes, rng.IntN(100) == 0); !ok {
					workers--
				}
			}
		}
		var want uint64
		for j := a.next; j < a.end; j++ {
			want += sizes[j]
		}
		switch {
		case a.pending != want:
			t.Fatalf("step %d: pending %d, files next..end hold %d", step, a.pending, want)
		case a.next > a.end || a.end > len(sizes) || a.end-a.start > a.size || a.size > maxAhead:
			t.Fatalf("step %d: window start %d next %d end %d size %d", step, a.start, a.next, a.end, a.size)
		case a.workers != workers || workers > aheadWorkers:
			t.Fatalf("step %d: %d workers counted, %d running", step, a.workers, workers)
		}
	}
}
