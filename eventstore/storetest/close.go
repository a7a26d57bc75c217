package storetest

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
)

// testClose: every call on a closed store fails with ErrClosed, and a read
// under way when the store closes ends with ErrClosed or stops.
func testClose(t *testing.T, e *env) {
	s := e.s
	ctx := testContext(t)
	rs := mustAppend(t, s, coord("close:a"), evs(kindDeposited, 3))
	mustAppend(t, s, coord("close:b"), evs(kindDeposited, 3))
	c := s.Cursor(batpak.Region{}, 0)
	if _, err := c.Next(ctx); err != nil {
		t.Fatal(err)
	}
	sub, err := s.Subscribe(batpak.Region{}, 8)
	if err != nil {
		t.Fatal(err)
	}

	// Close in the middle of a read.
	var n int
	var errs []error
	for _, err := range s.ReadAll(bgctx, 0) {
		if err != nil {
			errs = append(errs, err)
			continue
		}
		n++
		if n == 2 {
			if err := s.Close(); err != nil {
				t.Fatalf("Close: %v", err)
			}
		}
	}
	if n != 2 || len(errs) > 1 || len(errs) == 1 && !errors.Is(errs[0], batpak.ErrClosed) {
		t.Errorf("a read interrupted by Close yielded %d events and errors %v; want 2 events and at most ErrClosed", n, errs)
	}
	wantErrIs(t, s.Close(), batpak.ErrClosed, "second Close")

	_, err = s.Append(ctx, coord("close:a"), evs(kindDeposited, 1))
	wantErrIs(t, err, batpak.ErrClosed, "Append")
	_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: coord("close:a"), Event: ev(kindDeposited, 1)}})
	wantErrIs(t, err, batpak.ErrClosed, "AppendBatch")
	_, err = s.Get(bgctx, rs[0].EventID)
	wantErrIs(t, err, batpak.ErrClosed, "Get")
	_, err = s.GetSequence(bgctx, 1)
	wantErrIs(t, err, batpak.ErrClosed, "GetSequence")
	reads := []struct {
		name string
		seq  iter.Seq2[batpak.Record, error]
	}{
		{"ReadStream", s.ReadStream(bgctx, coord("close:a"), 0)},
		{"ReadStream(Backward)", s.ReadStream(bgctx, coord("close:a"), 0, batpak.Backward())},
		{"ReadAll", s.ReadAll(bgctx, 0)},
		{"Query", s.Query(bgctx, batpak.Region{})},
		{"Query(entity)", s.Query(bgctx, batpak.Region{Entity: "close:b"})},
	}
	for _, r := range reads {
		var got []error
		for rec, err := range r.seq {
			if err == nil {
				t.Errorf("%s on a closed store yielded sequence %d", r.name, rec.Sequence)
			}
			got = append(got, err)
		}
		if len(got) != 1 || !errors.Is(got[0], batpak.ErrClosed) {
			t.Errorf("%s on a closed store yielded errors %v, want one ErrClosed", r.name, got)
		}
	}
	_, err = s.Subscribe(batpak.Region{}, 1)
	wantErrIs(t, err, batpak.ErrClosed, "Subscribe")
	for name, c := range map[string]batpak.Cursor{"open cursor": c, "new cursor": s.Cursor(batpak.Region{}, 0)} {
		_, err = c.Next(ctx)
		wantErrIs(t, err, batpak.ErrClosed, name+" Next")
		_, ok, err := c.TryNext(bgctx)
		if ok || !errors.Is(err, batpak.ErrClosed) {
			t.Errorf("%s TryNext on a closed store: ok %v, error %v; want ErrClosed", name, ok, err)
		}
	}
	if sy, ok := s.(Syncer); ok {
		wantErrIs(t, sy.Sync(ctx), batpak.ErrClosed, "Sync")
	}
	waitClosed(t, sub)
}

// waitClosed drains sub until its channel is closed.
func waitClosed(t *testing.T, sub batpak.Subscription) {
	t.Helper()
	deadline := hangTimer(t)
	for {
		select {
		case _, ok := <-sub.Events():
			if !ok {
				return
			}
		case <-deadline:
			t.Fatal("the subscription's channel was not closed with the store")
		}
	}
}

// testCloseWakesWaiters: Close releases a cursor waiting in Next with
// ErrClosed and closes subscriptions.
func testCloseWakesWaiters(t *testing.T, e *env) {
	s := e.s
	mustAppend(t, s, coord("wake:a"), evs(kindDeposited, 1))
	c := s.Cursor(batpak.Region{FromSequence: 2}, 0)
	sub, err := s.Subscribe(batpak.Region{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, err := c.Next(testContext(t))
		done <- err
	}()
	time.Sleep(10 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatal(err)
	}
	select {
	case err := <-done:
		wantErrIs(t, err, batpak.ErrClosed, "Next waiting when the store closed")
	case <-hangTimer(t):
		t.Fatal("Close did not wake a waiting cursor")
	}
	waitClosed(t, sub)
}

// testCloseDuringAppends: appends racing with Close either succeed, and are
// then kept, or fail with ErrClosed and write nothing.
func testCloseDuringAppends(t *testing.T, e *env) {
	s := e.s
	const workers = 6
	receipts := make([][]batpak.Receipt, workers)
	var acked atomic.Int64
	var wg sync.WaitGroup
	ctx := testContext(t)
	for w := range workers {
		wg.Go(func() {
			c := coord(fmt.Sprintf("cda:%d", w))
			for i := 0; i < 10_000; i++ {
				var rs []batpak.Receipt
				var err error
				if i%3 == 2 {
					rs, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: c, Event: ev(kindNoted, i)}, {Coordinate: c, Event: ev(kindNoted, i)}})
				} else {
					rs, err = s.Append(ctx, c, []batpak.Event{ev(kindDeposited, i)})
				}
				if err != nil {
					if !errors.Is(err, batpak.ErrClosed) {
						t.Errorf("append racing with Close: %v, want ErrClosed", err)
					}
					return
				}
				receipts[w] = append(receipts[w], rs...)
				acked.Add(int64(len(rs)))
			}
		})
	}
	eventually(t, "some appends", func() bool { return acked.Load() >= 40 })
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	wg.Wait()
	if t.Failed() || e.h.Reopen == nil {
		return
	}
	s = e.reopen()
	if got := s.LastSequence(); got != uint64(acked.Load()) {
		t.Fatalf("reopened store holds %d events, %d were acknowledged", got, acked.Load())
	}
	for w, rs := range receipts {
		recs := collect(t, s.ReadStream(bgctx, coord(fmt.Sprintf("cda:%d", w)), 0))
		if len(recs) != len(rs) {
			t.Fatalf("stream %d holds %d events, %d were acknowledged", w, len(recs), len(rs))
		}
		for i := range recs {
			checkReceipt(t, &recs[i], &rs[i])
		}
	}
	r := mustAppend(t, s, coord("cda:0"), evs(kindDeposited, 1))
	if r[0].Sequence != uint64(acked.Load())+1 || r[0].Version != uint64(len(receipts[0]))+1 {
		t.Fatalf("append after reopening got sequence %d version %d", r[0].Sequence, r[0].Version)
	}
}

// testReopen: everything survives closing and reopening: events, versions,
// hash chains, idempotency keys, correlation and cursor positions.
func testReopen(t *testing.T, e *env) {
	if e.h.Reopen == nil {
		t.Skip("the harness cannot reopen a store")
	}
	s := e.s
	ctx := context.Background()
	meta := map[string]string{"actor": "ops", "reason": "migration ✓"}
	a := mustAppend(t, s, coord("re:x"), []batpak.Event{
		{Kind: kindOpened, Payload: "open", Metadata: meta}, ev(kindDeposited, 10), ev(kindDeposited, 20),
	}, batpak.WithIdempotencyKey("re-1"))
	batchItems := []batpak.BatchItem{
		{Coordinate: coord("re:x"), Event: ev(kindWithdrawn, 5)},
		{Coordinate: coord("re:z"), Event: ev(kindOpened, 0), Expected: batpak.NoStream},
	}
	b := mustBatch(t, s, batchItems, batpak.WithIdempotencyKey("re-2"), batpak.WithCausation(a[0].EventID))
	for i := range 20 {
		mustAppend(t, s, coord(fmt.Sprintf("re:y%d", i%3)), []batpak.Event{ev(kindNoted, i)})
	}
	if _, err := s.Append(ctx, coord("re:z"), evs(kindNoted, 1), batpak.ExpectVersion(batpak.NoStream)); err == nil {
		t.Fatal("conflicting append succeeded")
	}
	region := batpak.Region{EntityPrefix: "re:y"}
	c := s.Cursor(region, 0)
	for range 5 {
		if _, err := c.Next(testContext(t)); err != nil {
			t.Fatal(err)
		}
	}
	pos := c.Position()

	type state struct {
		all        []batpak.Record
		versions   map[string]uint64
		correlated []uint64
		causedBy   []uint64
	}
	snapshot := func(s Store) state {
		st := state{all: collect(t, s.ReadAll(bgctx, 0)), versions: make(map[string]uint64)}
		for _, rec := range st.all {
			st.versions[rec.Coordinate.Entity] = rec.Version
		}
		if ci, ok := s.(Causal); ok {
			st.correlated, st.causedBy = ci.Correlated(a[0].EventID), ci.CausedBy(a[0].EventID)
		}
		return st
	}
	check := func(s Store, want state, when string) {
		t.Helper()
		got := snapshot(s)
		checkSameRecords(t, when, got.all, want.all)
		if s.LastSequence() != uint64(len(want.all)) {
			t.Fatalf("%s: LastSequence = %d, want %d", when, s.LastSequence(), len(want.all))
		}
		for entity, v := range want.versions {
			if s.StreamVersion(coord(entity)) != v {
				t.Fatalf("%s: StreamVersion(%q) = %d, want %d", when, entity, s.StreamVersion(coord(entity)), v)
			}
			if cv, ok := s.(ChainVerifier); ok {
				if err := cv.VerifyChain(bgctx, coord(entity)); err != nil {
					t.Fatalf("%s: %v", when, err)
				}
			}
		}
		for i := range want.all {
			rec, err := s.Get(bgctx, want.all[i].ID)
			if err != nil {
				t.Fatalf("%s: Get: %v", when, err)
			}
			if d := diffRecord(&rec, &want.all[i]); d != "" {
				t.Fatalf("%s: Get: %s", when, d)
			}
		}
		if fmt.Sprint(got.correlated, got.causedBy) != fmt.Sprint(want.correlated, want.causedBy) {
			t.Fatalf("%s: correlated %v caused %v, want %v and %v", when, got.correlated, got.causedBy, want.correlated, want.causedBy)
		}
		rs, err := s.Append(ctx, coord("re:x"), evs(kindDeposited, 3), batpak.WithIdempotencyKey("re-1"))
		if err != nil {
			t.Fatal(err)
		}
		sameReceipts(t, when+": replay of re-1", rs, a)
		rs, err = s.AppendBatch(ctx, batchItems, batpak.WithIdempotencyKey("re-2"))
		if err != nil {
			t.Fatal(err)
		}
		sameReceipts(t, when+": replay of re-2", rs, b)
		if s.LastSequence() != uint64(len(want.all)) {
			t.Fatalf("%s: replays wrote events", when)
		}
	}

	before := snapshot(s)
	s = e.reopen()
	check(s, before, "after reopening")
	resumed := drainCursor(t, s.Cursor(region, pos))
	checkSameRecords(t, "cursor resumed after reopening", resumed, collect(t, s.Query(bgctx, region))[5:])

	last := before.all[len(before.all)-1]
	rs := mustAppend(t, s, coord("re:x"), evs(kindDeposited, 2))
	if rs[0].Sequence != last.Sequence+1 || rs[0].Version != before.versions["re:x"]+1 {
		t.Fatalf("append after reopening: sequence %d version %d", rs[0].Sequence, rs[0].Version)
	}
	first, err := s.Get(bgctx, rs[0].EventID)
	if err != nil {
		t.Fatal(err)
	}
	xs := collect(t, s.ReadStream(bgctx, coord("re:x"), 0, batpak.Backward(), batpak.Limit(3)))
	if first.PrevHash != xs[2].Hash {
		t.Fatalf("the first event after reopening does not link to its stream's last hash")
	}
	more := snapshot(s)
	s = e.reopen()
	check(s, more, "after the second reopening")
	s = e.reopen()
	check(s, more, "after reopening without writes")
}

// testCloseDuringReads: reads racing with Close return records or
// ErrClosed, never another error and never a crash.
func testCloseDuringReads(t *testing.T, e *env) {
	s := e.s
	for i := range 40 {
		mustAppend(t, s, coord(fmt.Sprintf("cdr:%d", i%4)), evs(kindDeposited, 3))
	}
	ids := make([]batpak.Record, 0, 120)
	ids = append(ids, collect(t, s.ReadAll(bgctx, 0))...)
	var started sync.WaitGroup
	var wg sync.WaitGroup
	stop := make(chan struct{})
	bad := func(what string, err error) bool {
		if err == nil {
			return false
		}
		if !errors.Is(err, batpak.ErrClosed) {
			t.Errorf("%s racing with Close: %v, want ErrClosed", what, err)
		}
		return true
	}
	readers := []func() bool{
		func() bool {
			for _, err := range s.ReadAll(bgctx, 0) {
				if bad("ReadAll", err) {
					return true
				}
			}
			return false
		},
		func() bool {
			for _, err := range s.ReadStream(bgctx, coord("cdr:1"), 0, batpak.Backward()) {
				if bad("ReadStream", err) {
					return true
				}
			}
			return false
		},
		func() bool {
			for i := range ids {
				if _, err := s.Get(bgctx, ids[i].ID); bad("Get", err) {
					return true
				}
			}
			return false
		},
		func() bool {
			c := s.Cursor(batpak.Region{EntityPrefix: "cdr:"}, 0)
			for {
				_, ok, err := c.TryNext(bgctx)
				if bad("Cursor.TryNext", err) {
					return true
				}
				if !ok {
					return false
				}
			}
		},
	}
	for _, read := range readers {
		started.Add(1)
		wg.Go(func() {
			started.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				if read() {
					return
				}
			}
		})
	}
	started.Wait()
	time.Sleep(2 * time.Millisecond)
	if err := s.Close(); err != nil {
		t.Fatalf("Close: %v", err)
	}
	close(stop)
	wg.Wait()
}
