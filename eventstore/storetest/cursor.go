package storetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// follow reads n records from c with Next in a goroutine; progress counts
// what it has read so far.
func follow(t *testing.T, ctx context.Context, c batpak.Cursor, n int, progress *atomic.Int64) <-chan []batpak.Record {
	out := make(chan []batpak.Record, 1)
	go func() {
		var recs []batpak.Record
		defer func() { out <- recs }()
		for len(recs) < n {
			rec, err := c.Next(ctx)
			if err != nil {
				t.Errorf("cursor Next after %d of %d records: %v", len(recs), n, err)
				return
			}
			recs = append(recs, rec)
			progress.Add(1)
		}
	}()
	return out
}

// testCursorFollowsAppends: a cursor from 0 yields every event exactly once
// in commit order, those appended while it waits included, and a filtered
// cursor waits through events it does not want.
func testCursorFollowsAppends(t *testing.T, e *env) {
	s := e.s
	const pre, writers, perWriter = 5, 3, 12
	for i := range pre {
		mustAppend(t, s, coord("cur:pre"), []batpak.Event{ev(kindDeposited, i)})
	}
	total := pre + writers*perWriter
	ctx := testContext(t)
	var allRead, filteredRead atomic.Int64
	everything := follow(t, ctx, s.Cursor(batpak.Region{}, 0), total, &allRead)
	withdrawals := batpak.Region{Kinds: []kind.Kind{kindWithdrawn}}
	filteredCursor := s.Cursor(withdrawals, 0)
	filtered := follow(t, ctx, filteredCursor, writers*perWriter/3, &filteredRead)
	eventually(t, "the cursor to read the events appended before it", func() bool { return allRead.Load() == pre })
	time.Sleep(5 * time.Millisecond) // let both cursors block in Next

	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			c := coord(fmt.Sprintf("cur:w%d", w))
			for i := range perWriter {
				k := []kind.Kind{kindDeposited, kindWithdrawn, kindNoted}[i%3]
				var err error
				if i%4 == 3 {
					_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: c, Event: ev(k, i)}})
				} else {
					_, err = s.Append(ctx, c, []batpak.Event{ev(k, i)})
				}
				if err != nil {
					t.Errorf("append: %v", err)
				}
			}
		})
	}
	wg.Wait()
	got := <-everything
	gotFiltered := <-filtered
	if t.Failed() {
		return
	}
	all := collect(t, s.ReadAll(bgctx, 0))
	checkSameRecords(t, "cursor from 0", got, all)
	checkSameRecords(t, "filtered cursor", gotFiltered, filter(all, withdrawals))
	if _, ok, err := filteredCursor.TryNext(bgctx); ok || err != nil {
		t.Fatalf("filtered cursor has more: %v %v", ok, err)
	}
	if pos := filteredCursor.Position(); pos != s.LastSequence()+1 {
		t.Fatalf("drained cursor at position %d, want %d", pos, s.LastSequence()+1)
	}
}

// testCursorContext: Next waits until its context ends and then returns
// the context's error; the cursor stays usable.
func testCursorContext(t *testing.T, e *env) {
	s := e.s
	mustAppend(t, s, coord("cctx:a"), evs(kindDeposited, 2))
	c := s.Cursor(batpak.Region{Entity: "cctx:a"}, 0)
	if got := drainCursor(t, c); len(got) != 2 {
		t.Fatalf("cursor read %d events, want 2", len(got))
	}
	pos := c.Position()

	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Millisecond)
	defer cancel()
	deadline, _ := ctx.Deadline()
	_, err := c.Next(ctx)
	wantErrIs(t, err, context.DeadlineExceeded, "Next past its deadline")
	// Against the deadline itself: on a loaded machine the goroutine may
	// be descheduled between making ctx and calling Next.
	if early := time.Until(deadline); early > 0 {
		t.Fatalf("Next returned %v before its deadline", early)
	}

	ctx, cancel = context.WithCancel(context.Background())
	cancel()
	_, err = c.Next(ctx)
	wantErrIs(t, err, context.Canceled, "Next with a canceled context")

	// Cancelled while waiting, and woken by events it does not want.
	ctx, cancel = context.WithCancel(context.Background())
	done := make(chan error, 1)
	go func() {
		_, err := c.Next(ctx)
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	mustAppend(t, s, coord("cctx:other"), evs(kindDeposited, 3))
	select {
	case err := <-done:
		t.Fatalf("Next returned %v for an event outside its region", err)
	case <-time.After(10 * time.Millisecond):
	}
	cancel()
	select {
	case err := <-done:
		wantErrIs(t, err, context.Canceled, "Next canceled while waiting")
	case <-hangTimer(t):
		t.Fatal("Next did not return after its context was canceled")
	}
	if c.Position() < pos {
		t.Fatalf("cursor moved back from %d to %d", pos, c.Position())
	}

	rs := mustAppend(t, s, coord("cctx:a"), evs(kindDeposited, 1))
	rec, err := c.Next(testContext(t))
	if err != nil {
		t.Fatal(err)
	}
	checkReceipt(t, &rec, &rs[0])

	// All yields until its context ends, then the error once.
	mustAppend(t, s, coord("cctx:a"), evs(kindDeposited, 3))
	ctx, cancel = context.WithCancel(context.Background())
	defer cancel()
	var versions []uint64
	var errs []error
	for rec, err := range s.Cursor(batpak.Region{Entity: "cctx:a"}, 0).All(ctx) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		versions = append(versions, rec.Version)
		if len(versions) == 6 {
			cancel()
		}
	}
	if !slices.Equal(versions, span(1, 6)) || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
		t.Fatalf("All yielded versions %v and errors %v, want 1..6 and one context.Canceled", versions, errs)
	}
}

// testCursorResume: a cursor made from another's Position continues
// without skipping or repeating, wherever the first one stopped.
func testCursorResume(t *testing.T, e *env) {
	s := e.s
	for i := range 10 {
		mustAppend(t, s, coord("res:a1"), []batpak.Event{ev(kindDeposited, i)})
		mustAppend(t, s, coord("res:b"), []batpak.Event{ev(kindDeposited, i)})
		if i%3 == 0 {
			mustAppend(t, s, coord("res:a2"), []batpak.Event{ev(kindNoted, i)})
		}
	}
	s = e.settle()
	r := batpak.Region{EntityPrefix: "res:a"}
	want := collect(t, s.Query(bgctx, r))
	if len(want) != 14 {
		t.Fatalf("%d events in the region, want 14", len(want))
	}
	ctx := testContext(t)
	for k := 0; k <= len(want); k++ {
		c1 := s.Cursor(r, 0)
		var got []batpak.Record
		for range k {
			rec, err := c1.Next(ctx)
			if err != nil {
				t.Fatal(err)
			}
			got = append(got, rec)
		}
		c2 := s.Cursor(r, c1.Position())
		got = append(got, drainCursor(t, c2)...)
		checkSameRecords(t, fmt.Sprintf("resumed after %d", k), got, want)
	}

	// Cursor start: the later of from and the region's FromSequence.
	all := collect(t, s.ReadAll(bgctx, 0))
	starts := []struct{ regionFrom, from, first uint64 }{
		{0, 0, 1}, {0, 1, 1}, {10, 5, 10}, {5, 10, 10}, {0, uint64(len(all)), uint64(len(all))},
	}
	for _, st := range starts {
		got := drainCursor(t, s.Cursor(batpak.Region{FromSequence: st.regionFrom}, st.from))
		checkSameRecords(t, fmt.Sprintf("Cursor(FromSequence %d, from %d)", st.regionFrom, st.from), got, all[st.first-1:])
	}

	// A drained cursor and one resumed from it both see the next event.
	c1 := s.Cursor(r, 0)
	drainCursor(t, c1)
	c2 := s.Cursor(r, c1.Position())
	rs := mustAppend(t, s, coord("res:a3"), evs(kindNoted, 1))
	for _, c := range []batpak.Cursor{c1, c2} {
		rec, err := c.Next(ctx)
		if err != nil {
			t.Fatal(err)
		}
		checkReceipt(t, &rec, &rs[0])
	}
}

// testCursorEndOfRegion: a cursor whose region has a ToSequence waits for
// events up to it and then reports ErrEndOfRegion.
func testCursorEndOfRegion(t *testing.T, e *env) {
	s := e.s
	mustAppend(t, s, coord("end:a"), evs(kindDeposited, 3))
	c := s.Cursor(batpak.Region{ToSequence: 5}, 0)
	if got := drainCursor(t, c); len(got) != 3 {
		t.Fatalf("read %d events, want 3", len(got))
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	_, err := c.Next(ctx)
	wantErrIs(t, err, context.DeadlineExceeded, "Next before the end of the region")
	mustAppend(t, s, coord("end:a"), evs(kindDeposited, 4))
	for want := uint64(4); want <= 5; want++ {
		rec, err := c.Next(testContext(t))
		if err != nil || rec.Sequence != want {
			t.Fatalf("Next = sequence %d, %v; want %d", rec.Sequence, err, want)
		}
	}
	_, err = c.Next(testContext(t))
	wantErrIs(t, err, batpak.ErrEndOfRegion, "Next past the end of the region")
	if _, ok, err := c.TryNext(bgctx); ok || err != nil {
		t.Fatalf("TryNext past the end of the region: %v, %v", ok, err)
	}
}
