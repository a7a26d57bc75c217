package eventstore_test

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

// A checkpoint of an older format is ignored, with its reason, and the
// first writable Close writes one of the current format even if nothing
// was appended; a read-only open leaves the file alone.
func TestOldCheckpointRewrittenAtClose(t *testing.T) {
	dir := t.TempDir()
	s, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		t.Fatal(err)
	}
	k := kind.Custom(1, 1)
	for _, e := range []string{"a", "b", "c"} {
		if _, err := s.Append(context.Background(), batpak.Coordinate{Entity: e, Scope: "s"}, []batpak.Event{{Kind: k}, {Kind: k}}); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(dir, eventstore.CheckpointFileName)
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	// Format 4's head has the same layout: only the version differs.
	old := bytes.Clone(b)
	binary.BigEndian.PutUint16(old[4:6], 4)
	const head = 4 + 2 + 8 + 4 + 8 + 16 + 1 + 4*5
	binary.BigEndian.PutUint32(old[head:], segment.Checksum(old[:head]))
	if err := os.WriteFile(path, old, 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := segment.OpenCheckpoint(old); !errors.Is(err, segment.ErrUnsupportedVersion) {
		t.Fatalf("format 4 checkpoint: %v, want ErrUnsupportedVersion", err)
	}

	open := func(readOnly bool) eventstore.ColdStart {
		t.Helper()
		openFn := eventstore.Open
		if readOnly {
			openFn = eventstore.OpenReadOnly
		}
		s, err := openFn(dir)
		if err != nil {
			t.Fatal(err)
		}
		cs := s.Stats().ColdStart
		n := 0
		for _, err := range s.ReadAll(context.Background(), 0) {
			if err != nil {
				t.Fatal(err)
			}
			n++
		}
		if n != 6 {
			t.Fatalf("%d events, want 6", n)
		}
		if err := s.Close(); err != nil {
			t.Fatal(err)
		}
		return cs
	}
	for _, ro := range []bool{true, false} {
		if cs := open(ro); cs.Path == "checkpoint" || !strings.Contains(cs.CheckpointIgnored, "format 4") {
			t.Fatalf("open with a format 4 checkpoint: path %s, ignored %q", cs.Path, cs.CheckpointIgnored)
		}
	}
	if cs := open(false); cs.Path != "checkpoint" || cs.CheckpointIgnored != "" {
		t.Fatalf("open after a Close without appends: path %s, ignored %q", cs.Path, cs.CheckpointIgnored)
	}
}
