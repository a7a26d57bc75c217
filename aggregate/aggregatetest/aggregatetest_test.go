package aggregatetest_test

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/aggregate/aggregatetest"
	"github.com/batpak-go/batpak/kind"
)

// recT records failures instead of failing.
type recT struct{ failures []string }

func (r *recT) Helper() {}
func (r *recT) Errorf(format string, args ...any) {
	r.failures = append(r.failures, fmt.Sprintf(format, args...))
}

// expect fails t unless rec saw exactly the failures that contain each of
// want (none if want is empty).
func expect(t *testing.T, name string, rec *recT, want ...string) {
	t.Helper()
	if len(rec.failures) != len(want) {
		t.Errorf("%s: %d failures, want %d: %q", name, len(rec.failures), len(want), rec.failures)
		return
	}
	for i, w := range want {
		if !strings.Contains(rec.failures[i], w) {
			t.Errorf("%s: failure %q does not say %q", name, rec.failures[i], w)
		}
	}
}

func TestThen(t *testing.T) {
	gated := aggregatetest.NewGated(registry(), gates(), Cap{Max: 10})
	plain := aggregatetest.New[Tally](registry())
	tests := []struct {
		name  string
		check func(aggregatetest.TestingT)
		fails []string
	}{
		{"events", func(t aggregatetest.TestingT) {
			gated.Given(Added{N: 1}).When(Add{N: 2}).Then(t, Added{N: 2}).ThenState(t, Tally{Total: 3})
		}, nil},
		{"a pointer expected equals the value stored", func(t aggregatetest.TestingT) {
			plain.Given(&Added{N: 1}).When(Add{N: 2}).Then(t, &Added{N: 2})
		}, nil},
		{"no events", func(t aggregatetest.TestingT) {
			plain.Given().When(noop{}).Then(t)
		}, nil},
		{"other events", func(t aggregatetest.TestingT) {
			plain.Given().When(Add{N: 2}).Then(t, Added{N: 3})
		}, []string{"got events:  aggregatetest_test.Added{N:2}\nwant events: aggregatetest_test.Added{N:3}"}},
		{"fewer events", func(t aggregatetest.TestingT) {
			plain.Given().When(Add{N: 2}).Then(t)
		}, []string{"want events: nothing"}},
		{"another state", func(t aggregatetest.TestingT) {
			plain.Given(Added{N: 1}).When(Add{N: 2}).ThenState(t, Tally{Total: 4})
		}, []string{"got state:  {Total:3}\nwant state: {Total:4}"}},
		{"a denial where events were expected", func(t aggregatetest.TestingT) {
			gated.Given(Added{N: 9}).When(Add{N: 2}).Then(t, Added{N: 2})
		}, []string{`failed: policy: gate "cap" denied`}},
		{"denied", func(t aggregatetest.TestingT) {
			gated.Given(Added{N: 9}).When(Add{N: 2}).ThenDenied(t, "cap", "OVER_CAP").ThenDeniedBy(t, "cap")
		}, nil},
		{"denied with another code", func(t aggregatetest.TestingT) {
			gated.Given(Added{N: 9}).When(Add{N: 2}).ThenDenied(t, "cap", "OTHER")
		}, []string{"got denials: cap (OVER_CAP)\nwant denial: cap (OTHER)"}},
		{"not denied", func(t aggregatetest.TestingT) {
			gated.Given().When(Add{N: 2}).ThenDenied(t, "cap", "OVER_CAP")
		}, []string{"got success with events aggregatetest_test.Added{N:2}, want a denial"}},
		{"denied by others", func(t aggregatetest.TestingT) {
			gated.Given(Added{N: 9}).When(Add{N: 2}).ThenDeniedBy(t, "cap", "more")
		}, []string{"want denials by: cap, more"}},
		{"error", func(t aggregatetest.TestingT) {
			plain.Given().When(Clear{}).ThenError(t, errEmpty)
		}, nil},
		{"another error", func(t aggregatetest.TestingT) {
			plain.Given().When(Clear{}).ThenError(t, context.Canceled)
		}, []string{`got the error "nothing to clear", want the error "context canceled"`}},
		{"no error", func(t aggregatetest.TestingT) {
			plain.Given(Added{N: 1}).When(Clear{}).ThenError(t, errEmpty)
		}, []string{"got success with events aggregatetest_test.Cleared{}"}},
		{"a denial is not an error", func(t aggregatetest.TestingT) {
			gated.Given(Added{N: 9}).When(Add{N: 2}).ThenError(t, aggregate.ErrNotRegistered)
		}, []string{`got the error "policy: gate \"cap\" denied`}},
		{"bypassed", func(t aggregatetest.TestingT) {
			o := gated.Given(Added{N: 9}).WhenBypassed(Add{N: 2}, "promo", "ops").Then(t, Added{N: 2})
			if o.Records[0].Metadata["policy.bypass.actor"] != "ops" {
				t.Errorf("metadata %v", o.Records[0].Metadata)
			}
		}, nil},
		{"an unjustified bypass", func(t aggregatetest.TestingT) {
			gated.Given().WhenBypassed(Add{N: 2}, "", "ops").Then(t, Added{N: 2})
		}, []string{"failed: policy: a bypass needs a reason and an actor"}},
		{"an unregistered given event", func(t aggregatetest.TestingT) {
			plain.Given(struct{}{}).When(Add{N: 1}).Then(t, Added{N: 1})
		}, []string{"failed: aggregatetest: given: struct {} is not registered"}},
		{"an unregistered expected event", func(t aggregatetest.TestingT) {
			plain.Given().When(Add{N: 1}).Then(t, 7)
		}, []string{"want events: int is not registered"}},
		{"the state after the command differs from a reload", func(t aggregatetest.TestingT) {
			reg := registry()
			batpak.MustRegister[noted](reg, kind.Custom(0x3, 0x003), "tally.noted")
			aggregatetest.New[lossyTally](reg).Given().When(lossyAdd{}).Then(t, noted{N: 1})
		}, []string{"the command left the state &{Note:lost}, a reload gives &{Note:}"}},
	}
	for _, tc := range tests {
		rec := &recT{}
		tc.check(rec)
		expect(t, tc.name, rec, tc.fails...)
	}
}

type noop struct{}

func (noop) Handle(*Tally) ([]any, error) { return nil, nil }

// noted is an event with an unexported field: msgpack does not carry it,
// so a state folded from the command's events differs from a reload.
type (
	noted struct {
		N    int64
		note string
	}
	lossyTally struct{ Note string }
	lossyAdd   struct{}
)

func (l *lossyTally) Apply(ev any) {
	if e, ok := ev.(noted); ok {
		l.Note = e.note
	}
}

func (lossyAdd) Handle(*lossyTally) ([]any, error) { return []any{noted{N: 1, note: "lost"}}, nil }

func TestOn(t *testing.T) {
	coord := batpak.Coordinate{Entity: "tally:9", Scope: "s"}
	rec := &recT{}
	o := aggregatetest.New[Tally](registry()).On(coord).Given(Added{N: 1}).When(Add{N: 1}).Then(rec, Added{N: 1})
	expect(t, "On", rec)
	if o.Records[0].Coordinate != coord || o.Records[0].Version != 2 {
		t.Errorf("record %s", o.Records[0].String())
	}
}

// failing fails every Apply.
type failing struct{}

func (failing) Region() batpak.Region                      { return batpak.Region{} }
func (failing) Apply(context.Context, batpak.Record) error { return errors.New("boom") }

func TestProject(t *testing.T) {
	c := batpak.Coordinate{Entity: "tally:1", Scope: "tallies"}
	rec := &recT{}
	view := balances{}
	h := aggregatetest.GivenEvents(registry(), aggregatetest.On(c, Added{N: 1}), aggregatetest.On(c, &Added{N: 2}))
	if n := h.Project(rec, view); n != 2 {
		t.Errorf("applied %d", n)
	}
	aggregatetest.ThenModel(rec, view, balances{"tally:1": 3})
	expect(t, "project", rec)

	rec = &recT{}
	if aggregatetest.ThenModel(rec, view, balances{"tally:1": 4}) {
		t.Error("ThenModel passed a difference")
	}
	expect(t, "another model", rec, "got read model:  map[tally:1:3]\nwant read model: map[tally:1:4]")

	rec = &recT{}
	h.Project(rec, failing{})
	expect(t, "failing", rec, "Apply(#1 tallies/tally:1 v1 ")

	rec = &recT{}
	aggregatetest.GivenEvents(registry(), aggregatetest.On(c, 7)).Project(rec, view)
	expect(t, "unregistered", rec, "event 0: int is not registered")
}
