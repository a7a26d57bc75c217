package aggregate_test

import (
	"context"
	"errors"
	"reflect"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/policy"
)

// TestCommandsMayReturnPointers: a command that returns &Deposited{} is
// stored as the registered Deposited, and Apply, the gates and the result
// see the value, as they do on a reload.
func TestCommandsMayReturnPointers(t *testing.T) {
	s := openStore(t)
	var seen []any
	spy := policy.GateFunc("spy", func(_ Policy, p proposal) *policy.Denial {
		seen = append(seen, p.Events...)
		return nil
	})
	r, err := aggregate.NewGatedRepository(s, registry(), scope, policy.NewGateSet(policy.FailFast, spy))
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, r, "p", Open{})
	res := mustExec(t, r, "p", Emit{Events: []any{&Deposited{Amount: 5}, Deposited{Amount: 6}, &Credited{Amount: 7, From: "x"}}})
	want := []any{Deposited{Amount: 5}, Deposited{Amount: 6}, Credited{Amount: 7, From: "x"}}
	if !reflect.DeepEqual(res.Events, want) {
		t.Errorf("Result.Events = %#v, want %#v", res.Events, want)
	}
	if !reflect.DeepEqual(seen[1:], want) {
		t.Errorf("the gate saw %#v, want %#v", seen[1:], want)
	}
	// Account.Apply switches on values: the pointers were applied.
	if res.State.Balance != 18 || res.State.Events != 4 {
		t.Errorf("state %+v: the events returned as pointers were not applied", res.State)
	}
	if got := fold(t, s, "p"); got != *res.State {
		t.Errorf("reloaded %+v, result %+v", got, *res.State)
	}
}

// pointerRoot is the state of a registry that registered a pointer type:
// Apply receives *Deposited, after a command and on a reload, whether
// the command returned a value or a pointer.
type pointerRoot struct{ Sum, Pointers int64 }

func (r *pointerRoot) Apply(event any) {
	if e, ok := event.(*Deposited); ok {
		r.Sum += e.Amount
		r.Pointers++
	}
}

type emitAny []any

func (c emitAny) Handle(*pointerRoot) ([]any, error) { return c, nil }

func TestPointerRegistered(t *testing.T) {
	s := openStore(t)
	reg := batpak.NewRegistry()
	batpak.MustRegister[*Deposited](reg, kind.Custom(0x2, 0x002), "tally.DepositedPtr")
	r, err := aggregate.NewRepository[pointerRoot](s, reg, scope)
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	res, err := r.Execute(ctx, "ptr", emitAny{Deposited{Amount: 1}, &Deposited{Amount: 2}})
	if err != nil {
		t.Fatal(err)
	}
	if res.State.Sum != 3 || res.State.Pointers != 2 {
		t.Errorf("after the command %+v", res.State)
	}
	for _, ev := range res.Events {
		if _, ok := ev.(*Deposited); !ok {
			t.Errorf("Result.Events holds a %T, want *Deposited", ev)
		}
	}
	st, _, err := r.Load(ctx, "ptr")
	if err != nil || *st != *res.State {
		t.Errorf("reloaded %+v %v, result %+v", st, err, res.State)
	}
}

// TestUnregisteredEvents: an event registered in no form fails the command
// with ErrNotRegistered before any gate runs, and appends nothing.
func TestUnregisteredEvents(t *testing.T) {
	type Unknown struct{ X int }
	s := openStore(t)
	ran := false
	spy := policy.GateFunc("spy", func(Policy, proposal) *policy.Denial { ran = true; return nil })
	r, err := aggregate.NewGatedRepository(s, registry(), scope, policy.NewGateSet(policy.FailFast, spy))
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, r, "u", Open{})
	ran = false
	var nilDeposit *Deposited
	for _, tc := range []struct {
		events []any
		msg    string
	}{
		{[]any{Unknown{1}}, "aggregate_test.Unknown"},
		{[]any{Deposited{Amount: 1}, &Unknown{1}}, "*aggregate_test.Unknown"},
		{[]any{nil}, "a nil event"},
		{[]any{nilDeposit}, "a nil *aggregate_test.Deposited"},
		{[]any{&nilDeposit}, "**aggregate_test.Deposited"},
	} {
		res, err := execute(r, "u", Emit{Events: tc.events})
		if !errors.Is(err, aggregate.ErrNotRegistered) || res != nil || !strings.Contains(err.Error(), tc.msg) {
			t.Errorf("%#v: Execute = %v, %v; want ErrNotRegistered naming %q", tc.events, res, err, tc.msg)
		}
	}
	if ran {
		t.Error("a gate judged unregistered events")
	}
	if v := s.StreamVersion(co("u")); v != 1 {
		t.Errorf("version %d, want 1", v)
	}
}
