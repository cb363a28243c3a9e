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
