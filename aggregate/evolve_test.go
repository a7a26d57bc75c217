package aggregate_test

import (
	"context"
	"errors"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/projection"
)

// depositedV1 is how release 1 wrote a deposit: in whole units.
type depositedV1 struct{ Units int64 }

// TestLoadUpcasts: a stream written by an older release (deposits in
// units) loads through the current registry's upcaster, in a repository
// and in a projection fold: Apply sees only the current Deposited.
func TestLoadUpcasts(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	old := batpak.NewRegistry()
	batpak.MustRegister[Opened](old, kind.Custom(0x2, 0x001), "tally.Opened")
	batpak.MustRegister[depositedV1](old, kind.Custom(0x2, 0x002), "tally.Deposited")
	c := batpak.Coordinate{Entity: "old", Scope: scope}
	for _, v := range []any{Opened{Limit: 5}, depositedV1{Units: 3}, depositedV1{Units: 4}} {
		ev, err := old.Event(v)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := s.Append(ctx, c, []batpak.Event{ev}); err != nil {
			t.Fatal(err)
		}
	}
	cur := batpak.NewRegistry()
	batpak.MustRegister[Opened](cur, kind.Custom(0x2, 0x001), "tally.Opened")
	batpak.MustRegister[Deposited](cur, kind.Custom(0x2, 0x002), "tally.Deposited",
		batpak.Upcast(func(v depositedV1) (Deposited, error) { return Deposited{Amount: v.Units * 100}, nil }))
	repo, err := aggregate.NewRepository[Account](s, cur, scope)
	if err != nil {
		t.Fatal(err)
	}
	st, v, err := repo.Load(ctx, "old")
	if err != nil || v != 3 || st.Balance != 700 || st.Deposits != 700 {
		t.Fatalf("Load = %+v v%d, %v; want a balance of 700 at v3", st, v, err)
	}
	// A new deposit is written at the current version, next to the old.
	res, err := repo.Execute(ctx, "old", Deposit{Amount: 50})
	if err != nil || res.State.Balance != 750 {
		t.Fatalf("Execute = %+v, %v", res, err)
	}
	view, _, err := projection.Project[Account](ctx, s, cur, c)
	if err != nil || view.Balance != 750 {
		t.Fatalf("Project = %+v, %v", view, err)
	}
}

// TestLoadUnknownKind: an event of a kind the registry does not know
// fails the load instead of being skipped by Apply.
func TestLoadUnknownKind(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	c := batpak.Coordinate{Entity: "x", Scope: scope}
	if _, err := s.Append(ctx, c, []batpak.Event{{Kind: kind.Custom(0x2, 0x001), Payload: Opened{}}, {Kind: kind.Custom(0x2, 0x0FF), Type: "tally.Audited"}}); err != nil {
		t.Fatal(err)
	}
	repo, err := aggregate.NewRepository[Account](s, registry(), scope)
	if err != nil {
		t.Fatal(err)
	}
	_, _, err = repo.Load(ctx, "x")
	var ue *aggregate.UnknownEventError
	if !errors.Is(err, aggregate.ErrUnknownEvent) || !errors.As(err, &ue) || ue.Type != "tally.Audited" || ue.Version != 2 {
		t.Fatalf("Load of a stream with an unknown kind: %v", err)
	}
	if _, err := repo.Execute(ctx, "x", Deposit{Amount: 1}); !errors.Is(err, aggregate.ErrUnknownEvent) {
		t.Fatalf("Execute on it: %v", err)
	}
}
