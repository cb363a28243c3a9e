package zdb

import (
	"context"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"testing"
)

// TestModel runs random operations against the engine and a plain map, in
// user and seq mode, with reopens, rotations and compactions in between,
// and checks every key after each step and Verify after each close.
func TestModel(t *testing.T) {
	seeds := uint64(2)
	if n, err := strconv.ParseUint(os.Getenv("ZDB_MODEL_SEEDS"), 10, 64); err == nil {
		seeds = n // a longer hunt: ZDB_MODEL_SEEDS=50 go test -run TestModel ./zdb
	}
	for _, mode := range []Mode{ModeUser, ModeSeq} {
		for seed := uint64(1); seed <= seeds; seed++ {
			t.Run(fmt.Sprintf("%s-%d", mode, seed), func(t *testing.T) { runModel(t, mode, seed) })
		}
	}
}

func runModel(t *testing.T, mode Mode, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed*7))
	o := testOpts(t)
	o.Mode = mode
	o.DataSize = 600
	db := mustOpen(t, o)
	ns, _ := db.Namespace(DefaultNamespace)
	model := map[string]string{}
	var keys []string // seq: ids handed out
	check := func(step int) {
		t.Helper()
		for k, v := range model {
			got, _, err := ns.Get(nil, []byte(k))
			if err != nil || string(got) != v {
				t.Fatalf("step %d: %x = %q %v, want %q", step, k, got, err, v)
			}
		}
		if n := ns.Stats().Entries; n != int64(len(model)) {
			t.Fatalf("step %d: %d entries, model has %d", step, n, len(model))
		}
	}
	for step := 0; step < 250; step++ {
		switch op := rng.IntN(100); {
		case op < 50: // set
			v := fmt.Sprintf("v%d-%s", step, string(make([]byte, rng.IntN(40))))
			var key []byte
			if mode == ModeUser {
				key = []byte(fmt.Sprintf("k%d", rng.IntN(30)))
			} else if len(keys) > 0 && rng.IntN(2) == 0 {
				key = []byte(keys[rng.IntN(len(keys))])
				if _, live := model[string(key)]; !live {
					key = nil
				}
			}
			r, err := ns.Set(key, []byte(v), 0)
			if err != nil {
				t.Fatalf("step %d: set: %v", step, err)
			}
			if !r.Unchanged {
				model[string(r.Key)] = v
				if key == nil {
					keys = append(keys, string(r.Key))
				}
			}
			ns.Commit(r.Seq)
		case op < 70: // delete
			var key string
			if mode == ModeUser {
				key = fmt.Sprintf("k%d", rng.IntN(30))
			} else if len(keys) > 0 {
				key = keys[rng.IntN(len(keys))]
			}
			seq, err := ns.Delete([]byte(key), 0)
			_, live := model[key]
			if live != (err == nil) || (err != nil && !errors.Is(err, ErrNotFound) && !errors.Is(err, ErrInvalidKey)) {
				t.Fatalf("step %d: delete %x: %v (live %v)", step, key, err, live)
			}
			delete(model, key)
			ns.Commit(seq)
		case op < 78: // reopen
			db.Close()
			if rep, _ := Verify(o.DataDir, o.IndexDir); !rep.OK() {
				t.Fatalf("step %d: verify: %v", step, rep.Problems)
			}
			db = mustOpen(t, o)
			if r := db.Repairs(); len(r) > 0 {
				t.Fatalf("step %d: clean reopen repaired %v", step, r)
			}
			ns, _ = db.Namespace(DefaultNamespace)
		case op < 85: // compact
			if _, err := ns.Compact(context.Background()); err != nil {
				t.Fatalf("step %d: compact: %v", step, err)
			}
		case op < 90: // history of a live key ends at its current value
			for k, v := range model {
				h, err := ns.History([]byte(k), nil)
				if err != nil || string(h.Value) != v {
					t.Fatalf("step %d: history %x: %q %v", step, k, h.Value, err)
				}
				for h.Parent != nil {
					if h, err = ns.History([]byte(k), h.Parent); err != nil {
						t.Fatalf("step %d: older history of %x: %v", step, k, err)
					}
				}
				break
			}
		default: // scan sees exactly the live keys
			seen := map[string]bool{}
			var cur *Cursor
			for {
				items, err := ns.Scan(cur, 7, false)
				if errors.Is(err, ErrNoMoreData) {
					break
				}
				if err != nil {
					t.Fatalf("step %d: scan: %v", step, err)
				}
				for _, it := range items {
					seen[string(it.Key)] = true
				}
				c := items[len(items)-1].Cursor
				cur = &c
			}
			if len(seen) != len(model) {
				t.Fatalf("step %d: scan saw %d keys, model has %d", step, len(seen), len(model))
			}
		}
		check(step)
	}
	db.Close()
	if rep, _ := Verify(o.DataDir, o.IndexDir); !rep.OK() {
		t.Fatalf("final verify: %v", rep.Problems)
	}
}
