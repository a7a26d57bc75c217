package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// TestCursorFollowsAppends: cursors from 0, one per region, yield every
// matching event exactly once in commit order while writers append
// concurrently, waiting whenever they have caught up.
func TestCursorFollowsAppends(t *testing.T) {
	s := newStore(t)
	const writers, perWriter = 4, 60
	cases := []struct {
		r    batpak.Region
		want int
	}{
		{batpak.Region{}, writers * perWriter},
		{batpak.Region{Scope: "s1"}, writers / 2 * perWriter},
		{batpak.Region{Kinds: []kind.Kind{kindB}}, writers * perWriter / 3},
		{batpak.Region{Entity: "w1"}, perWriter},
	}
	got := make([][]batpak.Record, len(cases))
	ctx := t.Context()
	var readers sync.WaitGroup
	for i, tc := range cases {
		c := s.Cursor(tc.r, 0)
		readers.Go(func() {
			for len(got[i]) < tc.want {
				rec, err := c.Next(ctx)
				if err != nil {
					t.Errorf("cursor %d: Next after %d of %d events: %v", i, len(got[i]), tc.want, err)
					return
				}
				got[i] = append(got[i], rec)
			}
			if _, ok, err := c.TryNext(ctx); ok || err != nil {
				t.Errorf("cursor %d has more than its region holds: %v %v", i, ok, err)
			}
		})
	}
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			c := co(fmt.Sprint("s", w%2), fmt.Sprint("w", w))
			for i := range perWriter {
				k := []kind.Kind{kindA, kindB, kindC}[i%3]
				var err error
				if i%4 == 3 {
					_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: c, Event: batpak.Event{Kind: k, Payload: i}}})
				} else {
					_, err = s.Append(ctx, c, []batpak.Event{{Kind: k, Payload: i}})
				}
				if err != nil {
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	readers.Wait()
	for i, tc := range cases {
		want := seqsOf(collect(t, s.Query(bg, tc.r)))
		if len(want) != tc.want || !slices.Equal(seqsOf(got[i]), want) {
			t.Errorf("cursor over %+v read %v, want %v", tc.r, seqsOf(got[i]), want)
		}
	}
}

// TestCursorStart: a cursor starts at the later of from and the region's
// FromSequence, and one made from another's Position continues it.
func TestCursorStart(t *testing.T) {
	s := newStore(t)
	for i := range 10 {
		mustAppend(t, s, co("t", fmt.Sprint("e", i%3)), evs(kindA, 1))
	}
	tests := []struct {
		r     batpak.Region
		from  uint64
		first []uint64
	}{
		{batpak.Region{}, 0, span(1, 10)},
		{batpak.Region{}, 1, span(1, 10)},
		{batpak.Region{FromSequence: 8}, 3, span(8, 10)},
		{batpak.Region{FromSequence: 3}, 8, span(8, 10)},
		{batpak.Region{}, 11, nil},
		{batpak.Region{Entity: "e1"}, 3, []uint64{5, 8}},
		{batpak.Region{Entity: "e1", ToSequence: 7}, 0, []uint64{2, 5}},
	}
	for _, tc := range tests {
		c := s.Cursor(tc.r, tc.from)
		if got := seqsOf(drain(t, c)); !slices.Equal(got, tc.first) {
			t.Errorf("Cursor(%+v, %d) read %v, want %v", tc.r, tc.from, got, tc.first)
		}
	}
	r := batpak.Region{EntityPrefix: "e", Kinds: []kind.Kind{kindA}}
	want := seqsOf(collect(t, s.Query(bg, r)))
	for k := 0; k <= len(want); k++ {
		c1 := s.Cursor(r, 0)
		var got []uint64
		for range k {
			rec, err := c1.Next(t.Context())
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rec.Sequence)
		}
		got = append(got, seqsOf(drain(t, s.Cursor(r, c1.Position())))...)
		if !slices.Equal(got, want) {
			t.Fatalf("resumed after %d: %v, want %v", k, got, want)
		}
	}
}

// drain returns what c yields without waiting.
func drain(t testing.TB, c batpak.Cursor) []batpak.Record {
	t.Helper()
	var out []batpak.Record
	for {
		rec, ok, err := c.TryNext(bg)
		if err != nil {
			t.Fatalf("TryNext after %d records: %v", len(out), err)
		}
		if !ok {
			return out
		}
		out = append(out, rec)
	}
}

// next calls c.Next in a goroutine.
func next(ctx context.Context, c batpak.Cursor) <-chan error {
	done := make(chan error, 1)
	go func() {
		_, err := c.Next(ctx)
		done <- err
	}()
	return done
}

// TestCursorWaits: at the end of the log Next waits for the next matching
// event, past events outside its region; past its region's ToSequence it
// reports ErrEndOfRegion; a cancelled wait returns the context's error and
// leaves the cursor usable; All yields until its context ends.
func TestCursorWaits(t *testing.T) {
	s := newStore(t)
	c := s.Cursor(batpak.Region{Entity: "mine", ToSequence: 4}, 0)
	if _, ok, err := c.TryNext(bg); ok || err != nil {
		t.Fatalf("TryNext on an empty store: %v %v", ok, err)
	}
	got := make(chan batpak.Record, 1)
	go func() {
		rec, err := c.Next(t.Context())
		if err != nil {
			t.Error(err)
		}
		got <- rec
	}()
	mustAppend(t, s, co("t", "other"), evs(kindA, 2))
	mine := mustAppend(t, s, co("t", "mine"), evs(kindA, 1))
	if rec := <-got; rec.ID != mine[0].EventID {
		t.Fatalf("Next returned %v, want sequence %d", rec, mine[0].Sequence)
	}
	if c.Position() != 4 {
		t.Fatalf("Position = %d, want 4", c.Position())
	}

	ctx, cancel := context.WithCancel(bg)
	done := next(ctx, c)
	cancel()
	if err := <-done; !errors.Is(err, context.Canceled) {
		t.Fatalf("Next cancelled while waiting: %v", err)
	}
	mine = mustAppend(t, s, co("t", "mine"), evs(kindA, 3)) // sequences 4 to 6
	rec, err := c.Next(t.Context())
	if err != nil || rec.ID != mine[0].EventID {
		t.Fatalf("Next after a cancelled wait: %v %v", rec, err)
	}
	if _, err := c.Next(t.Context()); !errors.Is(err, batpak.ErrEndOfRegion) {
		t.Fatalf("Next past ToSequence: %v, want ErrEndOfRegion", err)
	}
	if _, ok, err := c.TryNext(bg); ok || err != nil {
		t.Fatalf("TryNext past ToSequence: %v %v", ok, err)
	}

	ctx, cancel = context.WithCancel(bg)
	defer cancel()
	var versions []uint64
	var errs []error
	for rec, err := range s.Follow(ctx, batpak.Region{Entity: "mine"}, 0) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		versions = append(versions, rec.Version)
		if rec.Version == 3 { // appending while a read is under way
			mustAppend(t, s, co("t", "mine"), evs(kindB, 1))
		}
		if rec.Version == 5 {
			cancel()
		}
	}
	if !slices.Equal(versions, span(1, 5)) || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("Follow yielded versions %v and errors %v, want 1..5 and one context.Canceled", versions, errs)
	}
}
