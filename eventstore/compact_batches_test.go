package eventstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// Compaction keeps the markers of a batch whose events all stay, and drops
// those of a batch that loses one (a hole stands for it), and its header
// says the file was written whole. So a compacted segment cut after it was
// written is refused, even where the cut took every hole: here the last
// segment, cut after the whole batch or after the surviving keyed event of
// the split one, with the later segments and the checkpoint gone. Scanned
// as an active segment, the first cut loses acknowledged events in
// silence and the second records the split request's key with one event
// of its two. Repair seals the segment again, and a retry of the whole
// batch is answered with all its receipts.
func TestCompactionKeepsWholeBatches(t *testing.T) {
	for _, tc := range []struct {
		name string
		cut  func(frames []dtFrame, kept []batpak.Receipt) int64
	}{
		{"after-the-whole-batch", func(frames []dtFrame, _ []batpak.Receipt) int64 {
			i := slices.IndexFunc(frames, func(f dtFrame) bool { return f.Rec.Kind == segment.KindBatchCommit })
			return frames[i].End()
		}},
		{"after-the-split-batch-keyed-event", func(frames []dtFrame, kept []batpak.Receipt) int64 {
			i := slices.IndexFunc(frames, func(f dtFrame) bool { return f.Rec.Seq == kept[1].Sequence+1 && !f.Rec.IsMarker() })
			return frames[i].End()
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4096), eventstore.WithSyncMode(eventstore.SyncNone))
			key := batpak.WithIdempotencyKey("pay-1")
			kept := dtBatch(t, s, "kept", []string{"a", "b"}, key)
			dtBatch(t, s, "split", []string{"c", "gone"}, batpak.WithIdempotencyKey("pay-2"))
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
			for _, f := range frames {
				if f.Rec.Seq > kept[1].Sequence+2 && !f.Rec.IsMarker() {
					break
				}
				kinds = append(kinds, f.Rec.Kind)
			}
			// BEGIN, a, b, COMMIT; then the split batch without markers: c, then its hole.
			ev := uint16(dtKind)
			want := []uint16{segment.KindBatchBegin, ev, ev, segment.KindBatchCommit, ev, segment.KindHole}
			if !slices.Equal(kinds, want) {
				t.Fatalf("frames %#x, want %#x", kinds, want)
			}
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			if h, err := segment.DecodeHeader(data); err != nil || h.Flags != segment.HeaderWrittenWhole {
				t.Fatalf("the compacted segment's header: %+v, %v; want flags %#x", h, err, segment.HeaderWrittenWhole)
			}

			// Lose the footer and what follows the cut, the later segments
			// and the checkpoint: the segment is the last one, without a hole.
			for _, id := range dtSegments(t, dir)[1:] {
				if err := os.Remove(dtSegPath(dir, id)); err != nil {
					t.Fatal(err)
				}
			}
			if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, tc.cut(frames, kept)); err != nil {
				t.Fatal(err)
			}
			for _, open := range []func(string, ...eventstore.Option) (*eventstore.Store, error){eventstore.Open, eventstore.OpenReadOnly} {
				s, err := open(dir)
				if err == nil {
					_ = s.Close()
					t.Fatal("a cut compacted segment was opened as an active one")
				}
				var ce *segment.CorruptError
				if !errors.As(err, &ce) || ce.Segment != 1 || !errors.Is(err, batpak.ErrCorrupt) {
					t.Fatalf("open: %v, want a CorruptError naming segment 1", err)
				}
			}
			if rep, err := eventstore.Verify(dir); err != nil || rep.OK() {
				t.Fatalf("Verify of the cut compacted segment: ok %v, %v", rep.OK(), err)
			}
			if _, err := eventstore.Repair(dir); err != nil {
				t.Fatal(err)
			}
			s = dtOpen(t, dir)
			defer s.Close()
			again := dtBatch(t, s, "kept", []string{"a", "b"}, key)
			if !slices.Equal(again, kept) {
				t.Fatalf("the retry got %+v, the request %+v", again, kept)
			}
		})
	}
}
