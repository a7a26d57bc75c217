package batpak_test

import (
	"errors"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

type (
	opened    struct{ Owner string }
	withdrawn struct{ Amount int }
)

func TestRegisterConflicts(t *testing.T) {
	k1, k2, k3 := kind.Custom(1, 1), kind.Custom(1, 2), kind.Custom(1, 3)
	reg := batpak.NewRegistry()
	if err := batpak.Register[opened](reg, k1, "bank.Opened"); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name     string
		register func() error
		target   error
	}{
		{"the same again", func() error { return batpak.Register[opened](reg, k1, "bank.Opened") }, nil},
		{"a kind twice", func() error { return batpak.Register[withdrawn](reg, k1, "bank.Withdrawn") }, batpak.ErrTypeConflict},
		{"a name twice", func() error { return batpak.Register[withdrawn](reg, k2, "bank.Opened") }, batpak.ErrTypeConflict},
		{"a name on a new kind", func() error { return batpak.Register[opened](reg, k2, "bank.Opened") }, batpak.ErrTypeConflict},
		{"a type twice", func() error { return batpak.Register[opened](reg, k3, "bank.Opened2") }, batpak.ErrTypeConflict},
		{"a system kind", func() error { return batpak.Register[withdrawn](reg, kind.Kind(1), "bank.W") }, batpak.ErrReservedKind},
		{"an empty name", func() error { return batpak.Register[withdrawn](reg, k2, "") }, batpak.ErrInvalidTypeName},
		{"a name with a space", func() error { return batpak.Register[withdrawn](reg, k2, "bank W") }, batpak.ErrInvalidTypeName},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.register()
			if !errors.Is(err, tt.target) || (tt.target == nil) != (err == nil) {
				t.Errorf("Register: %v, want %v", err, tt.target)
			}
		})
	}
	// Nothing refused was bound.
	if _, ok := reg.TypeName(k2); ok {
		t.Error("a refused registration bound kind 1:002")
	}
	ev, err := reg.Event(opened{Owner: "ann"})
	if err != nil || ev.Kind != k1 || ev.Type != "bank.Opened" {
		t.Errorf("Event = %+v, %v", ev, err)
	}
}

func TestCheckCatalog(t *testing.T) {
	k1, k2 := kind.Custom(1, 1), kind.Custom(1, 2)
	reg := batpak.NewRegistry()
	batpak.MustRegister[opened](reg, k1, "bank.Opened")
	batpak.MustRegister[withdrawn](reg, k2, "bank.Withdrawn")
	tests := []struct {
		name    string
		catalog map[kind.Kind]string
		want    int // conflicts
	}{
		{"empty", nil, 0},
		{"agrees", map[kind.Kind]string{k1: "bank.Opened", kind.Custom(9, 9): "other.X"}, 0},
		{"a kind renamed", map[kind.Kind]string{k1: "bank.AccountOpened"}, 1},
		{"a name moved", map[kind.Kind]string{kind.Custom(1, 7): "bank.Withdrawn"}, 1},
		{"swapped", map[kind.Kind]string{k1: "bank.Withdrawn", k2: "bank.Opened"}, 4},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := reg.CheckCatalog(tt.catalog)
			n := 0
			if j, ok := err.(interface{ Unwrap() []error }); ok {
				n = len(j.Unwrap())
			}
			if n != tt.want || (tt.want > 0 && !errors.Is(err, batpak.ErrTypeConflict)) {
				t.Errorf("CheckCatalog: %v (%d conflicts), want %d", err, n, tt.want)
			}
		})
	}
}

type byValue struct{ Who string }

func (b byValue) DataSubject() string { return b.Who }

type byPointer struct{ Who string }

func (b *byPointer) DataSubject() string { return b.Who }

// A Personal payload names its subject whether DataSubject has a value or
// a pointer receiver: a receiver never decides that personal data is
// stored in clear (found by review: with a pointer receiver, Event left the
// subject empty and the payload unsealed).
func TestEventSubjectWhateverTheReceiver(t *testing.T) {
	reg := batpak.NewRegistry()
	if err := batpak.Register[byValue](reg, kind.Custom(3, 1), "t.ByValue"); err != nil {
		t.Fatal(err)
	}
	if err := batpak.Register[byPointer](reg, kind.Custom(3, 2), "t.ByPointer"); err != nil {
		t.Fatal(err)
	}
	for _, v := range []any{byValue{"ann"}, byPointer{"ann"}} {
		ev, err := reg.Event(v)
		if err != nil {
			t.Fatalf("Event(%#v): %v", v, err)
		}
		if ev.Subject != "ann" {
			t.Errorf("Event(%#v).Subject = %q, want ann", v, ev.Subject)
		}
	}
}
