package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/policy"
)

// Tally is an aggregate root: it folds its events into a total.
type Tally struct{ Total int64 }

// Added is its only event.
type Added struct{ N int64 }

func (t *Tally) Apply(event any) {
	if e, ok := event.(Added); ok {
		t.Total += e.N
	}
}

// Add is a command: it decides which events to emit.
type Add struct{ N int64 }

func (c Add) Handle(*Tally) ([]any, error) { return []any{Added(c)}, nil }

// Cap is the policy context: the most a tally may hold.
type Cap struct{ Max int64 }

func ExampleRepository_Execute() {
	dir, err := os.MkdirTemp("", "tally")
	if err != nil {
		panic(err)
	}
	defer os.RemoveAll(dir)
	store, err := eventstore.Open(dir, eventstore.WithSyncMode(eventstore.SyncNone))
	if err != nil {
		panic(err)
	}
	defer store.Close()

	reg := batpak.NewRegistry()
	batpak.MustRegister[Added](reg, kind.Custom(0x3, 0x001))

	gates := policy.NewGateSet(policy.EvaluateAll,
		policy.GateFunc("positive", func(_ Cap, p aggregate.Proposal[Tally]) *policy.Denial {
			if p.Command.(Add).N <= 0 {
				return policy.Deny("NOT_POSITIVE", "only positive amounts")
			}
			return nil
		}),
		policy.GateFunc("cap", func(c Cap, p aggregate.Proposal[Tally]) *policy.Denial {
			if after := p.State.Total + p.Command.(Add).N; after > c.Max {
				return policy.Deny("OVER_CAP", "the tally would exceed its cap", "after", after, "max", c.Max)
			}
			return nil
		}),
	)
	repo := aggregate.NewRepository[Tally, *Tally, Cap](store, reg, "tallies",
		aggregate.WithGates[Tally, Cap](gates))
	ctx := context.Background()

	for _, n := range []int64{3, 4} {
		res, err := repo.Execute(ctx, "tally:1", Cap{Max: 10}, Add{N: n})
		if err != nil {
			panic(err)
		}
		fmt.Printf("total %d at version %d after %d attempt(s)\n", res.State.Total, res.Version, res.Attempts)
	}

	_, err = repo.Execute(ctx, "tally:1", Cap{Max: 10}, Add{N: -20})
	fmt.Println(err)
	_, err = repo.Execute(ctx, "tally:1", Cap{Max: 10}, Add{N: 5})
	fmt.Println(err, errors.Is(err, policy.ErrDenied))

	state, version, _ := repo.Load(ctx, "tally:1")
	fmt.Println("loaded:", state.Total, version)
	for rec := range store.ReadStream("tally:1", 0) {
		fmt.Println(rec.Version, rec.Metadata[policy.MetaGates])
	}
	// Output:
	// total 3 at version 1 after 1 attempt(s)
	// total 7 at version 2 after 1 attempt(s)
	// policy: gate "positive" denied: only positive amounts (NOT_POSITIVE)
	// policy: gate "cap" denied: the tally would exceed its cap (OVER_CAP) [after=12 max=10] true
	// loaded: 7 2
	// 1 [positive cap]
	// 2 [positive cap]
}
