package eventstore

import (
	"context"
	"errors"
	"os"
	"path/filepath"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

// TestCheckpointTipsAfterTheSnapshot takes a checkpoint's snapshot, then
// appends to one of its streams, starts a new one and deletes another
// before the checkpoint is written, as a periodic checkpoint's appends do.
// The checkpoint must hold each stream as it was at the snapshot: the
// version and last hash of then, the deletion not yet. A copy of the
// directory (a crash) then opens from it and follows the chains on.
func TestCheckpointTipsAfterTheSnapshot(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := Open(dir, WithCheckpointEvery(0))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	coord := func(e string) batpak.Coordinate { return batpak.Coordinate{Entity: e, Scope: "test"} }
	appendTo := func(e string, n int) {
		t.Helper()
		for range n {
			if _, err := s.Append(ctx, coord(e), []batpak.Event{{Kind: kind.Custom(1, 1), Payload: batpak.RawPayload("x")}}); err != nil {
				t.Fatal(err)
			}
		}
	}
	appendTo("a", 3)
	appendTo("b", 2)
	appendTo("c", 1)
	wantA, _ := s.ix.streams.lastHash(s.ix.lookup(idOf(coord("a"))))

	s.ckptMu.Lock()
	s.pipe.mu.Lock()
	sn := s.takeSnapshot(s.pipe.position())
	s.pipe.mu.Unlock()
	appendTo("a", 2)
	appendTo("d", 1)
	if err := s.DeleteStream(ctx, coord("c")); err != nil {
		t.Fatal(err)
	}
	err = s.writeSnapshot(sn)
	s.ckptMu.Unlock()
	if err != nil {
		t.Fatal(err)
	}

	data, err := os.ReadFile(filepath.Join(dir, CheckpointFileName))
	if err != nil {
		t.Fatal(err)
	}
	c, err := segment.DecodeCheckpoint(data)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]segment.CheckpointStream{}
	for _, cs := range c.Streams {
		got[cs.Entity] = cs
	}
	if c.LastSeq != 6 || len(c.Streams) != 3 || got["a"].Version != 3 || got["a"].LastHash != wantA || got["b"].Version != 2 || got["c"].Deleted {
		t.Fatalf("checkpoint of %d events: %+v", c.LastSeq, c.Streams)
	}

	// A crash now: the copy opens from the checkpoint and the frames after it.
	crashed := t.TempDir()
	des, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	for _, de := range des {
		if de.IsDir() || de.Name() == LockFileName {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, de.Name()))
		if err == nil {
			err = os.WriteFile(filepath.Join(crashed, de.Name()), b, 0o600)
		}
		if err != nil {
			t.Fatal(err)
		}
	}
	s2, err := Open(crashed)
	if err != nil {
		t.Fatal(err)
	}
	defer s2.Close()
	if cs := s2.Stats().ColdStart; cs.Path != "checkpoint" || cs.EventsFromCheckpoint != 6 {
		t.Fatalf("cold start %+v", cs)
	}
	for e, want := range map[string]uint64{"a": 5, "b": 2, "d": 1} {
		if _, err := s2.Append(ctx, coord(e), []batpak.Event{{Kind: kind.Custom(1, 1), Payload: batpak.RawPayload("y")}}); err != nil {
			t.Fatal(err)
		}
		if v := s2.StreamVersion(coord(e)); v != want+1 {
			t.Fatalf("stream %s at version %d, want %d", e, v, want+1)
		}
		if err := s2.VerifyChain(ctx, coord(e)); err != nil {
			t.Fatalf("stream %s: %v", e, err)
		}
	}
	if _, err := s2.Append(ctx, coord("c"), []batpak.Event{{Kind: kind.Custom(1, 1), Payload: batpak.RawPayload("z")}}); !errors.Is(err, batpak.ErrStreamDeleted) {
		t.Fatalf("append to the deleted stream: %v", err)
	}
}
