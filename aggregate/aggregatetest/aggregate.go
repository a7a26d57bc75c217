package aggregatetest

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"slices"
	"strings"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/policy"
)

// TestingT is what the Then functions need of a *testing.T (or of
// anything else that reports failures, as the package's examples do).
type TestingT interface {
	Helper()
	Errorf(format string, args ...any)
}

// defaultStream is the stream a [Spec]'s scenarios run on unless
// [Spec.On] names another.
var defaultStream = batpak.Coordinate{Entity: "aggregate:1", Scope: "aggregatetest"}

// root constrains PS to be *S implementing aggregate.Root.
type root[S any] interface {
	*S
	aggregate.Root
}

// Spec runs given/when/then scenarios against the aggregates of state S.
// A Spec is immutable and safe for concurrent use.
type Spec[S any] struct {
	reg    *batpak.Registry
	stream batpak.Coordinate
	// open builds the repository on a scenario's store: exec runs a
	// command, as Execute or Bypass, and load reloads the stream.
	open func(store batpak.Store, scope string) (repository[S], error)
}

type repository[S any] struct {
	exec   func(ctx context.Context, entity string, cmd aggregate.Command[S], bypass *bypass) (*aggregate.Result[S], error)
	load   func(ctx context.Context, entity string) (*S, uint64, error)
	policy string // how the command is judged, for failure messages
}

type bypass struct{ reason, actor string }

// New returns a spec for aggregates of state S without gates, whose event
// types are registered in reg; opts configure the repository.
func New[S any, PS root[S]](reg *batpak.Registry, opts ...aggregate.Option) *Spec[S] {
	return &Spec[S]{reg: reg, stream: defaultStream, open: func(store batpak.Store, scope string) (repository[S], error) {
		r, err := aggregate.NewRepository[S, PS](store, reg, scope, opts...)
		if err != nil {
			return repository[S]{}, err
		}
		return repository[S]{
			exec: func(ctx context.Context, entity string, cmd aggregate.Command[S], b *bypass) (*aggregate.Result[S], error) {
				if b != nil {
					return r.Bypass(ctx, entity, cmd, b.reason, b.actor)
				}
				return r.Execute(ctx, entity, cmd)
			},
			load:   r.Load,
			policy: "without gates",
		}, nil
	}}
}

// NewGated returns a spec for aggregates of state S whose commands go
// through gates, judged against the policy context pc. Its type arguments
// infer from gates.
func NewGated[S any, PS root[S], C any](reg *batpak.Registry, gates *policy.GateSet[C, aggregate.Proposal[S]], pc C, opts ...aggregate.Option) *Spec[S] {
	return &Spec[S]{reg: reg, stream: defaultStream, open: func(store batpak.Store, scope string) (repository[S], error) {
		r, err := aggregate.NewGatedRepository[S, PS](store, reg, scope, gates, opts...)
		if err != nil {
			return repository[S]{}, err
		}
		return repository[S]{
			exec: func(ctx context.Context, entity string, cmd aggregate.Command[S], b *bypass) (*aggregate.Result[S], error) {
				if b != nil {
					return r.Bypass(ctx, entity, cmd, b.reason, b.actor)
				}
				return r.Execute(ctx, entity, pc, cmd)
			},
			load:   r.Load,
			policy: fmt.Sprintf("with gates %v and policy %+v", gates.Names(), pc),
		}, nil
	}}
}

// On returns a copy of the spec whose scenarios run on the stream coord
// (the repository's scope is coord.Scope), for gates and commands that
// look at the stream's name. Without it, scenarios run on the entity
// "aggregate:1" of the scope "aggregatetest".
func (s *Spec[S]) On(coord batpak.Coordinate) *Spec[S] {
	c := *s
	c.stream = coord
	return &c
}

// Given starts a scenario whose stream holds events (values of registered
// types, or pointers to them), in order.
func (s *Spec[S]) Given(events ...any) *Scenario[S] {
	return &Scenario[S]{spec: s, given: events}
}

// Scenario is a stream's history, for a command to run on.
type Scenario[S any] struct {
	spec  *Spec[S]
	given []any
}

// When runs cmd, as the repository's Execute does, on a new store holding
// the scenario's history, and returns what happened.
func (sc *Scenario[S]) When(cmd aggregate.Command[S]) *Outcome[S] {
	return sc.run(cmd, nil)
}

// WhenBypassed runs cmd as the repository's Bypass does, skipping the
// gates on record with reason and actor.
func (sc *Scenario[S]) WhenBypassed(cmd aggregate.Command[S], reason, actor string) *Outcome[S] {
	return sc.run(cmd, &bypass{reason: reason, actor: actor})
}

// Outcome is what a command did. Then, ThenDenied and ThenError check it;
// a test may also look at its fields.
type Outcome[S any] struct {
	Given   []any
	Command aggregate.Command[S]
	// Err is the command's error: nil, [policy.Denials], the command's
	// own error, or a failure of the scenario's setup.
	Err error
	// Events are the events the command appended, read back from the
	// store and decoded; Records are the same events as stored.
	Events  []any
	Records []batpak.Record
	// State is the state the command returned (nil if it failed), and
	// Reloaded the state a reload of the stream gives afterwards.
	State, Reloaded *S

	registry *batpak.Registry
	policy   string
	setup    bool // Err is a failure of the scenario, not of the command
}

func (sc *Scenario[S]) run(cmd aggregate.Command[S], b *bypass) *Outcome[S] {
	o := &Outcome[S]{Given: sc.given, Command: cmd, registry: sc.spec.reg}
	if err := sc.exec(o, b); err != nil {
		o.setup, o.Err = true, err
	}
	return o
}

// exec runs the scenario into o, the command's error in o.Err; it returns
// a failure of the scenario itself.
func (sc *Scenario[S]) exec(o *Outcome[S], b *bypass) error {
	ctx := context.Background()
	spec := sc.spec
	store := newStore()
	defer store.Close()
	if len(sc.given) > 0 {
		events, err := toEvents(spec.reg, sc.given)
		if err != nil {
			return fmt.Errorf("aggregatetest: given: %w", err)
		}
		if _, err := store.Append(ctx, spec.stream, events); err != nil {
			return fmt.Errorf("aggregatetest: given: %w", err)
		}
	}
	repo, err := spec.open(store, spec.stream.Scope)
	if err != nil {
		return fmt.Errorf("aggregatetest: %w", err)
	}
	o.policy = repo.policy
	res, err := repo.exec(ctx, spec.stream.Entity, o.Command, b)
	o.Err = err
	if err == nil {
		o.State = res.State
	}
	for rec, err := range store.ReadStream(ctx, spec.stream, uint64(len(sc.given))+1) {
		if err != nil {
			return fmt.Errorf("aggregatetest: read back: %w", err)
		}
		ev, err := spec.reg.Decode(&rec)
		if err != nil {
			return fmt.Errorf("aggregatetest: read back: %w", err)
		}
		o.Records = append(o.Records, rec)
		o.Events = append(o.Events, ev)
	}
	if o.Reloaded, _, err = repo.load(ctx, spec.stream.Entity); err != nil {
		return fmt.Errorf("aggregatetest: reload: %w", err)
	}
	return nil
}

// Then checks that the command succeeded and appended exactly events (in
// order; none for a command that emits nothing), and that the state it
// returned equals the state a reload gives. It reports every difference
// to t and returns the outcome, for more checks.
func (o *Outcome[S]) Then(t TestingT, events ...any) *Outcome[S] {
	t.Helper()
	if o.Err != nil {
		t.Errorf("%s\nfailed: %v\nwant events: %s", o.scenario(), o.Err, list(events))
		return o
	}
	want, err := roundTrip(o.registry, events)
	if err != nil {
		t.Errorf("%s\nwant events: %v", o.scenario(), err)
		return o
	}
	if !reflect.DeepEqual(o.Events, want) {
		t.Errorf("%s\ngot events:  %s\nwant events: %s", o.scenario(), list(o.Events), list(want))
	}
	if !reflect.DeepEqual(o.State, o.Reloaded) {
		t.Errorf("%s\nthe command left the state %+v, a reload gives %+v: does an event lose a field through msgpack?", o.scenario(), o.State, o.Reloaded)
	}
	return o
}

// ThenState checks that the state after the command equals want.
func (o *Outcome[S]) ThenState(t TestingT, want S) *Outcome[S] {
	t.Helper()
	if o.Reloaded == nil || !reflect.DeepEqual(*o.Reloaded, want) {
		t.Errorf("%s\ngot state:  %+v\nwant state: %+v", o.scenario(), deref(o.Reloaded), want)
	}
	return o
}

// ThenDenied checks that exactly one gate denied the command, the gate
// named gate with the code code, and that nothing was appended.
func (o *Outcome[S]) ThenDenied(t TestingT, gate, code string) *Outcome[S] {
	t.Helper()
	ds, ok := o.denials(t)
	if ok && (len(ds) != 1 || ds[0].Gate != gate || ds[0].Code != code) {
		t.Errorf("%s\ngot denials: %s\nwant denial: %s (%s)", o.scenario(), denials(ds), gate, code)
	}
	return o
}

// ThenDeniedBy checks that exactly the gates named denied the command, in
// their order in the gate set, and that nothing was appended.
func (o *Outcome[S]) ThenDeniedBy(t TestingT, gates ...string) *Outcome[S] {
	t.Helper()
	ds, ok := o.denials(t)
	if !ok {
		return o
	}
	got := make([]string, len(ds))
	for i, d := range ds {
		got[i] = d.Gate
	}
	if !slices.Equal(got, gates) {
		t.Errorf("%s\ngot denials: %s\nwant denials by: %s", o.scenario(), denials(ds), strings.Join(gates, ", "))
	}
	return o
}

func (o *Outcome[S]) denials(t TestingT) (policy.Denials, bool) {
	t.Helper()
	var ds policy.Denials
	if o.setup || !errors.As(o.Err, &ds) {
		t.Errorf("%s\ngot %s, want a denial", o.scenario(), o.result())
		return nil, false
	}
	o.nothingAppended(t)
	return ds, true
}

// ThenError checks that the command failed with an error matching want
// (errors.Is) that is not a denial, and that nothing was appended.
func (o *Outcome[S]) ThenError(t TestingT, want error) *Outcome[S] {
	t.Helper()
	if o.setup || !errors.Is(o.Err, want) || (errors.Is(o.Err, policy.ErrDenied) && !errors.Is(want, policy.ErrDenied)) {
		t.Errorf("%s\ngot %s, want the error %q", o.scenario(), o.result(), want)
		return o
	}
	o.nothingAppended(t)
	return o
}

func (o *Outcome[S]) nothingAppended(t TestingT) {
	t.Helper()
	if len(o.Events) > 0 {
		t.Errorf("%s\nit failed but appended %s", o.scenario(), list(o.Events))
	}
}

// scenario describes the outcome's scenario for failure messages.
func (o *Outcome[S]) scenario() string {
	s := fmt.Sprintf("given %s\nwhen %s", list(o.Given), describe(o.Command))
	if o.policy != "" {
		s += " (" + o.policy + ")"
	}
	return s
}

// result describes what happened, for failure messages.
func (o *Outcome[S]) result() string {
	switch {
	case o.setup:
		return fmt.Sprintf("a failed scenario: %v", o.Err)
	case o.Err != nil:
		return fmt.Sprintf("the error %q", o.Err)
	}
	return "success with events " + list(o.Events)
}
