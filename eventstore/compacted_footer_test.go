package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// Found by TestSim (seed 500190, long mode): when a compacted segment is
// the last one (the active segment after it was lost and, blank, removed),
// its footer may be the only record of a stream's deletion. A damaged
// footer there was taken for an interrupted seal and cut, and the deleted
// stream came back. Also, the checkpoint written at Close was ignored
// whenever its last event was a stub in a hole frame.
func TestDamagedFooterOfLastCompactedSegment(t *testing.T) {
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
	s = dtOpen(t, dir, holeOpts()...)
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

// listed reports whether Streams lists the stream of entity.
func listed(s *eventstore.Store, entity string) bool {
	for info := range s.Streams() {
		if info.Coordinate == dtCoord(entity) {
			return true
		}
	}
	return false
}
