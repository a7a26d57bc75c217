package aggregate_test

import (
	"context"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/kind"
)

// Profile holds a person's name, which its events carry sealed.
type Profile struct{ Name string }

func (p *Profile) Apply(event any) {
	if e, ok := event.(NameSet); ok {
		p.Name = e.Name
	}
}

// NameSet is personal data of the subject Who.
type NameSet struct{ Who, Name string }

func (n *NameSet) DataSubject() string { return n.Who } // a pointer receiver, on purpose

type SetName struct{ Who, Name string }

func (c SetName) Handle(*Profile) ([]any, error) { return []any{NameSet(c)}, nil }

// A repository never snapshots a state built from a data subject's
// events: a snapshot would keep the name after Forget and hand it on to
// every later snapshot (found by review). After Forget, Load shows no name.
func TestSnapshotsKeepNoPersonalData(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	reg := batpak.NewRegistry()
	if err := batpak.Register[NameSet](reg, kind.Custom(7, 1), "test.NameSet"); err != nil {
		t.Fatal(err)
	}
	snaps := aggregate.NewMemorySnapshots()
	repo, err := aggregate.NewRepository[Profile](s, reg, scope, aggregate.WithSnapshots(snaps, 1))
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"Ann", "Ann Lee"} {
		if _, err := repo.Execute(ctx, "p1", SetName{Who: "ann", Name: name}); err != nil {
			t.Fatal(err)
		}
	}
	if snap, ok, err := snaps.Load(ctx, co("p1")); err != nil || ok {
		t.Fatalf("a snapshot of a state holding personal data was saved: %+v, %v", snap, err)
	}
	if err := s.Forget(ctx, batpak.Subject{Scope: scope, ID: "ann"}); err != nil {
		t.Fatal(err)
	}
	p, v, err := repo.Load(ctx, "p1")
	if err != nil || v != 2 || p.Name != "" {
		t.Fatalf("after Forget: %+v at version %d, %v; want no name", p, v, err)
	}
}
