package hub

import (
	"context"
	"encoding/json"
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/zosgrid/zos/internal/zostest"
	"github.com/zosgrid/zos/key"
)

// Job records are kept in the metadata namespace: a hub started on the same
// backends answers for finished jobs, and reports jobs the previous process
// left queued or running as failed ("interrupted by restart").
func TestConvertJobsSurviveRestart(t *testing.T) {
	addr := startRedis(t)
	zostest.CheckLeaks(t)
	clock := zostest.NewClock(time.Now())
	blk := []byte("converted block")
	started := make(chan string, 4)
	convert := func(ctx context.Context, req ConvertRequest, out string, progress func(ConvertProgress)) error {
		started <- req.Image
		if req.Image == "slow" {
			<-ctx.Done()
			return ctx.Err()
		}
		return os.WriteFile(out, idList(blockID(blk)), 0o644)
	}
	cfg := Config{Blocks: "redis://" + addr + "/1", Meta: "redis://" + addr + "/2", Now: clock.Now,
		ListBlocks: listFile, TempDir: t.TempDir(), Convert: convert, MaxJobs: 1}
	start := func() *testHub {
		s, err := New(context.Background(), cfg)
		if err != nil {
			t.Fatal(err)
		}
		return serveTestHub(t, s, clock)
	}
	status := func(h *testHub, id string) JobStatus {
		var st JobStatus
		json.Unmarshal(h.want(200, "GET", "/api/v1/convert/"+id, nil, key.Private{}), &st)
		return st
	}

	h1 := start()
	h1.want(201, "POST", "/api/v1/block", blk, h1.key)
	submit := func(img string) string {
		var st JobStatus
		json.Unmarshal(h1.want(202, "POST", "/api/v1/convert", []byte(`{"image":"`+img+`"}`), h1.key), &st)
		return st.ID
	}
	done := submit("app")
	zostest.WaitFor(t, 10*time.Second, func() error {
		if st := status(h1, done); st.State != "done" {
			return fmt.Errorf("job is %s", st.State)
		}
		return nil
	})
	running := submit("slow")
	queued := submit("queued") // MaxJobs 1: waits behind "slow"
	zostest.WaitFor(t, 10*time.Second, func() error {
		if st := status(h1, running); st.State != "running" {
			return fmt.Errorf("job is %s", st.State)
		}
		return nil
	})
	want := status(h1, done)

	// A second process on the same backends, as after a crash of the first
	// (which is still running here, so its records are not touched by a
	// clean shutdown).
	h2 := start()
	if got := status(h2, done); got.State != "done" || got.Hash == "" || got.Hash != want.Hash || got.Image != "app" || got.User != want.User {
		t.Errorf("finished job after restart: %+v, want %+v", got, want)
	}
	for _, id := range []string{running, queued} {
		got := status(h2, id)
		if got.State != "failed" || got.Error != msgInterrupted || got.Finished == nil {
			t.Errorf("job %s after restart: %+v, want failed: %s", id, got, msgInterrupted)
		}
	}
	h2.want(404, "GET", "/api/v1/convert/nope", nil, key.Private{})

	// The interrupted state itself is persisted: a third start agrees.
	h3 := start()
	if got := status(h3, running); got.State != "failed" || got.Error != msgInterrupted {
		t.Errorf("job after second restart: %+v", got)
	}
}

// A corrupt job index stops the hub with a clear error instead of being
// silently replaced (which would lose every job record).
func TestCorruptJobIndex(t *testing.T) {
	addr := startRedis(t)
	zostest.CheckLeaks(t)
	meta := "redis://" + addr + "/2"
	kv, err := openKV(context.Background(), meta)
	if err != nil {
		t.Fatal(err)
	}
	defer kv.close()
	if err := kv.set(context.Background(), jobIndexKey, []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	_, err = New(context.Background(), Config{Blocks: "redis://" + addr + "/1", Meta: meta, ListBlocks: listFile})
	if err == nil || !strings.Contains(err.Error(), "bad index") {
		t.Fatalf("New with a corrupt job index: %v", err)
	}
	if b, _, _ := kv.get(context.Background(), jobIndexKey); string(b) != "{not json" {
		t.Errorf("job index changed to %q", b)
	}
}
