package aggregate_test

import (
	"context"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/batpak-go/batpak/aggregate"
)

// TestConcurrentDeposits runs 16 goroutines x 25 deposits of 1 on one
// account through one repository: optimistic concurrency with retries must
// give exactly the serial result.
func TestConcurrentDeposits(t *testing.T) {
	const workers, each = 16, 25
	tests := []struct {
		name string
		opts func(t *testing.T) []aggregate.Option
	}{
		{"plain", func(*testing.T) []aggregate.Option { return nil }},
		{"memory snapshots", func(*testing.T) []aggregate.Option {
			return []aggregate.Option{aggregate.WithSnapshots(aggregate.NewMemorySnapshots(), 7)}
		}},
		{"file snapshots", func(t *testing.T) []aggregate.Option {
			fs, err := aggregate.NewFileSnapshots(t.TempDir())
			if err != nil {
				t.Fatal(err)
			}
			return []aggregate.Option{aggregate.WithSnapshots(fs, 10)}
		}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := openStore(t)
			opts := append([]aggregate.Option{aggregate.WithMaxRetries(1 << 20)}, tc.opts(t)...)
			r := newGated(t, s, opts...)
			ctx := context.Background()
			mustExec(t, r, "shared", Open{})
			var attempts atomic.Int64
			start := make(chan struct{})
			var wg sync.WaitGroup
			for range workers {
				wg.Go(func() {
					<-start
					for range each {
						res, err := r.Execute(ctx, "shared", Policy{}, Deposit{Amount: 1})
						if err != nil {
							t.Error(err)
							return
						}
						attempts.Add(int64(res.Attempts))
						if res.State.Balance != res.State.Deposits || res.Version != uint64(res.State.Events) {
							t.Errorf("inconsistent result %+v v%d", *res.State, res.Version)
						}
					}
				})
			}
			close(start)
			wg.Wait()
			st, v, err := r.Load(ctx, "shared")
			if err != nil || st.Balance != workers*each || v != workers*each+1 {
				t.Fatalf("Load = %+v v%d %v; want balance %d at version %d", st, v, err, workers*each, workers*each+1)
			}
			if sv := s.StreamVersion(co("shared")); sv != workers*each+1 {
				t.Errorf("stream version %d", sv)
			}
			if got := fold(t, s, "shared"); got != *st {
				t.Errorf("stored %+v, loaded %+v", got, *st)
			}
			if plain, _, err := newPlain(t, s).Load(ctx, "shared"); err != nil || *plain != *st {
				t.Errorf("replay without snapshots %+v %v, loaded %+v", plain, err, *st)
			}
			t.Logf("%d attempts for %d deposits", attempts.Load(), workers*each)
		})
	}
}
