package eventstore_test

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// Found by TestSim (seed 1143, long mode): a store whose last segment is
// sealed and has no successor yet (the next one never got its header, and
// open removed it) wrote its checkpoint at Close with the last event's frame
// end as its watermark. The commit marker of that event's batch follows
// it, so when the segment's footer was later lost, the scan from the
// watermark found the marker without its batch, and the store no longer
// opened. The watermark is now where the segment's frames end, at its
// footer.
func TestCheckpointWatermarkAfterSealedLastSegment(t *testing.T) {
	dir := t.TempDir()
	s := dtOpen(t, dir, eventstore.WithSegmentMaxBytes(4096), eventstore.WithSyncMode(eventstore.SyncNone))
	for i := 0; len(dtSegments(t, dir)) < 2; i++ {
		dtBatch(t, s, "b"+string(rune('a'+i%26)), []string{"x", "y", "z"})
	}
	dtClose(t, s)

	// Segment 2 never got its header; the checkpoint is gone.
	seg1, seg2 := dtSegPath(dir, 1), dtSegPath(dir, 2)
	fi, err := os.Stat(seg2)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(seg2, make([]byte, fi.Size()), 0o600); err != nil {
		t.Fatal(err)
	}
	ckpt := filepath.Join(dir, eventstore.CheckpointFileName)
	if err := os.Remove(ckpt); err != nil {
		t.Fatal(err)
	}
	s = dtOpen(t, dir)
	want := dtCheck(t, s)
	dtClose(t, s) // writes the checkpoint, with no active segment

	data, err := os.ReadFile(seg1)
	if err != nil {
		t.Fatal(err)
	}
	_, frameEnd, err := segment.ReadFooter(data, 1)
	if err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(ckpt)
	if err != nil {
		t.Fatal(err)
	}
	c, err := segment.DecodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.Segment != 1 || c.FrameEnd != uint64(frameEnd) {
		t.Fatalf("checkpoint watermark %d/%d, the frames of segment 1 end at %d", c.Segment, c.FrameEnd, frameEnd)
	}

	// The footer is lost: the segment is scanned from the watermark.
	if err := os.Truncate(seg1, frameEnd); err != nil {
		t.Fatal(err)
	}
	s = dtOpen(t, dir)
	defer dtClose(t, s)
	dtSameEvents(t, dtCheck(t, s), want)
}
