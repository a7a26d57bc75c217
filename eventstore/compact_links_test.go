package eventstore_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
)

// TestRemovedEventKeepsItsLinks: the index keeps no ids or links, so after
// compaction removed an event, what is known of it comes from its stub. A
// later reopen, from the checkpoint or from the frames alone, still finds
// its effects by its id, gives an event caused by it its correlation, and
// does not show it.
func TestRemovedEventKeepsItsLinks(t *testing.T) {
	for _, fromFrames := range []bool{false, true} {
		t.Run(fmt.Sprintf("fromFrames=%v", fromFrames), func(t *testing.T) {
			ctx := context.Background()
			s, dir := compactFixture(t, 40, 2)
			gone := batpak.Coordinate{Entity: "gone", Scope: "test"}
			kept := batpak.Coordinate{Entity: "kept", Scope: "test"}
			group := uuid.Must(uuid.NewV7())
			root, err := s.Append(ctx, gone, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: payloadN{N: 1}}}, batpak.WithCorrelation(group))
			if err != nil {
				t.Fatal(err)
			}
			cause := root[0].EventID
			effect, err := s.Append(ctx, kept, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: payloadN{N: 2}}}, batpak.WithCausation(cause))
			if err != nil {
				t.Fatal(err)
			}
			compactFixtureFill(t, s, 60) // seal the segment holding both
			if err := s.DeleteStream(ctx, gone); err != nil {
				t.Fatal(err)
			}
			if rep, err := s.Compact(ctx); err != nil || rep.EventsRemoved != 1 {
				t.Fatalf("compaction: %+v, %v", rep, err)
			}
			if err := s.Close(); err != nil {
				t.Fatal(err)
			}
			if fromFrames {
				if err := os.Remove(filepath.Join(dir, eventstore.CheckpointFileName)); err != nil {
					t.Fatal(err)
				}
			}
			s, err = eventstore.Open(dir, eventstore.WithSegmentMaxBytes(16<<10))
			if err != nil {
				t.Fatal(err)
			}
			defer s.Close()
			if _, err := s.Get(ctx, cause); !errors.Is(err, batpak.ErrNotFound) {
				t.Fatalf("Get of the removed event: %v", err)
			}
			if got := s.CausedBy(cause); len(got) != 1 || got[0] != effect[0].Sequence {
				t.Fatalf("CausedBy(removed) = %v, want [%d]", got, effect[0].Sequence)
			}
			later, err := s.Append(ctx, kept, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: payloadN{N: 3}}}, batpak.WithCausation(cause))
			if err != nil {
				t.Fatal(err)
			}
			rec, err := s.Get(ctx, later[0].EventID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.CorrelationID != group {
				t.Fatalf("correlation %s, want the removed cause's %s", rec.CorrelationID, group)
			}
			if got := s.Correlated(group); len(got) != 2 {
				t.Fatalf("Correlated(group) = %v, want the effect and the later event", got)
			}
		})
	}
}

// compactFixtureFill appends n more fixture events, to seal segments.
func compactFixtureFill(t *testing.T, s *eventstore.Store, n int) {
	t.Helper()
	for i := range n {
		c := batpak.Coordinate{Entity: fmt.Sprintf("s%d", i%2), Scope: "test"}
		if _, err := s.Append(context.Background(), c, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: payloadN{N: i, Pad: strings.Repeat("x", 180)}}}); err != nil {
			t.Fatal(err)
		}
	}
}

// TestGetWhileCompacting: Get finds an event by reading frames, whose
// positions compaction changes; a lookup that races a compaction must
// still find every kept event.
func TestGetWhileCompacting(t *testing.T) {
	ctx := context.Background()
	s, _ := compactFixture(t, 600, 6)
	defer s.Close()
	var ids []uuid.UUID
	for rec, err := range s.ReadStream(ctx, batpak.Coordinate{Entity: "s0", Scope: "test"}, 1) {
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, rec.ID)
	}
	done := make(chan struct{})
	failed := make(chan error, 1)
	go func() {
		defer close(failed)
		for i := 0; ; i++ {
			select {
			case <-done:
				return
			default:
			}
			if _, err := s.Get(ctx, ids[i%len(ids)]); err != nil {
				failed <- err
				return
			}
		}
	}()
	for i := 1; i < 6; i++ {
		if err := s.DeleteStream(ctx, batpak.Coordinate{Entity: fmt.Sprint("s", i), Scope: "test"}); err != nil {
			t.Fatal(err)
		}
		if _, err := s.Compact(ctx); err != nil {
			t.Fatal(err)
		}
	}
	close(done)
	if err := <-failed; err != nil {
		t.Fatalf("Get during compaction: %v", err)
	}
}
