package memstore_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/batpak-go/batpak"
)

// TestConcurrentExpectedVersion: writers racing on one stream with
// Exactly(the version they read) each get every version they claim, no
// version twice, and retry on conflicts until they have appended.
func TestConcurrentExpectedVersion(t *testing.T) {
	s := newStore(t)
	c := co("t", "race")
	const writers, each = 8, 25
	got := make([][]uint64, writers)
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			for len(got[w]) < each {
				v := s.StreamVersion(c)
				rs, err := s.Append(bg, c, evs(kindA, 1), batpak.ExpectVersion(batpak.Exactly(v)))
				if errors.Is(err, batpak.ErrVersionConflict) {
					continue
				}
				if err != nil {
					t.Errorf("writer %d: %v", w, err)
					return
				}
				if rs[0].Version != v+1 {
					t.Errorf("writer %d expected %d and got version %d", w, v, rs[0].Version)
				}
				got[w] = append(got[w], rs[0].Version)
			}
		})
	}
	wg.Wait()
	all := slices.Concat(got...)
	slices.Sort(all)
	if !slices.Equal(all, span(1, writers*each)) {
		t.Fatalf("versions claimed: %v, want 1..%d once each", all, writers*each)
	}
	if err := s.VerifyChain(bg, c); err != nil {
		t.Fatal(err)
	}
}

// TestConcurrentIdempotency: concurrent appends with one key write once
// and all get the same receipts.
func TestConcurrentIdempotency(t *testing.T) {
	s := newStore(t)
	const callers = 16
	for round := range 6 {
		before := s.LastSequence()
		results := make([][]batpak.Receipt, callers)
		var wg sync.WaitGroup
		for i := range callers {
			wg.Go(func() {
				key := batpak.WithIdempotencyKey(fmt.Sprint("same-", round))
				var err error
				if round%2 == 0 {
					results[i], err = s.Append(bg, co("t", "idem"), evs(kindA, 2), key)
				} else {
					results[i], err = s.AppendBatch(bg, []batpak.BatchItem{
						{Coordinate: co("t", "idem"), Event: evs(kindA, 1)[0]},
						{Coordinate: co("t", "other"), Event: evs(kindA, 1)[0]},
					}, key)
				}
				if err != nil {
					t.Errorf("round %d caller %d: %v", round, i, err)
				}
			})
		}
		wg.Wait()
		for i := range results {
			if !slices.Equal(results[i], results[0]) {
				t.Fatalf("round %d: caller %d got %v, caller 0 %v", round, i, results[i], results[0])
			}
		}
		if got := s.LastSequence(); got != before+2 || results[0][0].Sequence != before+1 {
			t.Fatalf("round %d: %d callers with one key wrote %d events", round, callers, got-before)
		}
	}
}

// TestReadsDuringAppends: readers of every kind, running while writers
// append single events and batches, always see a dense, ordered prefix of
// the log and whole batches.
func TestReadsDuringAppends(t *testing.T) {
	s := newStore(t)
	const writers, rounds = 4, 100
	var wg sync.WaitGroup
	for w := range writers {
		wg.Go(func() {
			c := co("t", fmt.Sprint("w", w))
			for i := range rounds {
				var err error
				if i%2 == 0 {
					_, err = s.Append(bg, c, evs(kindA, 3)) // three events, atomically
				} else {
					_, err = s.AppendBatch(bg, []batpak.BatchItem{
						{Coordinate: c, Event: evs(kindB, 1)[0]},
						{Coordinate: co("t", "shared"), Event: evs(kindB, 1)[0]},
						{Coordinate: c, Event: evs(kindB, 1)[0]},
					})
				}
				if err != nil {
					t.Errorf("append: %v", err)
					return
				}
			}
		})
	}
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	checks := 0
	for done := false; !done; checks++ {
		select {
		case <-finished: // one more round, over the whole log
			done = true
		default:
		}
		last := s.LastSequence()
		all := collect(t, s.ReadAll(bg, 0))
		if uint64(len(all)) < last {
			t.Fatalf("ReadAll after LastSequence %d yielded %d events", last, len(all))
		}
		if len(all)%3 != 0 {
			t.Fatalf("ReadAll saw %d events: part of an atomic append", len(all))
		}
		for i := range all {
			if all[i].Sequence != uint64(i+1) {
				t.Fatalf("ReadAll yielded sequence %d at position %d", all[i].Sequence, i)
			}
		}
		for w := range writers {
			recs := collect(t, s.ReadStream(bg, co("t", fmt.Sprint("w", w)), 0, batpak.Backward()))
			for i := range recs {
				if recs[i].Version != uint64(len(recs)-i) {
					t.Fatalf("stream w%d read backward: version %d at position %d of %d", w, recs[i].Version, i, len(recs))
				}
			}
		}
	}
	if got := s.LastSequence(); got != writers*rounds*3 {
		t.Fatalf("LastSequence = %d, want %d", got, writers*rounds*3)
	}
	t.Logf("%d rounds of reads while appending", checks)
}
