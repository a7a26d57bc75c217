package aggregatetest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/aggregate/aggregatetest"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/policy"
)

// A tally: its events, state, commands and gates.
type (
	Added   struct{ N int64 }
	Cleared struct{}

	Tally struct{ Total int64 }

	Add   struct{ N int64 }
	Clear struct{}

	Cap struct{ Max int64 }
)

func (t *Tally) Apply(event any) {
	switch e := event.(type) {
	case Added:
		t.Total += e.N
	case Cleared:
		t.Total = 0
	}
}

var errEmpty = errors.New("nothing to clear")

func (c Add) Handle(*Tally) ([]any, error) { return []any{Added(c)}, nil }

func (Clear) Handle(t *Tally) ([]any, error) {
	if t.Total == 0 {
		return nil, errEmpty
	}
	return []any{Cleared{}}, nil
}

func registry() *batpak.Registry {
	reg := batpak.NewRegistry()
	batpak.MustRegister[Added](reg, kind.Custom(0x3, 0x001), "tally.Added")
	batpak.MustRegister[Cleared](reg, kind.Custom(0x3, 0x002), "tally.Cleared")
	return reg
}

func gates() *policy.GateSet[Cap, aggregate.Proposal[Tally]] {
	return policy.NewGateSet(policy.EvaluateAll,
		aggregate.CommandGate("cap", func(c Cap, add Add, p aggregate.Proposal[Tally]) *policy.Denial {
			if p.State.Total+add.N > c.Max {
				return policy.Deny("OVER_CAP", "the tally would exceed its cap")
			}
			return nil
		}))
}

// printT stands in for the *testing.T of a test: it prints failures.
type printT struct{}

func (printT) Helper() {}
func (printT) Errorf(format string, args ...any) {
	fmt.Println("FAIL:", strings.ReplaceAll(fmt.Sprintf(format, args...), "\n", "\n  "))
}

// In a test, t is the test's *testing.T; here printT prints what fails.
func Example() {
	var t printT
	spec := aggregatetest.NewGated(registry(), gates(), Cap{Max: 10})

	spec.Given(Added{N: 3}).When(Add{N: 4}).Then(t, Added{N: 4}).ThenState(t, Tally{Total: 7})
	spec.Given(Added{N: 3}).When(Add{N: 8}).ThenDenied(t, "cap", "OVER_CAP")
	spec.Given().When(Clear{}).ThenError(t, errEmpty)
	spec.Given(Added{N: 9}).WhenBypassed(Add{N: 5}, "promotion", "ops:jane").Then(t, Added{N: 5})

	// A failing check says what was given, what ran and what differs.
	spec.Given(Added{N: 3}).When(Add{N: 4}).Then(t, Added{N: 5})
	// Output:
	// FAIL: given aggregatetest_test.Added{N:3}
	//   when aggregatetest_test.Add{N:4} (with gates [cap] and policy {Max:10})
	//   got events:  aggregatetest_test.Added{N:4}
	//   want events: aggregatetest_test.Added{N:5}
}

// balances is a read model: the total of every tally.
type balances map[string]int64

func (b balances) Region() batpak.Region { return batpak.Region{Scope: "tallies"} }

func (b balances) Apply(_ context.Context, rec batpak.Record) error {
	ev, err := registry().Decode(&rec)
	if err != nil {
		return err
	}
	switch e := ev.(type) {
	case Added:
		b[rec.Coordinate.Entity] += e.N
	case Cleared:
		b[rec.Coordinate.Entity] = 0
	}
	return nil
}

func ExampleGivenEvents() {
	var t printT
	one := batpak.Coordinate{Entity: "tally:1", Scope: "tallies"}
	two := batpak.Coordinate{Entity: "tally:2", Scope: "tallies"}
	elsewhere := batpak.Coordinate{Entity: "tally:1", Scope: "other"}

	view := balances{}
	n := aggregatetest.GivenEvents(registry(),
		aggregatetest.On(one, Added{N: 3}, Added{N: 4}),
		aggregatetest.On(two, Added{N: 5}),
		aggregatetest.On(elsewhere, Added{N: 100}), // outside the region
		aggregatetest.On(one, Cleared{}, Added{N: 1}),
	).Project(t, view)
	fmt.Println("applied", n)
	aggregatetest.ThenModel(t, view, balances{"tally:1": 1, "tally:2": 5})
	// Output:
	// applied 5
}
