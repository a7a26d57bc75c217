package eventstore_test

import (
	"context"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// Compaction keeps the markers of a batch whose events all stay, and drops
// those of a batch that loses one (a hole stands for it). So when the
// compacted segment's footer is lost and the segment is scanned (here: the
// last segment, cut after the batch), the frames alone still say which
// events the keyed request wrote, and its retry is answered with all its
// receipts.
func TestCompactionKeepsWholeBatches(t *testing.T) {
	dir := t.TempDir()
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4096), eventstore.WithSyncMode(eventstore.SyncNone))
	key := batpak.WithIdempotencyKey("pay-1")
	kept := dtBatch(t, s, "kept", []string{"a", "b"}, key)
	dtBatch(t, s, "split", []string{"gone", "c"})
	for i := 0; dtPos(t, s, s.LastSequence()).Segment == 1; i++ {
		dtAppend(t, s, "filler", dtEvents("filler", 1))
	}
	if err := s.DeleteStream(context.Background(), dtCoord("gone")); err != nil {
		t.Fatal(err)
	}
	if rep, err := s.Compact(context.Background()); err != nil || rep.SegmentsRewritten == 0 {
		t.Fatalf("compact: %+v, %v", rep, err)
	}
	dtClose(t, s)

	path := dtSegPath(dir, 1)
	frames, _, sealed := dtScan(t, path, 1)
	if !sealed {
		t.Fatal("the compacted segment has no footer")
	}
	var kinds []uint16
	commitEnd := int64(-1)
	for _, f := range frames {
		if f.Rec.Seq > kept[1].Sequence+2 && !f.Rec.IsMarker() {
			break
		}
		kinds = append(kinds, f.Rec.Kind)
		if f.Rec.Kind == segment.KindBatchCommit && commitEnd < 0 {
			commitEnd = f.End()
		}
	}
	// BEGIN, a, b, COMMIT; then the split batch without markers: its hole, then c.
	ev := uint16(dtKind)
	want := []uint16{segment.KindBatchBegin, ev, ev, segment.KindBatchCommit, segment.KindHole, ev}
	if !slices.Equal(kinds, want) {
		t.Fatalf("frames %#x, want %#x", kinds, want)
	}

	// Lose everything after the kept batch: the footer, the later
	// segments and the checkpoint. The segment is then the last one, and
	// its frames are scanned.
	ids := dtSegments(t, dir)
	for _, id := range ids[1:] {
		if err := os.Remove(dtSegPath(dir, id)); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, commitEnd); err != nil {
		t.Fatal(err)
	}
	s = dtOpen(t, dir)
	defer s.Close()
	if cs := s.Stats().ColdStart; cs.SegmentsScanned != 1 {
		t.Fatalf("the segment was not scanned: %+v", cs)
	}
	again := dtBatch(t, s, "kept", []string{"a", "b"}, key)
	if !slices.Equal(again, kept) {
		t.Fatalf("the retry got %+v, the request %+v", again, kept)
	}
}
