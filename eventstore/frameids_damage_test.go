package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
)

// linkedPair writes a root event and an event it caused in a sealed
// segment, closes the store and returns their receipts.
func linkedPair(t *testing.T, dir string) (root, effect batpak.Receipt) {
	t.Helper()
	s := dtOpen(t, dir, holeOpts()...)
	root = dtAppend(t, s, "root", []batpak.Event{holePad("r", 0)})[0]
	effect = dtAppend(t, s, "effect", []batpak.Event{holePad("e", 1)}, batpak.WithCausation(root.EventID))[0]
	for i := 0; s.Stats().Segments < 2; i++ { // seal the segment holding both
		dtAppend(t, s, fmt.Sprint("fill", i%3), []batpak.Event{holePad("f", i)})
	}
	dtClose(t, s)
	return root, effect
}

// flipFrame flips a byte in the middle of event seq's frame on disk.
func flipFrame(t *testing.T, dir string, seq uint64) {
	t.Helper()
	s := dtOpen(t, dir, holeOpts()...)
	pos, ok := s.Position(seq)
	dtClose(t, s)
	if !ok {
		t.Fatalf("no position for %d", seq)
	}
	dtFlip(t, dtSegPath(dir, pos.Segment), int64(pos.Offset)+int64(pos.Length)/2, 0x10)
}

// TestDamagedFrameLeftOutOfCausalMaps: the causal maps are built from the
// frames; an event whose frame is damaged is left out of them, counted in
// CorruptReads, and reading it fails.
func TestDamagedFrameLeftOutOfCausalMaps(t *testing.T) {
	dir := dtFastTempDir(t)
	root, effect := linkedPair(t, dir)
	flipFrame(t, dir, effect.Sequence)
	s := dtOpen(t, dir, holeOpts()...) // the checkpoint: open reads no frame
	defer dtClose(t, s)
	if got := s.CausedBy(root.EventID); slices.Contains(got, effect.Sequence) {
		t.Fatalf("CausedBy(root) = %v holds the damaged effect", got)
	}
	if n := s.Stats().CorruptReads; n == 0 {
		t.Fatal("the damaged frame met while linking is not counted in CorruptReads")
	}
	if _, err := s.GetSequence(context.Background(), effect.Sequence); !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("read of the damaged effect: %v, want ErrCorrupt", err)
	}
}

// TestAppendCausedByDamagedEvent: an event caused by another takes its
// correlation, read from the cause's frame; when that frame is damaged the
// append fails and writes nothing.
func TestAppendCausedByDamagedEvent(t *testing.T) {
	dir := dtFastTempDir(t)
	root, _ := linkedPair(t, dir)
	flipFrame(t, dir, root.Sequence)
	s := dtOpen(t, dir, holeOpts()...)
	defer dtClose(t, s)
	last := s.LastSequence()
	_, err := s.Append(context.Background(), dtCoord("later"), []batpak.Event{holePad("l", 0)}, batpak.WithCausation(root.EventID))
	if !errors.Is(err, batpak.ErrCorrupt) {
		t.Fatalf("append caused by a damaged event: %v, want ErrCorrupt", err)
	}
	if got := s.LastSequence(); got != last {
		t.Fatalf("the failed append moved the last sequence from %d to %d", last, got)
	}
}
