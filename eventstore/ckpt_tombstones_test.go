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

// TestCheckpointOverTombstoneSegment: when the active segment holds only
// tombstones at Close (the deletions that filled the last one went on in
// a new segment), the checkpoint's last event is in the segment before its
// watermark. Found by TestSim, which counted such checkpoints ignored: the
// next open read every footer instead. The checkpoint is used, and a cut
// below its watermark in the tombstones' segment is still corruption.
func TestCheckpointOverTombstoneSegment(t *testing.T) {
	ctx := context.Background()
	dir := dtFastTempDir(t)
	s := dtOpen(t, dir, holeOpts()...)
	for i := range 60 {
		dtAppend(t, s, fmt.Sprint("d", i), []batpak.Event{sweepEvent("d", i, 1, 20)})
	}
	start := len(dtSegments(t, dir))
	i := 0
	for ; len(dtSegments(t, dir)) == start; i++ { // tombstones until one starts a new segment
		if err := s.DeleteStream(ctx, dtCoord(fmt.Sprint("d", i))); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DeleteStream(ctx, dtCoord(fmt.Sprint("d", i))); err != nil { // a second one there
		t.Fatal(err)
	}
	dtClose(t, s)

	s = dtOpen(t, dir, holeOpts()...)
	if cs := s.Stats().ColdStart; cs.Path != "checkpoint" {
		t.Fatalf("reopen after Close: path %s, checkpoint ignored: %q", cs.Path, cs.CheckpointIgnored)
	}
	for k := 0; k <= i; k++ {
		if listed(s, fmt.Sprint("d", k)) {
			t.Fatalf("deleted stream d%d is listed", k)
		}
	}
	if !listed(s, fmt.Sprint("d", i+1)) {
		t.Fatalf("stream d%d is not listed", i+1)
	}
	dtClose(t, s)

	// Cut the tombstones' segment below the watermark: damage, not a torn
	// tail, whatever the checkpoint's last event.
	segs := dtSegments(t, dir)
	path := filepath.Join(dir, segment.FileName(segs[len(segs)-1]))
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Truncate(path, fi.Size()-3); err != nil {
		t.Fatal(err)
	}
	if s, err := eventstore.Open(dir, holeOpts()...); err == nil {
		_ = s.Close()
		t.Fatal("open with the tombstones below the watermark cut succeeded")
	} else if !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("open: %v, want ErrCorrupt", err)
	}
}
