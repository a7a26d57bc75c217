package eventstore

import (
	"context"
	"errors"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// TestStreamFull lowers the most events a stream holds to 3: an append past
// it, alone or in a batch with another stream, fails with ErrStreamFull and
// writes nothing, other streams go on, and a reopen finds the same.
func TestStreamFull(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	full := func(c *config) { c.streamEvents = 3 }
	s, err := Open(dir, WithSyncMode(SyncNone), full)
	if err != nil {
		t.Fatal(err)
	}
	a, b := batpak.Coordinate{Entity: "a", Scope: "s"}, batpak.Coordinate{Entity: "b", Scope: "s"}
	ev := func() batpak.Event {
		return batpak.Event{Kind: kind.Custom(1, 1), Payload: batpak.RawPayload([]byte{0xc0})}
	}
	if _, err := s.Append(ctx, a, []batpak.Event{ev(), ev()}); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Append(ctx, a, []batpak.Event{ev(), ev()}); !errors.Is(err, ErrStreamFull) {
		t.Fatalf("a fourth event in one append: %v, want ErrStreamFull", err)
	}
	if _, err := s.Append(ctx, a, []batpak.Event{ev()}); err != nil {
		t.Fatalf("the third event: %v", err)
	}
	for _, items := range [][]batpak.BatchItem{
		{{Coordinate: a, Event: ev()}},
		{{Coordinate: b, Event: ev()}, {Coordinate: a, Event: ev()}},
	} {
		if _, err := s.AppendBatch(ctx, items); !errors.Is(err, ErrStreamFull) {
			t.Fatalf("a batch with a fourth event of a: %v, want ErrStreamFull", err)
		}
	}
	if _, err := s.Append(ctx, b, []batpak.Event{ev()}); err != nil {
		t.Fatalf("another stream: %v", err)
	}
	check := func(s *Store) {
		t.Helper()
		if n := s.Stats().Events; n != 4 {
			t.Fatalf("%d events, want 4", n)
		}
		for _, c := range []struct {
			coord batpak.Coordinate
			want  uint64
		}{{a, 3}, {b, 1}} {
			if v := s.StreamVersion(c.coord); v != c.want {
				t.Fatalf("%s at version %d, want %d", c.coord, v, c.want)
			}
		}
	}
	check(s)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	s, err = Open(dir, full)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	check(s)
	if _, err := s.Append(ctx, a, []batpak.Event{ev()}); !errors.Is(err, ErrStreamFull) {
		t.Fatalf("after a reopen: %v, want ErrStreamFull", err)
	}
}
