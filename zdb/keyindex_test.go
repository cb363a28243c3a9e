package zdb

import (
	"fmt"
	"testing"
)

func TestKeyIndex(t *testing.T) {
	ki := newKeyIndex()
	ref := map[string]loc{}
	for round := 0; round < 3; round++ {
		for i := 0; i < 5000; i++ {
			k := fmt.Sprintf("k%d", (i*7+round)%3000)
			l := loc{file: uint32(round), idxOff: uint32(i), length: uint32(len(k))}
			switch (i + round) % 3 {
			case 0, 1:
				ki.put([]byte(k), l)
				ref[k] = l
			case 2:
				_, had := ref[k]
				if ki.del([]byte(k)) != had {
					t.Fatalf("del %s: index disagrees", k)
				}
				delete(ref, k)
			}
		}
		if ki.len() != len(ref) {
			t.Fatalf("len %d, want %d", ki.len(), len(ref))
		}
		for k, want := range ref {
			if got, ok := ki.get([]byte(k)); !ok || got != want {
				t.Fatalf("get %s = %+v %v, want %+v", k, got, ok, want)
			}
		}
		seen := 0
		ki.each(func(key []byte, l loc) {
			seen++
			if ref[string(key)] != l {
				t.Fatalf("each %s", key)
			}
		})
		if seen != len(ref) {
			t.Fatalf("each saw %d, want %d", seen, len(ref))
		}
	}
	if _, ok := ki.get([]byte("absent")); ok {
		t.Fatal("absent key found")
	}
	ki.put(nil, loc{file: 9})
	if l, ok := ki.get(nil); !ok || l.file != 9 {
		t.Fatal("empty key")
	}
}

// Enough keys to fill several arena chunks: records never straddle two, and
// compaction of deleted records keeps every live one findable.
func TestKeyIndexChunks(t *testing.T) {
	ki := newKeyIndex()
	const n = 80000 // ~3.5 MiB of records
	key := func(i int) []byte { return []byte(fmt.Sprintf("chunk-key-%08d", i)) }
	for i := 0; i < n; i++ {
		ki.put(key(i), loc{file: uint32(i), length: uint32(i * 3)})
	}
	if len(ki.chunks) < 3 {
		t.Fatalf("%d keys fit in %d chunk(s): the test does not cross a chunk", n, len(ki.chunks))
	}
	for _, c := range ki.chunks {
		if len(c) > kiChunkSize {
			t.Fatalf("chunk of %d bytes", len(c))
		}
	}
	for i := 0; i < n; i += 2 {
		if !ki.del(key(i)) {
			t.Fatalf("del %d", i)
		}
	}
	for i := 0; i < n; i++ {
		l, ok := ki.get(key(i))
		if ok != (i%2 == 1) || (ok && (l.file != uint32(i) || l.length != uint32(i*3))) {
			t.Fatalf("get %d = %+v %v", i, l, ok)
		}
	}
	seen := 0
	ki.each(func(k []byte, l loc) {
		if string(k) != string(key(int(l.file))) {
			t.Fatalf("each: key %q with loc of %d", k, l.file)
		}
		seen++
	})
	if seen != n/2 || ki.len() != n/2 {
		t.Fatalf("each saw %d, len %d, want %d", seen, ki.len(), n/2)
	}
}

// TestKeyIndexPrefetchAgreesWithGet: prefetch finds exactly what get finds,
// for present, deleted and absent keys, with a table crowded enough that
// many keys are not in their first slot.
func TestKeyIndexPrefetchAgreesWithGet(t *testing.T) {
	ki := newKeyIndex()
	for i := range 20000 {
		ki.put(fmt.Appendf(nil, "pf-%d", i), loc{file: uint32(i), dataOff: uint32(3 * i), length: uint32(i % 97)})
	}
	for i := 0; i < 20000; i += 3 {
		ki.del(fmt.Appendf(nil, "pf-%d", i))
	}
	for start := 0; start < 25000; start += prefetchMax {
		var keys [][]byte
		for i := start; i < start+prefetchMax; i++ {
			keys = append(keys, fmt.Appendf(nil, "pf-%d", i)) // past 20000: absent
		}
		locs, ok := make([]loc, len(keys)), make([]bool, len(keys))
		ki.prefetch(keys, locs, ok)
		for i, k := range keys {
			want, wantOK := ki.get(k)
			if ok[i] != wantOK || (ok[i] && locs[i] != want) {
				t.Fatalf("prefetch %s = %+v %v, get = %+v %v", k, locs[i], ok[i], want, wantOK)
			}
		}
	}
}
