package aggregate_test

import (
	"context"
	"errors"
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
	"github.com/batpak-go/batpak/policy"
)

// Tally is an aggregate root: it folds its events into a total.
type Tally struct{ Total int64 }

// Its events.
type (
	Added   struct{ N int64 }
	Cleared struct{}
)

func (t *Tally) Apply(event any) {
	switch e := event.(type) {
	case Added:
		t.Total += e.N
	case Cleared:
		t.Total = 0
	}
}

// Commands decide which events to emit.
type (
	Add   struct{ N int64 }
	Clear struct{}
)

func (c Add) Handle(*Tally) ([]any, error) { return []any{Added(c)}, nil }

// Handle returns a pointer: the repository stores, and Apply receives,
// the registered value type.
func (Clear) Handle(*Tally) ([]any, error) { return []any{&Cleared{}}, nil }

// Cap is the gates' policy context: the most a tally may hold.
type Cap struct{ Max int64 }

func tallyRegistry() *batpak.Registry {
	reg := batpak.NewRegistry()
	batpak.MustRegister[Added](reg, kind.Custom(0x3, 0x001), "tally.Added")
	batpak.MustRegister[Cleared](reg, kind.Custom(0x3, 0x002), "tally.Cleared")
	return reg
}

func ExampleNewRepository() {
	store := memstore.New() // or eventstore.Open(dir), natsstore.Open(ctx, url)
	defer store.Close()
	ctx := context.Background()

	repo, err := aggregate.NewRepository[Tally](store, tallyRegistry(), "tallies")
	if err != nil {
		panic(err)
	}
	for _, cmd := range []aggregate.Command[Tally]{Add{N: 3}, Add{N: 4}, Clear{}, Add{N: 5}} {
		res, err := repo.Execute(ctx, "tally:1", cmd)
		if err != nil {
			panic(err)
		}
		fmt.Printf("%T%+v: total %d at version %d\n", res.Events[0], res.Events[0], res.State.Total, res.Version)
	}
	// Output:
	// aggregate_test.Added{N:3}: total 3 at version 1
	// aggregate_test.Added{N:4}: total 7 at version 2
	// aggregate_test.Cleared{}: total 0 at version 3
	// aggregate_test.Added{N:5}: total 5 at version 4
}

func ExampleNewGatedRepository() {
	store := memstore.New() // or eventstore.Open(dir), natsstore.Open(ctx, url)
	defer store.Close()
	ctx := context.Background()

	// CommandGate's gates see only Add commands, typed; a Clear passes them.
	gates := policy.NewGateSet(policy.EvaluateAll,
		aggregate.CommandGate("positive", func(_ Cap, add Add, _ aggregate.Proposal[Tally]) *policy.Denial {
			if add.N <= 0 {
				return policy.Deny("NOT_POSITIVE", "only positive amounts")
			}
			return nil
		}),
		aggregate.CommandGate("cap", func(c Cap, add Add, p aggregate.Proposal[Tally]) *policy.Denial {
			if after := p.State.Total + add.N; after > c.Max {
				return policy.Deny("OVER_CAP", "the tally would exceed its cap", "after", after, "max", c.Max)
			}
			return nil
		}),
	)
	repo, err := aggregate.NewGatedRepository(store, tallyRegistry(), "tallies", gates)
	if err != nil {
		panic(err)
	}
	limit := Cap{Max: 10}

	for _, n := range []int64{3, 4} {
		res, err := repo.Execute(ctx, "tally:1", limit, Add{N: n})
		if err != nil {
			panic(err)
		}
		fmt.Printf("total %d at version %d after %d attempt(s)\n", res.State.Total, res.Version, res.Attempts)
	}
	_, err = repo.Execute(ctx, "tally:1", limit, Add{N: -20})
	fmt.Println(err)
	_, err = repo.Execute(ctx, "tally:1", limit, Add{N: 5})
	fmt.Println(err, errors.Is(err, policy.ErrDenied))
	_, err = repo.Execute(ctx, "tally:1", limit, Clear{})
	fmt.Println("clear:", err)
	_, err = repo.Bypass(ctx, "tally:1", Add{N: 50}, "year-end carry-over", "ops:jane")
	fmt.Println("bypass:", err)

	state, version, _ := repo.Load(ctx, "tally:1")
	fmt.Println("loaded:", state.Total, version)
	for rec := range store.ReadStream(ctx, batpak.Coordinate{Entity: "tally:1", Scope: "tallies"}, 0) {
		if reason, ok := rec.Metadata[policy.MetaBypassReason]; ok {
			fmt.Println(rec.Version, "bypassed:", reason)
			continue
		}
		fmt.Println(rec.Version, "passed", rec.Metadata[policy.MetaGates])
	}
	// Output:
	// total 3 at version 1 after 1 attempt(s)
	// total 7 at version 2 after 1 attempt(s)
	// policy: gate "positive" denied: only positive amounts (NOT_POSITIVE)
	// policy: gate "cap" denied: the tally would exceed its cap (OVER_CAP) [after=12 max=10] true
	// clear: <nil>
	// bypass: <nil>
	// loaded: 50 4
	// 1 passed [positive cap]
	// 2 passed [positive cap]
	// 3 passed [positive cap]
	// 4 bypassed: year-end carry-over
}
