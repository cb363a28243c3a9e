package container_test

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"testing"

	"github.com/zosgrid/zos/container"
)

// newStateRuntime returns a runtime on root that only records containers
// (nothing here runs one, so no root is needed).
func newStateRuntime(t *testing.T, root string) *container.Runtime {
	t.Helper()
	r, err := container.New(root, "/bin/true", nil, nil)
	if err != nil {
		t.Fatal(err)
	}
	return r
}

func idBase(t *testing.T, r *container.Runtime, id string) uint32 {
	t.Helper()
	info, err := r.Inspect(context.Background(), id)
	if err != nil {
		t.Fatal(err)
	}
	return info.Config.IDBase
}

// TestIDRangesOfConcurrentCreatesDiffer: containers created at the same
// time, by several runtimes on one state directory (as several zos
// processes), each get a host id range of their own.
func TestIDRangesOfConcurrentCreatesDiffer(t *testing.T) {
	root := t.TempDir()
	const n = 24
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		r := newStateRuntime(t, root)
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- r.Create(context.Background(), container.Config{ID: fmt.Sprintf("c%d", i), Lower: "/", Cmd: []string{"true"}})
		}()
	}
	wg.Wait()
	close(errs)
	for err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	r := newStateRuntime(t, root)
	owner := map[uint32]string{}
	for i := range n {
		id := fmt.Sprintf("c%d", i)
		b := idBase(t, r, id)
		if b < 1<<20 || b%65536 != 0 {
			t.Errorf("%s: id base %d, want a multiple of 65536 from 2^20", id, b)
		}
		if o, dup := owner[b]; dup {
			t.Errorf("%s and %s share the host id range at %d", o, id, b)
		}
		owner[b] = id
	}
}

// TestIDRangeReusedAfterRemove: a removed container's range goes to the
// next container, and so does the range of a create that died half-way
// (its directory gone, its claim left).
func TestIDRangeReusedAfterRemove(t *testing.T) {
	root := t.TempDir()
	r := newStateRuntime(t, root)
	ctx := context.Background()
	for _, id := range []string{"a", "b", "c"} {
		if err := r.Create(ctx, container.Config{ID: id, Lower: "/", Cmd: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
	}
	a, b := idBase(t, r, "a"), idBase(t, r, "b")
	if err := r.Remove(ctx, "a", false); err != nil {
		t.Fatal(err)
	}
	if err := r.Create(ctx, container.Config{ID: "d", Lower: "/", Cmd: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if got := idBase(t, r, "d"); got != a {
		t.Errorf("after removing a (range %d), d got %d", a, got)
	}
	// b dies half-way through a create: only its claim is left.
	if err := os.RemoveAll(filepath.Join(root, "c", "b")); err != nil {
		t.Fatal(err)
	}
	if err := r.Create(ctx, container.Config{ID: "e", Lower: "/", Cmd: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if got := idBase(t, r, "e"); got != b {
		t.Errorf("b's stale claim on %d: e got %d", b, got)
	}
}

// TestIDRangesOfEarlierStateKept: containers recorded before id ranges
// were claimed (a config holding IDBase, no claims) keep their ranges.
func TestIDRangesOfEarlierStateKept(t *testing.T) {
	root := t.TempDir()
	r := newStateRuntime(t, root)
	ctx := context.Background()
	// Write the state an earlier zos left: configs only.
	for i, id := range []string{"old1", "old2"} {
		if err := r.Create(ctx, container.Config{ID: id, Lower: "/", Cmd: []string{"true"}}); err != nil {
			t.Fatal(err)
		}
		p := filepath.Join(root, "c", id, "config.json")
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		var c map[string]any
		if err := json.Unmarshal(b, &c); err != nil {
			t.Fatal(err)
		}
		c["id_base"] = (16 + i) << 16
		if b, err = json.Marshal(c); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, b, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.RemoveAll(filepath.Join(root, "uids")); err != nil {
		t.Fatal(err)
	}
	if err := r.Create(ctx, container.Config{ID: "new", Lower: "/", Cmd: []string{"true"}}); err != nil {
		t.Fatal(err)
	}
	if got, want := idBase(t, r, "new"), uint32(18<<16); got != want {
		t.Errorf("new container's id base %d, want %d (after the earlier containers' ranges)", got, want)
	}
}
