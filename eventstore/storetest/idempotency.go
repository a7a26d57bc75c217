package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/batpak-go/batpak"
)

func sameReceipts(t testing.TB, what string, got, want []batpak.Receipt) {
	t.Helper()
	if !slices.Equal(got, want) {
		t.Fatalf("%s: receipts %+v, want the original %+v", what, got, want)
	}
}

// testIdempotency: an append whose key was already committed writes nothing
// and returns the original receipts, for Append and AppendBatch, whatever
// it carries; other keys and keyless appends write; a failed append does
// not use its key up.
func testIdempotency(t *testing.T, e *env) {
	s := e.s
	ctx := context.Background()
	a, b := coord("idem:a"), coord("idem:b")
	key := batpak.WithIdempotencyKey
	r1 := mustAppend(t, s, a, evs(kindDeposited, 2), key("k1"), batpak.ExpectVersion(batpak.NoStream))
	items := []batpak.BatchItem{
		{Coordinate: a, Event: ev(kindNoted, 1)},
		{Coordinate: b, Event: ev(kindNoted, 2)},
	}
	b1 := mustBatch(t, s, items, key("b1"))
	last := s.LastSequence()
	versions := map[string]uint64{"idem:a": 3, "idem:b": 1}

	replays := func(s Store, when string) {
		t.Helper()
		// The same request again, e.g. a retry after a lost acknowledgement:
		// its expected version no longer holds, but the key answers first.
		rs, err := s.Append(ctx, a, evs(kindDeposited, 2), key("k1"), batpak.ExpectVersion(batpak.NoStream))
		if err != nil {
			t.Fatalf("%s: replay of k1: %v", when, err)
		}
		sameReceipts(t, when+": replay of k1", rs, r1)
		// A different request under a used key still writes nothing.
		rs, err = s.Append(ctx, b, evs(kindWithdrawn, 1), key("k1"))
		if err != nil {
			t.Fatalf("%s: k1 on another stream: %v", when, err)
		}
		sameReceipts(t, when+": k1 on another stream", rs, r1)
		rs, err = s.AppendBatch(ctx, items, key("b1"))
		if err != nil {
			t.Fatalf("%s: replay of b1: %v", when, err)
		}
		sameReceipts(t, when+": replay of batch b1", rs, b1)
		// Keys are shared by Append and AppendBatch.
		rs, err = s.Append(ctx, a, evs(kindDeposited, 1), key("b1"))
		if err != nil {
			t.Fatalf("%s: b1 through Append: %v", when, err)
		}
		sameReceipts(t, when+": b1 through Append", rs, b1)
		rs, err = s.AppendBatch(ctx, items[:1], key("k1"))
		if err != nil {
			t.Fatalf("%s: k1 through AppendBatch: %v", when, err)
		}
		sameReceipts(t, when+": k1 through AppendBatch", rs, r1)
		checkUnchanged(t, s, last, versions)
	}
	replays(s, "before reopening")
	s = e.settle()
	replays(s, "after settling")

	// Another key writes.
	r2 := mustAppend(t, s, a, evs(kindDeposited, 1), key("k2"))
	if r2[0].Sequence != last+1 || r2[0].Version != 4 {
		t.Fatalf("append with a new key: sequence %d version %d, want %d and 4", r2[0].Sequence, r2[0].Version, last+1)
	}
	// A failed append does not use its key up.
	_, err := s.Append(ctx, a, evs(kindDeposited, 1), key("k3"), batpak.ExpectVersion(batpak.Exactly(99)))
	checkConflict(t, err, coord("idem:a"), batpak.Exactly(99), 4)
	_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: a, Event: ev(kindNoted, 1), Expected: batpak.NoStream}}, key("k4"))
	checkConflict(t, err, coord("idem:a"), batpak.NoStream, 4)
	r3 := mustAppend(t, s, a, evs(kindDeposited, 1), key("k3"))
	r4 := mustBatch(t, s, []batpak.BatchItem{{Coordinate: a, Event: ev(kindNoted, 1)}}, key("k4"))
	if r3[0].Version != 5 || r4[0].Version != 6 {
		t.Fatalf("keys of failed appends: versions %d and %d, want 5 and 6", r3[0].Version, r4[0].Version)
	}
	// Keyless appends are never deduplicated.
	mustAppend(t, s, b, evs(kindDeposited, 1))
	mustAppend(t, s, b, evs(kindDeposited, 1))
	last = s.LastSequence()
	s = e.settle()
	rs, err := s.Append(ctx, a, evs(kindDeposited, 1), key("k3"))
	if err != nil {
		t.Fatal(err)
	}
	sameReceipts(t, "replay of k3", rs, r3)
	rs, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: a, Event: ev(kindNoted, 1)}}, key("k4"))
	if err != nil {
		t.Fatal(err)
	}
	sameReceipts(t, "replay of k4", rs, r4)
	checkUnchanged(t, s, last, map[string]uint64{"idem:a": 6, "idem:b": 3})
}

// testConcurrentIdempotency: concurrent appends with one key write once and
// all get the same receipts.
func testConcurrentIdempotency(t *testing.T, e *env) {
	s := e.s
	const callers = 8
	ctx := testContext(t)
	for round := range 4 {
		before := s.LastSequence()
		results := make([][]batpak.Receipt, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				k := batpak.WithIdempotencyKey(fmt.Sprintf("same-%d", round))
				var rs []batpak.Receipt
				var err error
				if round%2 == 0 {
					rs, err = s.Append(ctx, coord("cidem:a"), evs(kindDeposited, 2), k)
				} else {
					rs, err = s.AppendBatch(ctx, []batpak.BatchItem{
						{Coordinate: coord("cidem:a"), Event: ev(kindNoted, i)},
						{Coordinate: coord("cidem:b"), Event: ev(kindNoted, i)},
					}, k)
				}
				if err != nil {
					t.Errorf("round %d caller %d: %v", round, i, err)
				}
				results[i] = rs
			})
		}
		wg.Wait()
		if t.Failed() {
			return
		}
		for i := 1; i < callers; i++ {
			sameReceipts(t, fmt.Sprintf("round %d caller %d", round, i), results[i], results[0])
		}
		if got := s.LastSequence(); got != before+2 {
			t.Fatalf("round %d: %d concurrent appends with one key wrote %d events, want 2", round, callers, got-before)
		}
		if results[0][0].Sequence != before+1 {
			t.Fatalf("round %d: receipts start at sequence %d, want %d", round, results[0][0].Sequence, before+1)
		}
	}
}
