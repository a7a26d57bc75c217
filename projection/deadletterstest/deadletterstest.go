// Package deadletterstest is the conformance suite of
// [projection.DeadLetters]: every implementation (in memory, in files, in
// a JetStream bucket) runs it, so a runner parks, lists, resolves and
// removes events the same way on each.
package deadletterstest

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak/projection"
)

// Opener returns handles on one dead-letter store: each call a new handle
// on the same storage, as another process would open it. A store kept in
// memory may return the same value each time.
type Opener func() projection.DeadLetters

// Run runs the suite. fresh returns an Opener on new, empty storage; it
// is called once per subtest.
func Run(t *testing.T, fresh func(t *testing.T) Opener) {
	t.Run("ParkListResolveRemove", func(t *testing.T) { parkListResolveRemove(t, fresh(t)()) })
	t.Run("ParkReplaces", func(t *testing.T) { parkReplaces(t, fresh(t)()) })
	t.Run("NamesApart", func(t *testing.T) { namesApart(t, fresh(t)()) })
	t.Run("ConcurrentHandles", func(t *testing.T) { concurrentHandles(t, fresh(t)) })
}

func letter(name string, seq uint64, at time.Time) projection.DeadLetter {
	return projection.DeadLetter{Projection: name, Sequence: seq, EventID: uuid.New(), Error: fmt.Sprintf("apply #%d: boom", seq),
		Attempts: 3, Parked: at, LastFailed: at.Add(time.Second)}
}

func parked(t *testing.T, dl projection.DeadLetters, name string) []projection.DeadLetter {
	t.Helper()
	list, err := dl.Parked(context.Background(), name)
	if err != nil {
		t.Fatalf("Parked(%q): %v", name, err)
	}
	return list
}

func parkListResolveRemove(t *testing.T, dl projection.DeadLetters) {
	ctx := context.Background()
	if list := parked(t, dl, "p"); len(list) != 0 {
		t.Fatalf("Parked of nothing = %+v", list)
	}
	now := time.Now().UTC().Truncate(time.Microsecond)
	want := map[uint64]projection.DeadLetter{}
	for _, seq := range []uint64{9, 2, 5, 1 << 40} {
		d := letter("p", seq, now)
		d.Stopped = seq == 2
		want[seq] = d
		if err := dl.Park(ctx, d); err != nil {
			t.Fatal(err)
		}
	}
	if err := dl.Resolve(ctx, "p", 5, projection.ResolveRetry); err != nil {
		t.Fatal(err)
	}
	if err := dl.Resolve(ctx, "p", 4, projection.ResolveSkip); !errors.Is(err, projection.ErrNotParked) {
		t.Fatalf("Resolve of an event not parked = %v, want ErrNotParked", err)
	}
	if err := dl.Resolve(ctx, "p", 5, "later"); !errors.Is(err, projection.ErrBadResolution) {
		t.Fatalf("Resolve with a bad resolution = %v, want ErrBadResolution", err)
	}
	if err := dl.Remove(ctx, "p", 9); err != nil {
		t.Fatal(err)
	}
	if err := dl.Remove(ctx, "p", 9); err != nil {
		t.Fatalf("Remove of an event no longer parked = %v, want nil", err)
	}
	list := parked(t, dl, "p")
	wantSeqs := []uint64{2, 5, 1 << 40}
	if len(list) != len(wantSeqs) {
		t.Fatalf("Parked = %+v, want sequences %v", list, wantSeqs)
	}
	for i, d := range list {
		w := want[wantSeqs[i]]
		if wantSeqs[i] == 5 {
			w.Resolution = projection.ResolveRetry
		}
		if !same(d, w) {
			t.Errorf("Parked[%d] = %+v, want %+v", i, d, w)
		}
	}
}

func parkReplaces(t *testing.T, dl projection.DeadLetters) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	first := letter("p", 7, now)
	if err := dl.Park(ctx, first); err != nil {
		t.Fatal(err)
	}
	if err := dl.Resolve(ctx, "p", 7, projection.ResolveRetry); err != nil {
		t.Fatal(err)
	}
	again := first
	again.Attempts, again.Error, again.LastFailed = 4, "still failing", now.Add(time.Minute)
	if err := dl.Park(ctx, again); err != nil {
		t.Fatal(err)
	}
	if list := parked(t, dl, "p"); len(list) != 1 || !same(list[0], again) {
		t.Fatalf("after a second Park of #7: %+v, want only %+v", list, again)
	}
}

// namesApart: projections whose names share a prefix, or hold characters
// a key or a subject treats specially ('.', '-', '_'), keep their own
// lists. The names are those every implementation accepts
// ([A-Za-z0-9._-], as file names allow).
func namesApart(t *testing.T, dl projection.DeadLetters) {
	ctx := context.Background()
	now := time.Now().UTC().Truncate(time.Microsecond)
	names := []string{"p", "p.q", "p-q", "p_q", "p.q.r"}
	for i, name := range names {
		if err := dl.Park(ctx, letter(name, uint64(i+1), now)); err != nil {
			t.Fatalf("Park for %q: %v", name, err)
		}
	}
	for i, name := range names {
		if list := parked(t, dl, name); len(list) != 1 || list[0].Sequence != uint64(i+1) || list[0].Projection != name {
			t.Errorf("Parked(%q) = %+v, want only #%d", name, list, i+1)
		}
	}
	if err := dl.Remove(ctx, "p", 1); err != nil {
		t.Fatal(err)
	}
	if list := parked(t, dl, "p.q"); len(list) != 1 {
		t.Errorf("Remove of p's #1 changed p.q's list: %+v", list)
	}
}

// concurrentHandles: changes through separate handles on one storage
// (separate processes would do the same) are never lost.
func concurrentHandles(t *testing.T, open Opener) {
	ctx := context.Background()
	const workers, each = 4, 10
	var wg sync.WaitGroup
	for w := range workers {
		dl := open()
		wg.Go(func() {
			for i := range each {
				if err := dl.Park(ctx, projection.DeadLetter{Projection: "p", Sequence: uint64(w*each + i + 1)}); err != nil {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
	if list := parked(t, open(), "p"); len(list) != workers*each {
		t.Fatalf("%d parked through %d handles, want %d", len(list), workers, workers*each)
	}
}

func same(a, b projection.DeadLetter) bool {
	return a.Projection == b.Projection && a.Sequence == b.Sequence && a.EventID == b.EventID && a.Error == b.Error &&
		a.Attempts == b.Attempts && a.Parked.Equal(b.Parked) && a.LastFailed.Equal(b.LastFailed) &&
		a.Stopped == b.Stopped && a.Resolution == b.Resolution
}
