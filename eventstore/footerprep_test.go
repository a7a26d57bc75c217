package eventstore

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

// TestFooterPreparedAhead writes segments of more events than the footer
// goroutine's step, in batches over a few streams with a deletion and a
// reopen in the middle (the footer then reads the events written before
// the open from their frames), and checks every sealed segment's footer
// against its frames: each entry, each stream's tail and the deleted
// streams.
func TestFooterPreparedAhead(t *testing.T) {
	seed := rand.Uint64()
	r := rand.New(rand.NewPCG(seed, 0))
	dir := t.TempDir()
	ctx := context.Background()
	payload := batpak.RawPayload(make([]byte, 300))
	deletedAt := uint64(0)
	for round := range 2 {
		s, err := Open(dir, WithSyncMode(SyncNone), WithSegmentMaxBytes(4<<20), WithCheckpointEvery(0))
		if err != nil {
			t.Fatal(err)
		}
		for written := 0; written < 30_000; {
			items := make([]batpak.BatchItem, 1+r.IntN(50))
			for i := range items {
				items[i] = batpak.BatchItem{Coordinate: batpak.Coordinate{Entity: fmt.Sprint("e", r.IntN(40)), Scope: fmt.Sprint("s", r.IntN(2))},
					Event: batpak.Event{Kind: kind.Custom(1, uint16(1+r.IntN(3))), Payload: payload}}
			}
			if _, err := s.AppendBatch(ctx, items); err != nil {
				t.Fatal(err)
			}
			written += len(items)
			if round == 0 && deletedAt == 0 && written > 12_000 {
				if _, err := s.Append(ctx, batpak.Coordinate{Entity: "gone", Scope: "s0"}, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: payload}}); err != nil {
					t.Fatal(err)
				}
				if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: "gone", Scope: "s0"}); err != nil {
					t.Fatal(err)
				}
				deletedAt = s.ix.lastSeq()
			}
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
	}
	names, err := filepath.Glob(filepath.Join(dir, "*.seg"))
	if err != nil || len(names) < 4 {
		t.Fatalf("%d segments (%v), want at least 4", len(names), err)
	}
	for i, name := range names[:len(names)-1] {
		checkFooterAgainstFrames(t, seed, name, uint32(i+1), deletedAt)
	}
}

// checkFooterAgainstFrames compares the footer of sealed segment id in
// file name with what its frames hold.
func checkFooterAgainstFrames(t *testing.T, seed uint64, name string, id uint32, deletedAt uint64) {
	t.Helper()
	data, err := os.ReadFile(name)
	if err != nil {
		t.Fatal(err)
	}
	footer, _, err := segment.ReadFooter(data, id)
	if err != nil {
		t.Fatalf("segment %d: %v", id, err)
	}
	type tail struct {
		version uint64
		hash    [32]byte
	}
	tails := map[[2]string]tail{}
	var lastSeq uint64
	n := 0
	_, err = segment.ScanWith(data, id, name, segment.ScanOptions{}, func(off int64, size int, rec *segment.Record) error {
		if rec.IsMarker() {
			return nil
		}
		if n >= len(footer.Entries) {
			return fmt.Errorf("more events than the footer's %d", len(footer.Entries))
		}
		e := footer.Entries[n]
		n++
		got := fmt.Sprint(e.Seq, e.Version, e.Timestamp, e.ID, e.Correlation, e.Causation, e.Kind, e.Flags,
			footer.Strings[e.Entity], footer.Strings[e.Scope], e.Segment, e.Offset, e.Length)
		want := fmt.Sprint(rec.Seq, rec.Version, rec.Timestamp, rec.ID, rec.Correlation, rec.Causation, rec.Kind, uint16(0),
			rec.Entity, rec.Scope, id, off, size)
		if got != want {
			return fmt.Errorf("entry %d is %s, the frame holds %s", n-1, got, want)
		}
		tails[[2]string{rec.Entity, rec.Scope}] = tail{rec.Version, rec.Hash}
		lastSeq = rec.Seq
		return nil
	})
	if err == nil && n != len(footer.Entries) {
		err = fmt.Errorf("%d events, the footer lists %d", n, len(footer.Entries))
	}
	if err != nil {
		t.Fatalf("seed %d: segment %d: %v", seed, id, err)
	}
	if len(footer.Tails) != len(tails) {
		t.Fatalf("seed %d: segment %d: %d tails, %d streams", seed, id, len(footer.Tails), len(tails))
	}
	for _, ft := range footer.Tails {
		if want := tails[[2]string{footer.Strings[ft.Entity], footer.Strings[ft.Scope]}]; ft.Version != want.version || ft.LastHash != want.hash {
			t.Fatalf("seed %d: segment %d: the tail of %q is version %d, the frames end at %d", seed, id, footer.Strings[ft.Entity], ft.Version, want.version)
		}
	}
	wantDeleted := deletedAt != 0 && lastSeq >= deletedAt
	if gotDeleted := len(footer.Deleted) == 1 && footer.Strings[footer.Deleted[0].Entity] == "gone"; gotDeleted != wantDeleted || len(footer.Deleted) > 1 {
		t.Fatalf("seed %d: segment %d (to sequence %d, deletion at %d): deleted streams %v", seed, id, lastSeq, deletedAt, footer.Deleted)
	}
}
