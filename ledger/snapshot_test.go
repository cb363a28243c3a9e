package ledger

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
)

// TestSnapshotRoundTrip stops a history halfway, restores the snapshot into
// a new machine and feeds both the rest: every result and app hash agree,
// and the snapshot encodes the same state as the same bytes.
func TestSnapshotRoundTrip(t *testing.T) {
	keys := testKeys(8)
	g := testGenesis(keys)
	blocks := randomBlocks(t, 7, keys, 120)
	a, _ := New(g)
	half := 60
	for i, txs := range blocks[:half] {
		if _, err := a.ApplyBlock(int64(i+1), txs); err != nil {
			t.Fatal(err)
		}
	}
	snap := a.Snapshot()
	h, hash, err := SnapshotInfo(snap)
	if err != nil || h != int64(half) || !bytes.Equal(hash, a.AppHash()) {
		t.Fatalf("info: %d %x %v", h, hash, err)
	}
	b, err := Restore(g, snap)
	if err != nil {
		t.Fatal(err)
	}
	if b.Height() != int64(half) || !bytes.Equal(b.AppHash(), a.AppHash()) {
		t.Fatalf("restored at %d", b.Height())
	}
	if !bytes.Equal(b.Snapshot(), snap) {
		t.Fatal("a restored machine snapshots to different bytes")
	}
	if n := len(a.Events(EventFilter{})); n == 0 || len(b.Events(EventFilter{})) != n {
		t.Fatal("the event journal was not restored")
	}
	var billed int
	for i, txs := range blocks[half:] {
		ra, _ := a.ApplyBlock(int64(half+i+1), txs)
		rb, err := b.ApplyBlock(int64(half+i+1), txs)
		if err != nil {
			t.Fatal(err)
		}
		if fmt.Sprint(ra) != fmt.Sprint(rb) {
			t.Fatalf("height %d: results differ after restore:\n%v\n%v", half+i+1, ra, rb)
		}
		billed += len(ra.Events)
	}
	if billed == 0 {
		t.Fatal("no billing after the snapshot: the test proves little")
	}
}

// smallSnapshot is the genesis and snapshot of a short random history.
func smallSnapshot(t *testing.T) (Genesis, []byte) {
	keys := testKeys(4)
	g := testGenesis(keys)
	m, _ := New(g)
	for i, txs := range randomBlocks(t, 3, keys, 10) {
		m.ApplyBlock(int64(i+1), txs)
	}
	return g, m.Snapshot()
}

func TestSnapshotRefused(t *testing.T) {
	g, snap := smallSnapshot(t)
	flip := bytes.Clone(snap)
	flip[len(flip)-10] ^= 1
	other := g
	other.ChainID = "other"
	otherFee := g
	otherFee.Params.TxFee++
	for name, c := range map[string]struct {
		g    Genesis
		snap []byte
	}{
		"flipped bit":  {g, flip},
		"truncated":    {g, snap[:len(snap)-1]},
		"empty":        {g, nil},
		"no checksum":  {g, []byte(snapshotMagic)},
		"other magic":  {g, append([]byte("zos-ledger-snapshot 2\n"), snap[len(snapshotMagic):]...)},
		"other chain":  {other, snap},
		"other params": {otherFee, snap},
	} {
		if _, err := Restore(c.g, c.snap); !errors.Is(err, ErrSnapshot) {
			t.Errorf("%s: %v", name, err)
		}
	}
}

// TestSnapshotNullObjectRefused: a snapshot with a sound checksum but a
// null object in any list is refused, naming the kind.
func TestSnapshotNullObjectRefused(t *testing.T) {
	g, snap := smallSnapshot(t)
	body, err := snapshotBodyBytes(snap)
	if err != nil {
		t.Fatal(err)
	}
	for field, kind := range map[string]string{"twins": "twin", "farms": "farm", "nodes": "node", "contracts": "contract", "proposals": "proposal"} {
		var fields map[string]json.RawMessage
		if err := json.Unmarshal(body, &fields); err != nil {
			t.Fatal(err)
		}
		fields[field] = json.RawMessage("[null]")
		bad, _ := json.Marshal(fields)
		sum := sha256.Sum256(bad)
		snap := append([]byte(snapshotMagic+hex.EncodeToString(sum[:])+"\n"), bad...)
		_, err := Restore(g, snap)
		if !errors.Is(err, ErrSnapshot) || !strings.Contains(err.Error(), "null "+kind) {
			t.Errorf("null in %s: %v", field, err)
		}
	}
}

func FuzzRestore(f *testing.F) {
	keys := testKeys(2)
	g := testGenesis(keys)
	m, _ := New(g)
	f.Add(m.Snapshot())
	f.Add([]byte(snapshotMagic + "00\n{}"))
	f.Fuzz(func(t *testing.T, b []byte) {
		r, err := Restore(g, b)
		if err != nil {
			if !errors.Is(err, ErrSnapshot) {
				t.Fatalf("error without ErrSnapshot: %v", err)
			}
			return
		}
		r.ApplyBlock(r.Height()+1, nil) // a restored machine must not panic on the next block
	})
}
