package eventstore_test

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

// buildSegments writes n single-event appends with tiny segments and closes.
func buildSegments(t *testing.T, n int) string {
	t.Helper()
	dir := t.TempDir()
	s, err := eventstore.Open(dir, eventstore.WithSegmentMaxBytes(4096), eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	for i := range n {
		c := eventstore.Coordinate{Entity: []string{"a", "b", "c"}[i%3], Scope: "s"}
		if _, err := s.Append(context.Background(), c, []eventstore.Event{{Kind: kind.Custom(1, 1), Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	return dir
}

// firstFrameSeq returns the sequence of the first event in segment id.
func firstFrameSeq(t *testing.T, dir string, id uint32) (uint64, int64) {
	t.Helper()
	data, err := os.ReadFile(filepath.Join(dir, segment.FileName(id)))
	if err != nil {
		t.Fatal(err)
	}
	payload, _, st := segment.DecodeFrame(data[segment.HeaderSize:])
	var rec segment.Record
	if st != segment.FrameOK || segment.DecodeRecord(payload, &rec) != nil {
		t.Fatal("segment has no readable first frame")
	}
	return rec.Seq, segment.HeaderSize
}

// A flipped byte behind a valid footer and checkpoint: Open trusts the
// indexes, but Verify reads every frame, and Repair acts on what Verify finds.
func TestRepairDamageBehindValidIndexes(t *testing.T) {
	dir := buildSegments(t, 200)
	seq, off := firstFrameSeq(t, dir, 3)
	path := filepath.Join(dir, segment.FileName(3))
	data, _ := os.ReadFile(path)
	data[off+40] ^= 0x10
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	vr, err := eventstore.Verify(dir)
	if err != nil {
		t.Fatal(err)
	}
	if vr.OK() || vr.Problems[0].Segment != 3 || vr.Problems[0].Offset != off {
		t.Fatalf("verify problems %v", vr.Problems)
	}
	if len(vr.Problems) != 1 {
		t.Errorf("one flipped byte reported %d times: %v", len(vr.Problems), vr.Problems)
	}
	dry, err := eventstore.Repair(dir, eventstore.DryRun())
	if err != nil || len(dry.Actions) != 1 || dry.Actions[0].Segment != 3 {
		t.Fatalf("dry run %+v, %v", dry, err)
	}
	if after, _ := os.ReadFile(path); len(after) != len(data) {
		t.Fatal("dry run changed the segment")
	}
	rep, err := eventstore.Repair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EventsKept != seq-1 {
		t.Fatalf("kept %d events, want the %d before the damage", rep.EventsKept, seq-1)
	}
	if vr, _ := eventstore.Verify(dir); !vr.OK() {
		t.Fatalf("after repair: %v", vr.Problems)
	}
	s, err := eventstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	n := uint64(0)
	for _, err := range s.ReadAll(0) {
		if err != nil {
			t.Fatal(err)
		}
		n++
	}
	if n != seq-1 {
		t.Fatalf("read %d events", n)
	}
	// Appending continues the sequence after the kept events.
	r, err := s.Append(context.Background(), eventstore.Coordinate{Entity: "a", Scope: "s"}, []eventstore.Event{{Kind: kind.Custom(1, 1)}})
	if err != nil || r[0].Sequence != seq {
		t.Fatalf("append after repair = %v, %v", r, err)
	}
	q, _ := os.ReadDir(filepath.Join(dir, eventstore.QuarantineDir))
	if len(q) == 0 {
		t.Fatal("nothing in quarantine")
	}
}

// A damaged footer alone costs no events: Repair cuts the footer off.
func TestRepairFooterOnly(t *testing.T) {
	dir := buildSegments(t, 200)
	path := filepath.Join(dir, segment.FileName(2))
	data, _ := os.ReadFile(path)
	data[len(data)-segment.TrailerSize-3] ^= 0xff // inside the footer frame
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	rep, err := eventstore.Repair(dir)
	if err != nil {
		t.Fatal(err)
	}
	if rep.EventsKept != 200 || len(rep.Actions) != 1 || len(rep.Actions[0].RemovedSegments) != 0 {
		t.Fatalf("report %+v", rep)
	}
	if vr, _ := eventstore.Verify(dir); !vr.OK() {
		t.Fatalf("after repair: %v", vr.Problems)
	}
}

func TestRepairLocked(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := eventstore.Repair(dir); !errors.Is(err, eventstore.ErrLocked) {
		t.Fatalf("Repair of an open store = %v", err)
	}
}
