package eventstore_test

import (
	"bytes"
	"context"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

// checkpointBytes builds a small store with batches, keys, causation and a
// deleted stream, closes it, and returns its checkpoint file.
func checkpointBytes(tb testing.TB) []byte {
	tb.Helper()
	dir := tb.TempDir()
	s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		tb.Fatal(err)
	}
	ctx := context.Background()
	k := kind.Custom(1, 1)
	rs, err := s.Append(ctx, batpak.Coordinate{Entity: "a", Scope: "s"}, []batpak.Event{{Kind: k, Payload: 1}, {Kind: k, Payload: 2}}, batpak.WithIdempotencyKey("key-1"))
	if err != nil {
		tb.Fatal(err)
	}
	if _, err := s.AppendBatch(ctx, []batpak.BatchItem{
		{Coordinate: batpak.Coordinate{Entity: "b", Scope: "s"}, Event: batpak.Event{Kind: k, Metadata: map[string]string{"m": "v"}}, CausationID: rs[0].EventID},
		{Coordinate: batpak.Coordinate{Entity: "c", Scope: "t"}, Event: batpak.Event{Kind: k}},
	}); err != nil {
		tb.Fatal(err)
	}
	if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: "c", Scope: "t"}); err != nil {
		tb.Fatal(err)
	}
	if err := s.Close(); err != nil {
		tb.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, eventstore.CheckpointFileName))
	if err != nil {
		tb.Fatal(err)
	}
	return b
}

func TestCheckpointRoundTrip(t *testing.T) {
	b := checkpointBytes(t)
	c, err := segment.DecodeCheckpoint(b)
	if err != nil {
		t.Fatal(err)
	}
	if c.LastSeq != 4 || len(c.Keys) != 1 || len(c.Streams) != 3 || !c.Streams[2].Deleted {
		t.Fatalf("checkpoint %+v", c)
	}
	if again := segment.EncodeCheckpoint(c); !bytes.Equal(again, b) {
		t.Fatal("re-encoding the checkpoint changes it")
	}
	for i := range b { // every truncation is refused as corruption
		if _, err := segment.DecodeCheckpoint(b[:i]); !errors.Is(err, segment.ErrCorrupt) {
			t.Fatalf("checkpoint cut at %d: %v", i, err)
		}
	}
}

// After a checkpoint load, correlation and causation are linked on first
// use, and then include the events appended since the open.
func TestCheckpointLinksOnFirstUse(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	k := kind.Custom(1, 1)
	root, err := s.Append(ctx, batpak.Coordinate{Entity: "a", Scope: "s"}, []batpak.Event{{Kind: k}, {Kind: k}})
	if err != nil {
		t.Fatal(err)
	}
	cause := batpak.WithCausation(root[1].EventID)
	if _, err := s.Append(ctx, batpak.Coordinate{Entity: "b", Scope: "s"}, []batpak.Event{{Kind: k}}, cause); err != nil {
		t.Fatal(err)
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	if s, err = eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone)); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = s.Close() }()
	if p := s.Stats().ColdStart.Path; p != "checkpoint" {
		t.Fatalf("opened from %s", p)
	}
	if _, err := s.Append(ctx, batpak.Coordinate{Entity: "c", Scope: "s"}, []batpak.Event{{Kind: k}}, cause); err != nil {
		t.Fatal(err)
	}
	if got := s.CausedBy(root[1].EventID); !slices.Equal(got, []uint64{3, 4}) {
		t.Fatalf("caused by the root's second event: %v", got)
	}
	if got := s.Correlated(root[0].EventID); !slices.Equal(got, []uint64{2, 3, 4}) {
		t.Fatalf("correlated with the root: %v", got)
	}
	if _, err := s.Append(ctx, batpak.Coordinate{Entity: "d", Scope: "s"}, []batpak.Event{{Kind: k}}, cause); err != nil {
		t.Fatal(err)
	}
	if got := s.CausedBy(root[1].EventID); !slices.Equal(got, []uint64{3, 4, 5}) {
		t.Fatalf("caused by the root's second event, once linked: %v", got)
	}
}
