package store_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"

	"github.com/zosgrid/zos/flist"
	"github.com/zosgrid/zos/flist/store"
	"github.com/zosgrid/zos/flist/store/storetest"
	"github.com/zosgrid/zos/internal/zostest"
)

func dirHarness(t *testing.T) (storetest.Harness, *store.Dir) {
	d, err := store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return storetest.Harness{
		Store: d,
		Corrupt: func(id flist.ID, data []byte) {
			if err := os.WriteFile(d.Path(id), data, 0o644); err != nil {
				t.Fatal(err)
			}
		},
	}, d
}

func TestDirConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness { h, _ := dirHarness(t); return h })
}

func TestDirFlatFallback(t *testing.T) {
	d, _ := store.NewDir(t.TempDir())
	b, ct, _ := flist.EncodeBlock([]byte("flat"))
	os.WriteFile(filepath.Join(d.Root(), b.ID.String()), ct, 0o644)
	if got, err := d.Get(context.Background(), b.ID); err != nil || string(got) != string(ct) {
		t.Fatalf("flat layout not read: %v", err)
	}
}

func TestHTTPConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		h, d := dirHarness(t)
		srv := httptest.NewServer(http.FileServer(http.Dir(d.Root())))
		t.Cleanup(srv.Close)
		return storetest.Harness{
			Store:    store.NewHTTP(srv.URL, srv.Client()),
			Put:      func(id flist.ID, data []byte) { d.Set(context.Background(), id, data) },
			Corrupt:  h.Corrupt,
			ReadOnly: true,
		}
	})
}

func TestRouterConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		h1, d1 := dirHarness(t)
		_, d2 := dirHarness(t)
		r := store.NewRouter(nil)
		r.Add(flist.Route{Start: 0, End: 0xff, URL: "dir://" + d1.Root()}, d1)
		r.Add(flist.Route{Start: 0, End: 0xff, URL: "dir://" + d2.Root()}, d2)
		return storetest.Harness{
			Store: r,
			Corrupt: func(id flist.ID, data []byte) {
				// Both replicas bad: the router must report corruption.
				h1.Corrupt(id, data)
				os.WriteFile(d2.Path(id), data, 0o644)
			},
		}
	})
}

func TestRouterFailover(t *testing.T) {
	ctx := context.Background()
	h1, d1 := dirHarness(t)
	_, d2 := dirHarness(t)
	r := store.NewRouter(nil)
	r.Add(flist.Route{Start: 0, End: 0xff}, d1)
	r.Add(flist.Route{Start: 0, End: 0xff}, d2)
	b, ct, _ := flist.EncodeBlock([]byte("replicated"))
	if err := r.Set(ctx, b.ID, ct); err != nil {
		t.Fatal(err)
	}
	for _, d := range []*store.Dir{d1, d2} {
		if ok, _ := d.Has(ctx, b.ID); !ok {
			t.Fatalf("block not replicated to %s", d.Root())
		}
	}
	h1.Corrupt(b.ID, []byte("garbage"))
	if got, err := r.Get(ctx, b.ID); err != nil || string(got) != string(ct) {
		t.Fatalf("router did not fail over from a corrupt copy: %v", err)
	}
	os.Remove(d2.Path(b.ID))
	if ok, _ := r.Has(ctx, b.ID); ok {
		t.Fatal("Has must be false when a replica misses the block")
	}
}

func TestRouterRanges(t *testing.T) {
	ctx := context.Background()
	_, lo := dirHarness(t)
	_, hi := dirHarness(t)
	r, err := store.Open([]string{"00-7f=dir://" + lo.Root(), "80-ff=dir://" + hi.Root()}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	for i := range 40 {
		b, ct, _ := flist.EncodeBlock([]byte(fmt.Sprint("range ", i)))
		if err := r.Set(ctx, b.ID, ct); err != nil {
			t.Fatal(err)
		}
		inLo, _ := lo.Has(ctx, b.ID)
		inHi, _ := hi.Has(ctx, b.ID)
		if inLo != (b.ID[0] < 0x80) || inHi != (b.ID[0] >= 0x80) {
			t.Fatalf("block %s routed wrong: lo=%v hi=%v", b.ID, inLo, inHi)
		}
	}
}

func TestParseRoute(t *testing.T) {
	for _, tc := range []struct {
		in      string
		s, e    uint8
		url     string
		wantErr bool
	}{
		{"dir:///tmp/x", 0, 0xff, "dir:///tmp/x", false},
		{"00-7f=zdb://h:1/ns", 0, 0x7f, "zdb://h:1/ns", false},
		{"80-ff=http://hub/blocks", 0x80, 0xff, "http://hub/blocks", false},
		{"ff-00=dir:///x", 0, 0, "", true},
		{"zz-ff=dir:///x", 0, 0, "", true},
		{"", 0, 0, "", true},
	} {
		r, err := store.ParseRoute(tc.in)
		if (err != nil) != tc.wantErr {
			t.Errorf("ParseRoute(%q) err = %v", tc.in, err)
			continue
		}
		if err == nil && (r.Start != tc.s || r.End != tc.e || r.URL != tc.url) {
			t.Errorf("ParseRoute(%q) = %+v", tc.in, r)
		}
	}
	if _, err := store.OpenURL("ftp://x", store.Options{}); !errors.Is(err, store.ErrBadURL) {
		t.Errorf("ftp:// accepted: %v", err)
	}
}

func TestRoutesStripPassword(t *testing.T) {
	r, err := store.Open([]string{"zdb://user:secret@127.0.0.1:1/ns"}, store.Options{})
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	if got := r.Routes(true)[0].URL; got != "zdb://user@127.0.0.1:1/ns" {
		t.Fatalf("stripped URL = %q", got)
	}
	if got := r.Routes(false)[0].URL; got != "zdb://user:secret@127.0.0.1:1/ns" {
		t.Fatalf("unstripped URL = %q", got)
	}
}

func TestParseZdbURL(t *testing.T) {
	c, err := store.ParseZdbURL("zdb://u:pw@hub.example:9901/myns")
	if err != nil || c.Addr != "hub.example:9901" || c.Namespace != "myns" || c.Password != "pw" || c.Network != "tcp" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = store.ParseZdbURL("zdb://hub.example")
	if err != nil || c.Addr != "hub.example:9900" || c.Namespace != "" {
		t.Fatalf("%+v %v", c, err)
	}
	c, err = store.ParseZdbURL("zdb:///run/zdb.sock")
	if err != nil || c.Network != "unix" || c.Addr != "/run/zdb.sock" {
		t.Fatalf("%+v %v", c, err)
	}
}

// startRedis runs a real redis-server on a free loopback port.
func startRedis(t *testing.T) string {
	bin := zostest.RequiresBinary(t, "redis-server")
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	port := l.Addr().(*net.TCPAddr).Port
	l.Close()
	cmd := exec.Command(bin, "--port", fmt.Sprint(port), "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { cmd.Process.Kill(); cmd.Wait() })
	addr := fmt.Sprintf("127.0.0.1:%d", port)
	zostest.WaitFor(t, 10*time.Second, func() error {
		c, err := net.Dial("tcp", addr)
		if err == nil {
			c.Close()
		}
		return err
	})
	return addr
}

func TestZdbConformanceRedis(t *testing.T) {
	addr := startRedis(t)
	raw := redis.NewClient(&redis.Options{Addr: addr, Protocol: 2, DisableIdentity: true})
	t.Cleanup(func() { raw.Close() })
	storetest.Run(t, func(t *testing.T) storetest.Harness {
		raw.FlushAll(context.Background())
		s, err := store.OpenURL("zdb://"+addr, store.Options{})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return storetest.Harness{
			Store: s,
			Corrupt: func(id flist.ID, data []byte) {
				if err := raw.Set(context.Background(), string(id[:]), data, 0).Err(); err != nil {
					t.Fatal(err)
				}
			},
		}
	})
}

func TestZdbDownThenUp(t *testing.T) {
	ctx := context.Background()
	l, _ := net.Listen("tcp", "127.0.0.1:0")
	addr := l.Addr().String()
	l.Close()
	s := store.NewZdb(store.ZdbConfig{Network: "tcp", Addr: addr})
	defer s.Close()
	var id flist.ID
	if _, err := s.Get(ctx, id); err == nil || errors.Is(err, store.ErrNotFound) {
		t.Fatalf("Get on a down server = %v; want a connection error", err)
	}
	bin := zostest.RequiresBinary(t, "redis-server")
	_, port, _ := net.SplitHostPort(addr)
	cmd := exec.Command(bin, "--port", port, "--bind", "127.0.0.1", "--save", "", "--appendonly", "no", "--dir", t.TempDir())
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	zostest.WaitFor(t, 10*time.Second, func() error {
		_, err := s.Get(ctx, id)
		if errors.Is(err, store.ErrNotFound) {
			return nil
		}
		return fmt.Errorf("still failing: %v", err)
	})
}

func FuzzParseRoute(f *testing.F) {
	for _, s := range []string{"00-7f=dir:///x", "dir:///x", "zz-00=", "ab-cd=zdb://u:p@h:1/ns"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		r, err := store.ParseRoute(s)
		if err == nil && (r.Start > r.End || r.URL == "") {
			t.Fatalf("ParseRoute(%q) = %+v", s, r)
		}
	})
}

// Router.Missing asks stores without a batch answer id by id, reports ids
// without a route as missing, and keeps the caller's order.
func TestRouterMissingMixed(t *testing.T) {
	ctx := context.Background()
	d, err := store.NewDir(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	r := store.NewRouter(nil)
	r.Add(flist.Route{Start: 0x00, End: 0x7f}, d)
	var ids, want []flist.ID
	for i := 0; len(ids) < 40; i++ {
		blk, ct, err := flist.EncodeBlock([]byte(fmt.Sprint(i)))
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, blk.ID)
		switch {
		case blk.ID[0] > 0x7f:
			want = append(want, blk.ID) // no route
		case i%2 == 0:
			if err := d.Set(ctx, blk.ID, ct); err != nil {
				t.Fatal(err)
			}
		default:
			want = append(want, blk.ID)
		}
	}
	got, err := r.Missing(ctx, ids)
	if err != nil {
		t.Fatal(err)
	}
	if fmt.Sprint(got) != fmt.Sprint(want) {
		t.Errorf("Missing = %v\nwant %v", got, want)
	}
	r.Close()
	if _, err := r.Missing(ctx, ids); !errors.Is(err, store.ErrClosed) {
		t.Errorf("Missing on a closed router: %v", err)
	}
}
