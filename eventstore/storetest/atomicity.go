package storetest

import (
	"context"
	"fmt"
	"slices"
	"sync"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// testAtomicity: multi-event appends and batches get consecutive sequences
// and are all-or-nothing; a failing request never takes the requests
// committed with it down.
func testAtomicity(t *testing.T, e *env) {
	s := e.s
	ctx := context.Background()
	mustAppend(t, s, coord("atom:a"), evs(kindOpened, 1))
	multi := mustAppend(t, s, coord("atom:a"), evs(kindDeposited, 4))
	batch := mustBatch(t, s, []batpak.BatchItem{
		{Coordinate: coord("atom:b"), Event: ev(kindOpened, 0)},
		{Coordinate: coord("atom:a"), Event: ev(kindWithdrawn, 1)},
		{Coordinate: coord("atom:c"), Event: ev(kindOpened, 0)},
		{Coordinate: coord("atom:b"), Event: ev(kindDeposited, 1)},
	})
	for _, rs := range [][]batpak.Receipt{multi, batch} {
		for i := range rs {
			if rs[i].Sequence != rs[0].Sequence+uint64(i) {
				t.Fatalf("receipts of one request are not consecutive: %+v", rs)
			}
		}
	}
	if vs := []uint64{multi[0].Version, multi[3].Version}; !slices.Equal(vs, []uint64{2, 5}) {
		t.Fatalf("multi-event append versions %v, want 2..5", vs)
	}
	last := s.LastSequence()
	versions := map[string]uint64{"atom:a": 6, "atom:b": 2, "atom:c": 1, "atom:d": 0}

	reserved := batpak.Event{Kind: kind.Kind(0x0002), Payload: 1}
	failures := []struct {
		name string
		do   func() error
	}{
		{"batch with a conflicting last item", func() error {
			_, err := s.AppendBatch(ctx, []batpak.BatchItem{
				{Coordinate: coord("atom:d"), Event: ev(kindOpened, 0)},
				{Coordinate: coord("atom:a"), Event: ev(kindDeposited, 1)},
				{Coordinate: coord("atom:c"), Event: ev(kindDeposited, 1), Expected: batpak.NoStream},
			})
			return err
		}},
		{"batch with a reserved kind", func() error {
			_, err := s.AppendBatch(ctx, []batpak.BatchItem{
				{Coordinate: coord("atom:d"), Event: ev(kindOpened, 0)},
				{Coordinate: coord("atom:a"), Event: reserved},
			})
			return err
		}},
		{"batch with a bad coordinate", func() error {
			_, err := s.AppendBatch(ctx, []batpak.BatchItem{
				{Coordinate: coord("atom:d"), Event: ev(kindOpened, 0)},
				{Coordinate: batpak.Coordinate{Entity: "atom:e"}, Event: ev(kindOpened, 0)},
			})
			return err
		}},
		{"multi-event append with a reserved kind", func() error {
			_, err := s.Append(ctx, coord("atom:a"), []batpak.Event{ev(kindDeposited, 1), ev(kindDeposited, 2), reserved})
			return err
		}},
		{"multi-event append with a stale version", func() error {
			_, err := s.Append(ctx, coord("atom:a"), evs(kindDeposited, 3), batpak.ExpectVersion(batpak.Exactly(5)))
			return err
		}},
	}
	for _, f := range failures {
		if err := f.do(); err == nil {
			t.Fatalf("%s succeeded", f.name)
		}
		checkUnchanged(t, s, last, versions)
	}
	s = e.settle()
	checkUnchanged(t, s, last, versions)
	// Nothing of the failed requests took a sequence or a version.
	rs := mustAppend(t, s, coord("atom:d"), evs(kindOpened, 1), batpak.ExpectVersion(batpak.NoStream))
	if rs[0].Sequence != last+1 || rs[0].Version != 1 {
		t.Fatalf("append after failed ones: sequence %d version %d, want %d and 1", rs[0].Sequence, rs[0].Version, last+1)
	}

	// Failing requests committed together with good ones do not fail them.
	const workers, rounds = 6, 8
	base := s.LastSequence()
	var wg sync.WaitGroup
	tctx := testContext(t)
	for w := range workers {
		wg.Go(func() {
			for i := range rounds {
				if _, err := s.Append(tctx, coord(fmt.Sprintf("atom:w%d", w)), []batpak.Event{ev(kindDeposited, i)}); err != nil {
					t.Errorf("good append: %v", err)
				}
				_, err := s.AppendBatch(tctx, []batpak.BatchItem{
					{Coordinate: coord(fmt.Sprintf("atom:w%d", w)), Event: ev(kindNoted, i)},
					{Coordinate: coord("atom:a"), Event: ev(kindNoted, i), Expected: batpak.NoStream},
				})
				if err == nil {
					t.Errorf("conflicting batch succeeded")
				}
			}
		})
	}
	wg.Wait()
	if got := s.LastSequence(); got != base+workers*rounds {
		t.Fatalf("LastSequence = %d, want %d", got, base+workers*rounds)
	}
	for w := range workers {
		if v := s.StreamVersion(coord(fmt.Sprintf("atom:w%d", w))); v != rounds {
			t.Fatalf("worker stream %d at version %d, want %d", w, v, rounds)
		}
	}
	if !slices.Equal(seqsOf(collect(t, s.ReadAll(bgctx, 0))), span(1, base+workers*rounds)) {
		t.Fatal("ReadAll sequences are not dense")
	}
}

// testAtomicVisibility: readers never see part of a request: with only
// 4-event requests, every read sees a multiple of 4 events.
func testAtomicVisibility(t *testing.T, e *env) {
	s := e.s
	const requests, size = 30, 4
	ctx, cancel := context.WithCancel(testContext(t))
	defer cancel()
	var wg sync.WaitGroup
	wg.Go(func() {
		defer cancel()
		for i := range requests {
			var err error
			if i%2 == 0 {
				_, err = s.Append(ctx, coord("vis:m"), evs(kindDeposited, size))
			} else {
				items := make([]batpak.BatchItem, size)
				for j := range items {
					items[j] = batpak.BatchItem{Coordinate: coord(fmt.Sprintf("vis:%d", j)), Event: ev(kindNoted, i)}
				}
				_, err = s.AppendBatch(ctx, items)
			}
			if err != nil {
				t.Errorf("append: %v", err)
				return
			}
		}
	})
	wg.Go(func() {
		for ctx.Err() == nil {
			if n := s.LastSequence(); n%size != 0 {
				t.Errorf("LastSequence = %d: part of a request is visible", n)
				return
			}
			if n := len(collectNoFatal(t, s.ReadAll(bgctx, 0))); n%size != 0 {
				t.Errorf("ReadAll saw %d events: part of a request is visible", n)
				return
			}
			if n := s.StreamVersion(coord("vis:m")); n%size != 0 {
				t.Errorf("StreamVersion = %d: part of a request is visible", n)
				return
			}
		}
	})
	wg.Wait()
	if got := s.LastSequence(); got != requests*size {
		t.Fatalf("LastSequence = %d, want %d", got, requests*size)
	}
}
