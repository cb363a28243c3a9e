package store_test

import (
	"context"
	"testing"

	"github.com/redis/go-redis/v9"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/store"
	"github.com/zosgrid/zos/flist/store/storetest"
	"github.com/zosgrid/zos/zdb/zdbtest"
)

// TestZdbConformanceZdbServer runs the suite against a password-protected
// namespace of the real zdb server, selected with SELECT ns password.
func TestZdbConformanceZdbServer(t *testing.T) {
	ctx := context.Background()
	addr := zdbtest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true, PoolSize: 1})
	t.Cleanup(func() { admin.Close() })
	n := 0
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		n++
		ns := "blocks" + string(rune('a'+n))
		for _, args := range [][]any{{"NSNEW", ns}, {"NSSET", ns, "password", "s3cret"}} {
			if err := admin.Do(ctx, args...).Err(); err != nil {
				t.Fatalf("%v: %v", args, err)
			}
		}
		s, err := store.OpenURL("zdb://user:s3cret@"+addr+"/"+ns, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return storetest.Harness{
			Store: s,
			Corrupt: func(id flist.ID, data []byte) {
				c := admin.Conn()
				defer c.Close()
				if err := c.Do(ctx, "SELECT", ns, "s3cret").Err(); err != nil {
					t.Fatal(err)
				}
				if err := c.Do(ctx, "SET", id[:], data).Err(); err != nil && err != redis.Nil {
					t.Fatal(err)
				}
			},
		}
	})
}

func TestZdbWrongPassword(t *testing.T) {
	ctx := context.Background()
	addr := zdbtest.Start(t)
	admin := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	defer admin.Close()
	admin.Do(ctx, "NSNEW", "private")
	admin.Do(ctx, "NSSET", "private", "password", "right")
	admin.Do(ctx, "NSSET", "private", "public", "0")
	s, _ := store.OpenURL("zdb://u:wrong@"+addr+"/private", store.Options{})
	defer s.Close()
	b, ct, _ := flist.EncodeBlock([]byte("x"))
	if err := s.Set(ctx, b.ID, ct); err == nil {
		t.Fatal("write with a wrong namespace password succeeded")
	}
}

// Missing answers a batch (larger than one pipeline) with exactly the ids
// the namespace lacks, in order, on the real zdb server; the Router asks it
// the same way.
func TestZdbMissing(t *testing.T) {
	ctx := context.Background()
	z := store.NewZdb(store.ZdbConfig{Network: "tcp", Addr: zdbtest.Start(t)})
	t.Cleanup(func() { z.Close() })
	var ids, want []flist.ID
	for i := range 1500 {
		blk, ct, err := flist.EncodeBlock([]byte{byte(i), byte(i >> 8)})
		if err != nil {
			t.Fatal(err)
		}
		id := blk.ID
		ids = append(ids, id)
		if i%7 == 0 {
			if err := z.Set(ctx, id, ct); err != nil {
				t.Fatal(err)
			}
		} else {
			want = append(want, id)
		}
	}
	r := store.NewRouter(nil)
	r.Add(flist.Route{Start: 0, End: 0xff}, z)
	for name, f := range map[string]func(context.Context, []flist.ID) ([]flist.ID, error){"zdb": z.Missing, "router": r.Missing} {
		got, err := f(ctx, ids)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if len(got) != len(want) {
			t.Fatalf("%s: %d missing, want %d", name, len(got), len(want))
		}
		for i := range got {
			if got[i] != want[i] {
				t.Fatalf("%s: missing[%d] = %s, want %s", name, i, got[i], want[i])
			}
		}
	}
	z.Close()
	if _, err := z.Missing(ctx, ids[:1]); err == nil {
		t.Error("Missing on a closed store succeeded")
	}
}
