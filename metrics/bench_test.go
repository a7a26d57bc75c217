package metrics_test

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/metrics"
)

// TestObserverAllocatesNothing: an observation on the write path costs no
// allocation.
func TestObserverAllocatesNothing(t *testing.T) {
	o := metrics.NewStoreObserver()
	conflict := fmt.Errorf("wrapped: %w", batpak.ErrVersionConflict)
	other := errors.New("other")
	n := testing.AllocsPerRun(1000, func() {
		o.ObserveAppend(1, time.Millisecond, nil)
		o.ObserveAppend(1, time.Millisecond, conflict)
		o.ObserveAppend(1, time.Millisecond, other)
		o.ObserveCommit(3, 5, 900, time.Millisecond)
		o.ObserveSync(time.Millisecond)
	})
	if n != 0 {
		t.Errorf("%v allocations per round of observations", n)
	}
}

// BenchmarkAppend measures single-event appends without a sync, from one
// goroutine, with and without the metrics observer: the observer's cost
// on the write path.
func BenchmarkAppend(b *testing.B) {
	for _, observed := range []bool{false, true} {
		b.Run(fmt.Sprintf("observer=%v", observed), func(b *testing.B) {
			opts := []eventstore.Option{eventstore.WithSyncMode(eventstore.SyncNone)}
			if observed {
				opts = append(opts, eventstore.WithObserver(metrics.NewStoreObserver()))
			}
			s, err := eventstore.Open(b.TempDir(), opts...)
			if err != nil {
				b.Fatal(err)
			}
			defer s.Close()
			ctx := context.Background()
			c := batpak.Coordinate{Entity: "bench", Scope: "bench"}
			ev := []batpak.Event{{Kind: testKind, Payload: batpak.RawPayload{0xc0}}}
			b.ReportAllocs()
			for b.Loop() {
				if _, err := s.Append(ctx, c, ev); err != nil {
					b.Fatal(err)
				}
			}
		})
	}
}
