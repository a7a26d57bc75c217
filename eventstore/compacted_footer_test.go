package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// compactedLastSegment builds a store whose last segment is a compacted
// one holding the stub of stream "gone", whose tombstone was in a later
// segment that is lost; the compacted segment's footer lists the deletion
// and the segment ends with a tombstone of its own. It returns the
// directory, without a checkpoint, and the last segment's id.
func compactedLastSegment(t *testing.T) (string, uint32) {
	t.Helper()
	dir := dtFastTempDir(t)
	s := dtOpen(t, dir, holeOpts()...)
	for i := range 12 {
		dtAppend(t, s, "kept", []batpak.Event{holePad("k", i)})
	}
	for i := range 120 { // more streams than it takes tombstones to seal the segment
		dtAppend(t, s, fmt.Sprint("d", i), []batpak.Event{sweepEvent("d", i, 1, 20)})
	}
	dtAppend(t, s, "gone", []batpak.Event{sweepEvent("g", 0, 1, 20)}) // the last event
	start := len(dtSegments(t, dir))
	for i := 0; len(dtSegments(t, dir)) == start; i++ { // tombstones until the segment is sealed
		if err := s.DeleteStream(context.Background(), dtCoord(fmt.Sprint("d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteStream(context.Background(), dtCoord("gone")); err != nil { // in the next segment
		t.Fatal(err)
	}
	if _, err := s.Compact(context.Background()); err != nil {
		t.Fatal(err)
	}
	dtClose(t, s)

	// Lose everything after the segment that held "gone": only the
	// compacted segments are left, the last of them holding "gone"'s stub.
	segs := dtSegments(t, dir)
	var last uint32
	for _, id := range segs {
		data, err := os.ReadFile(filepath.Join(dir, segment.FileName(id)))
		if err != nil {
			t.Fatal(err)
		}
		if ix, _, err := segment.ReadFooter(data, id); err == nil && len(ix.Deleted) > 0 && last == 0 {
			last = id
		}
	}
	if last == 0 {
		t.Fatal("no compacted segment lists the deletion")
	}
	for _, id := range segs {
		if id > last {
			if err := os.Remove(filepath.Join(dir, segment.FileName(id))); err != nil {
				t.Fatal(err)
			}
		}
	}
	_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
	return dir, last
}

// Found by TestSim (seed 500190, long mode): when a compacted segment is
// the last one (the active segment after it was lost and, blank, removed),
// its footer may be the only record of a stream's deletion. A damaged
// footer there was taken for an interrupted seal and cut, and the deleted
// stream came back. Also, the checkpoint written at Close was ignored
// whenever its last event was a stub in a hole frame.
func TestDamagedFooterOfLastCompactedSegment(t *testing.T) {
	dir, last := compactedLastSegment(t)
	s := dtOpen(t, dir, holeOpts()...)
	if listed(s, "gone") {
		t.Fatal(`"gone" is listed after the open`)
	}
	dtClose(t, s)

	// The checkpoint that Close wrote covers a stub as its last event, and
	// is used.
	s = dtOpen(t, dir, holeOpts()...)
	if cs := s.Stats().ColdStart; cs.Path != "checkpoint" {
		t.Fatalf("reopen after Close: path %s, checkpoint ignored: %q", cs.Path, cs.CheckpointIgnored)
	}
	dtClose(t, s)

	// A damaged footer of that last, compacted segment is damage: open
	// refuses (with or without the checkpoint), Verify reports it.
	path := filepath.Join(dir, segment.FileName(last))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	dtFlip(t, path, fi.Size()-segment.TrailerSize-3, 0x10)
	for _, withCheckpoint := range []bool{true, false} {
		if !withCheckpoint {
			_ = os.Remove(filepath.Join(dir, eventstore.CheckpointFileName))
		}
		for _, open := range []func(string, ...eventstore.Option) (*eventstore.Store, error){eventstore.Open, eventstore.OpenReadOnly} {
			s, err := open(dir, holeOpts()...)
			if err == nil {
				visible := listed(s, "gone")
				_ = s.Close()
				t.Fatalf("open with the compacted last segment's footer damaged (checkpoint %v) succeeded; \"gone\" listed: %v", withCheckpoint, visible)
			}
			if !errors.Is(err, batpak.ErrCorrupt) {
				t.Fatalf("open: %v, want ErrCorrupt", err)
			}
		}
		rep, err := eventstore.Verify(dir)
		if err != nil || rep.OK() {
			t.Fatalf("Verify with the compacted last segment's footer damaged: ok %v, %v, warnings %v", rep.OK(), err, rep.Warnings)
		}
	}

	// Repair rewrites the footer from the frames. The tombstone of "gone"
	// was in a lost segment; the compacted segment holds one of its own,
	// so the deletion survives the footer.
	if _, err := eventstore.Repair(dir); err != nil {
		t.Fatal(err)
	}
	s = dtOpen(t, dir, holeOpts()...)
	defer dtClose(t, s)
	for _, entity := range []string{"gone", "d0"} {
		if listed(s, entity) {
			t.Fatalf("%q is listed again after Repair rewrote the compacted segment's footer", entity)
		}
	}
}

// Found by TestSim (seed 300142, long mode): a compacted last segment cut
// before or inside its footer was taken for an active segment with a torn
// tail; it lost the footer that was the only record of a deletion, and the
// deleted stream came back. Compaction writes its files whole, so a cut
// one is damage: open refuses it, Verify reports it, and Repair seals it
// again from its frames (which keep the deletion in a tombstone).
func TestCutCompactedLastSegment(t *testing.T) {
	for _, cut := range []struct {
		name string
		at   func(frameEnd, size int64) int64
	}{
		{"footer-gone", func(frameEnd, _ int64) int64 { return frameEnd }},
		{"inside-footer", func(frameEnd, size int64) int64 { return frameEnd + (size-frameEnd)/2 }},
		{"inside-frames", func(frameEnd, _ int64) int64 { return frameEnd - 5 }}, // in the last tombstone
	} {
		t.Run(cut.name, func(t *testing.T) {
			dir, last := compactedLastSegment(t)
			path := filepath.Join(dir, segment.FileName(last))
			data, err := os.ReadFile(path)
			if err != nil {
				t.Fatal(err)
			}
			_, frameEnd, err := segment.ReadFooter(data, last)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.Truncate(path, cut.at(frameEnd, int64(len(data)))); err != nil {
				t.Fatal(err)
			}
			for _, open := range []func(string, ...eventstore.Option) (*eventstore.Store, error){eventstore.Open, eventstore.OpenReadOnly} {
				s, err := open(dir, holeOpts()...)
				if err == nil {
					visible := listed(s, "gone")
					_ = s.Close()
					t.Fatalf("open of a store whose compacted last segment was cut succeeded; \"gone\" listed: %v", visible)
				}
				var ce *segment.CorruptError
				if !errors.As(err, &ce) || ce.Segment != last {
					t.Fatalf("open: %v, want a CorruptError naming segment %d", err, last)
				}
			}
			if rep, err := eventstore.Verify(dir); err != nil || rep.OK() {
				t.Fatalf("Verify of the cut compacted segment: ok %v, %v", rep.OK(), err)
			}
			rep, err := eventstore.Repair(dir)
			if err != nil {
				t.Fatal(err)
			}
			s := dtOpen(t, dir, holeOpts()...)
			defer dtClose(t, s)
			for _, entity := range []string{"gone", "d0"} {
				// A deletion whose only record was cut comes back, and
				// Repair says so.
				if listed(s, entity) && !slices.Contains(rep.LostDeletions, dtCoord(entity)) {
					t.Fatalf("%q is listed again after Repair sealed the cut compacted segment; lost deletions reported: %v", entity, rep.LostDeletions)
				}
			}
			if !listed(s, "kept") {
				t.Fatal(`"kept" is not listed after Repair`)
			}
		})
	}
}

// listed reports whether Streams lists the stream of entity.
func listed(s *eventstore.Store, entity string) bool {
	for info := range s.Streams() {
		if info.Coordinate == dtCoord(entity) {
			return true
		}
	}
	return false
}
