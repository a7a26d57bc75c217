package eventstore_test

import (
	"bytes"
	"context"
	"maps"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
)

// A checkpoint whose last hashes section is damaged is still used: open
// does not read the hashes, and a stream's hash is checked with its chunk
// when first used. A hash in a chunk that fails is read from the stream's
// last frame instead, and counted. Whatever uses it first (an append, the
// scan of frames after the checkpoint, the next checkpoint), every chain
// links, and the checkpoint Close writes next holds the right hashes.
func TestCheckpointLastHashesDamaged(t *testing.T) {
	base := buildCorruptBase(t)
	good := dtReadFile(t, filepath.Join(base.dir, eventstore.CheckpointFileName))
	streams := perStream(base.orig)
	hashes := make(map[batpak.Coordinate][32]byte)
	for _, r := range base.orig {
		hashes[r.Coordinate] = r.Hash
	}
	// The streams' hashes, 32 bytes each in one chunk: flip a byte of one.
	var at int
	for _, h := range hashes {
		if at = bytes.Index(good, h[:]); at < 0 || bytes.LastIndex(good, h[:]) != at {
			t.Fatalf("a last hash is found %d times", bytes.Count(good, h[:]))
		}
	}
	damaged := flipped(good, at+3)
	for _, first := range []string{"append", "tail", "checkpoint", "read-only"} {
		t.Run(first, func(t *testing.T) {
			lastHash := maps.Clone(hashes)
			dir := base.copy(t)
			if err := os.WriteFile(filepath.Join(dir, eventstore.CheckpointFileName), damaged, 0o600); err != nil {
				t.Fatal(err)
			}
			if first == "read-only" { // reads need no last hash: nothing is reread
				ro, err := eventstore.OpenReadOnly(dir)
				if err != nil {
					t.Fatal(err)
				}
				readStreams(t, ro, streams)
				dtCheck(t, ro)
				if got := ro.Stats().CheckpointHashesReread; got != 0 {
					t.Fatalf("%d hashes reread by reads", got)
				}
				dtClose(t, ro)
				if got := dtReadFile(t, filepath.Join(dir, eventstore.CheckpointFileName)); !slices.Equal(got, damaged) {
					t.Fatal("a read-only store changed the checkpoint")
				}
				return
			}
			s := dtOpen(t, dir)
			if cs := s.Stats().ColdStart; cs.Path != "checkpoint" || cs.CheckpointIgnored != "" {
				t.Fatalf("the checkpoint was not used: %+v", cs)
			}
			appendAll := func(s *eventstore.Store, tag string) {
				t.Helper()
				for c := range streams {
					rs := dtAppend(t, s, c.Entity, dtEvents(tag+"-"+c.Entity, 1))
					rec, err := s.Get(context.Background(), rs[0].EventID)
					if err != nil {
						t.Fatal(err)
					}
					if rec.PrevHash != lastHash[c] {
						t.Fatalf("%s: the new event links to %x, the stream's last hash is %x", c, rec.PrevHash, lastHash[c])
					}
					lastHash[c] = rec.Hash
				}
			}
			switch first {
			case "append":
				appendAll(s, "again")
				if got, want := s.Stats().CheckpointHashesReread, uint64(len(streams)); got != want {
					t.Fatalf("%d hashes reread, want %d (every stream's: one chunk)", got, want)
				}
			case "tail": // a crash after the appends: the next open scans them after the checkpoint
				appendAll(s, "again")
				crashed := filepath.Join(t.TempDir(), "crashed")
				dtCopyDir(t, dir, crashed)
				dtClose(t, s)
				if err := os.WriteFile(filepath.Join(crashed, eventstore.CheckpointFileName), damaged, 0o600); err != nil {
					t.Fatal(err)
				}
				dir = crashed
				s = dtOpen(t, dir)
				if cs := s.Stats().ColdStart; cs.Path != "checkpoint" || cs.EventsScanned == 0 {
					t.Fatalf("the appends were not scanned after the checkpoint: %+v", cs)
				}
				if got := s.Stats().CheckpointHashesReread; got == 0 {
					t.Fatal("no hash reread by the scan")
				}
			case "checkpoint": // the next checkpoint reads every hash of the failed chunk
				dtAppend(t, s, "new", dtEvents("new", 1))
			}
			dtCheck(t, s)
			dtClose(t, s)
			s = dtOpen(t, dir)
			defer s.Close()
			if _, err := os.Stat(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil || slices.Equal(dtReadFile(t, filepath.Join(dir, eventstore.CheckpointFileName)), damaged) {
				t.Fatalf("Close did not write a new checkpoint (%v)", err)
			}
			appendAll(s, "after")
			if got := s.Stats().CheckpointHashesReread; got != 0 {
				t.Fatalf("after a reopen, %d hashes reread", got)
			}
			dtCheck(t, s)
		})
	}
}
