package aggregate

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"reflect"

	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/policy"
	"github.com/batpak-go/batpak/tracing"
)

// Store is what a repository needs of an event store. Every [batpak.Store]
// has it.
type Store interface {
	Append(ctx context.Context, coord batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) ([]batpak.Receipt, error)
	ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error]
	StreamVersion(coord batpak.Coordinate) uint64
}

var _ Store = batpak.Store(nil)

// ErrTooManyConflicts is returned when every attempt lost to a concurrent
// writer; it wraps the last [batpak.VersionConflictError].
var ErrTooManyConflicts = errors.New("aggregate: too many concurrent modifications")

// ptr constrains PS to be *S implementing Root.
type ptr[S any] interface {
	*S
	Root
}

// Repository loads and saves aggregates of state type S in one scope,
// without policy gates: see [GatedRepository] for those.
type Repository[S any, PS ptr[S]] struct {
	c core[S, PS]
}

// NewRepository returns a repository for the aggregates of state S in
// scope, whose event types are registered in reg. Its type argument is the
// state type, the one thing none of its arguments names:
//
//	repo, err := aggregate.NewRepository[Tally](store, reg, "tallies")
//
// It fails for an invalid scope ([batpak.ErrInvalidCoordinate]) and, with
// [WithSnapshots], for a state that snapshots would not restore
// ([ErrNotSnapshottable]).
func NewRepository[S any, PS ptr[S]](store Store, reg *batpak.Registry, scope string, opts ...Option) (*Repository[S, PS], error) {
	c, err := newCore[S, PS](store, reg, scope, opts)
	if err != nil {
		return nil, err
	}
	return &Repository[S, PS]{c}, nil
}

// Scope returns the scope of the repository's streams.
func (r *Repository[S, PS]) Scope() string { return r.c.scope }

// SnapshotStats returns what the repository's snapshots did.
func (r *Repository[S, PS]) SnapshotStats() SnapshotStats { return r.c.snapCount.stats() }

// Load returns the current state of the aggregate entity of the
// repository's scope and its version: 0 and the zero state for an entity
// without events.
func (r *Repository[S, PS]) Load(ctx context.Context, entity string) (*S, uint64, error) {
	state, version, _, err := r.c.load(ctx, entity)
	return state, version, err
}

// Execute handles cmd on the aggregate entity of the repository's scope:
// load, handle, append with the expected version. It retries from the
// load when a concurrent writer changed the stream, up to the repository's
// bound ([WithMaxRetries]).
func (r *Repository[S, PS]) Execute(ctx context.Context, entity string, cmd Command[S], opts ...ExecOption) (*Result[S], error) {
	return r.c.run(ctx, entity, cmd, opts, func(ctx context.Context, p Proposal[S], save saveFunc[S]) ([]batpak.Receipt, error) {
		return save(ctx, p, policy.Audit{})
	})
}

// Bypass handles cmd like Execute but records reason and actor in every
// emitted event's metadata, as a [GatedRepository]'s Bypass does. Both are
// required ([policy.ErrBypassUnjustified]).
func (r *Repository[S, PS]) Bypass(ctx context.Context, entity string, cmd Command[S], reason, actor string, opts ...ExecOption) (*Result[S], error) {
	return bypass(ctx, &r.c, policy.NewGateSet[struct{}, Proposal[S]](policy.FailFast), entity, cmd, reason, actor, opts)
}

// GatedRepository loads and saves aggregates of state type S in one
// scope, running every command's proposal through policy gates that judge
// it against a context of type C.
type GatedRepository[S any, PS ptr[S], C any] struct {
	c     core[S, PS]
	gates *policy.GateSet[C, Proposal[S]]
}

// NewGatedRepository is [NewRepository] with gates. Its type arguments
// infer from the gate set:
//
//	repo, err := aggregate.NewGatedRepository(store, reg, "tallies", gates)
func NewGatedRepository[S any, PS ptr[S], C any](store Store, reg *batpak.Registry, scope string, gates *policy.GateSet[C, Proposal[S]], opts ...Option) (*GatedRepository[S, PS, C], error) {
	if gates == nil {
		return nil, errors.New("aggregate: NewGatedRepository without a gate set")
	}
	c, err := newCore[S, PS](store, reg, scope, opts)
	if err != nil {
		return nil, err
	}
	return &GatedRepository[S, PS, C]{c: c, gates: gates}, nil
}

// Scope returns the scope of the repository's streams.
func (r *GatedRepository[S, PS, C]) Scope() string { return r.c.scope }

// SnapshotStats returns what the repository's snapshots did.
func (r *GatedRepository[S, PS, C]) SnapshotStats() SnapshotStats { return r.c.snapCount.stats() }

// Load returns the current state of the aggregate entity of the
// repository's scope and its version: 0 and the zero state for an entity
// without events.
func (r *GatedRepository[S, PS, C]) Load(ctx context.Context, entity string) (*S, uint64, error) {
	state, version, _, err := r.c.load(ctx, entity)
	return state, version, err
}

// Execute handles cmd on the aggregate entity of the repository's scope:
// load, handle, the gates (judging against pc), append with the expected
// version. It retries from the load, gates included, when a concurrent
// writer changed the stream, up to the repository's bound
// ([WithMaxRetries]). A denial is returned as [policy.Denials]
// (errors.Is [policy.ErrDenied]) and appends nothing.
func (r *GatedRepository[S, PS, C]) Execute(ctx context.Context, entity string, pc C, cmd Command[S], opts ...ExecOption) (*Result[S], error) {
	return r.c.run(ctx, entity, cmd, opts, func(ctx context.Context, p Proposal[S], save saveFunc[S]) ([]batpak.Receipt, error) {
		return pipeline(&r.c, r.gates, save).Submit(ctx, pc, p)
	})
}

// Bypass handles cmd without the gates. reason and actor are required
// ([policy.ErrBypassUnjustified], checked before the command runs) and are
// stored, with the time, in every emitted event's metadata.
func (r *GatedRepository[S, PS, C]) Bypass(ctx context.Context, entity string, cmd Command[S], reason, actor string, opts ...ExecOption) (*Result[S], error) {
	return bypass(ctx, &r.c, r.gates, entity, cmd, reason, actor, opts)
}

// core is what both repositories share: loading, the load-handle-save
// cycle and saving.
type core[S any, PS ptr[S]] struct {
	store  Store
	reg    *batpak.Registry
	scope  string
	tracer trace.Tracer
	// policyTracing gives the repository's tracer provider to the
	// pipelines of its gates, made once.
	policyTracing policy.Option
	snapCount     *snapshotCounters
	config
}

// ScopeName is the instrumentation scope of this package's spans.
const ScopeName = "github.com/batpak-go/batpak/aggregate"

func newCore[S any, PS ptr[S]](store Store, reg *batpak.Registry, scope string, opts []Option) (core[S, PS], error) {
	c := core[S, PS]{store: store, reg: reg, scope: scope, config: newConfig(opts), snapCount: &snapshotCounters{}}
	c.tracer, c.policyTracing = c.tp.Tracer(ScopeName), policy.WithTracerProvider(c.tp)
	switch {
	case store == nil:
		return c, errors.New("aggregate: a repository without a store")
	case reg == nil:
		return c, errors.New("aggregate: a repository without a registry")
	}
	// The scope is checked as part of a coordinate with a valid entity.
	if err := (batpak.Coordinate{Entity: "-", Scope: scope}).Validate(); err != nil {
		return c, fmt.Errorf("aggregate: %w", err)
	}
	if c.snapshots != nil {
		if err := checkSnapshottable(reflect.TypeFor[S]()); err != nil {
			return c, err
		}
	}
	return c, nil
}

func (c *core[S, PS]) coord(entity string) batpak.Coordinate {
	return batpak.Coordinate{Entity: entity, Scope: c.scope}
}

// load returns the current state of entity and its version, in a span,
// and whether the state holds events of a data subject (see loadState).
func (c *core[S, PS]) load(ctx context.Context, entity string) (*S, uint64, bool, error) {
	ctx, span := tracing.StartChild(ctx, c.tracer, "aggregate.load", trace.SpanKindInternal)
	defer span.End()
	state, version, personal, err := c.loadState(ctx, entity)
	if span.IsRecording() {
		span.SetAttributes(tracing.Scope.String(c.scope), tracing.Entity.String(entity), tracing.Version.Int64(int64(version)))
		endSpan(span, err)
	}
	return state, version, personal, err
}

// loadState returns the current state of entity and its version, and
// whether an event folded into it names a data subject. Such a state is
// never snapshotted (maybeSnapshot): a snapshot would keep the subject's
// data after Forget, so a snapshot that loads holds none.
func (c *core[S, PS]) loadState(ctx context.Context, entity string) (state *S, version uint64, personal bool, err error) {
	coord := c.coord(entity)
	if err := coord.Validate(); err != nil {
		return nil, 0, false, fmt.Errorf("aggregate: %w", err)
	}
	state = new(S)
	if c.snapshots != nil {
		if v, ok := c.loadSnapshot(ctx, coord, state); ok {
			version = v
		} else {
			state = new(S)
		}
	}
	for rec, err := range c.store.ReadStream(ctx, coord, version+1) {
		if err != nil {
			return nil, 0, false, err
		}
		ev, err := decodeKnown(c.reg, &rec)
		if err != nil {
			return nil, 0, false, err
		}
		PS(state).Apply(ev)
		version = rec.Version
		personal = personal || rec.Metadata[batpak.MetaSubject] != ""
	}
	return state, version, personal, nil
}

// saveFunc appends an allowed proposal, with the audit's metadata.
type saveFunc[S any] = func(ctx context.Context, p Proposal[S], audit policy.Audit) ([]batpak.Receipt, error)

// decideFunc passes an allowed proposal to save, or returns why not.
type decideFunc[S any] func(ctx context.Context, p Proposal[S], save saveFunc[S]) ([]batpak.Receipt, error)

// pipeline returns the policy pipeline that judges proposals with gates
// and saves the allowed ones with save: a function, not a method of core,
// for the gates' context type.
func pipeline[S any, PS ptr[S], C any](c *core[S, PS], gates *policy.GateSet[C, Proposal[S]], save saveFunc[S]) *policy.Pipeline[C, Proposal[S], []batpak.Receipt] {
	return policy.NewPipeline(gates, policy.CommitFunc[Proposal[S], []batpak.Receipt](save), c.policyTracing)
}

// bypass runs cmd through the gates' pipeline without evaluating them: a
// function, not a method of core, for the gates' context type.
func bypass[S any, PS ptr[S], C any](ctx context.Context, c *core[S, PS], gates *policy.GateSet[C, Proposal[S]], entity string, cmd Command[S], reason, actor string, opts []ExecOption) (*Result[S], error) {
	if !policy.Justified(reason, actor) {
		return nil, policy.ErrBypassUnjustified
	}
	return c.run(ctx, entity, cmd, opts, func(ctx context.Context, p Proposal[S], save saveFunc[S]) ([]batpak.Receipt, error) {
		return pipeline(c, gates, save).Bypass(ctx, p, reason, actor)
	})
}

// run executes cmd on entity in an aggregate.execute span.
func (c *core[S, PS]) run(ctx context.Context, entity string, cmd Command[S], opts []ExecOption, decide decideFunc[S]) (*Result[S], error) {
	ctx, span := c.tracer.Start(ctx, "aggregate.execute")
	defer span.End()
	if !span.IsRecording() {
		return c.cycle(ctx, entity, cmd, opts, decide, &execTrail{})
	}
	span.SetAttributes(tracing.Scope.String(c.scope), tracing.Entity.String(entity), tracing.Command.String(fmt.Sprintf("%T", cmd)))
	var tr execTrail
	res, err := c.cycle(ctx, entity, cmd, opts, decide, &tr)
	endExecute(span, tr, res, err)
	return res, err
}

// execTrail is what the span of an execution records beyond its result.
type execTrail struct {
	attempts int
	outcome  string // set for an idempotent replay; the rest follows from the result
}

// cycle runs the load-handle-save cycle until a save succeeds, a step
// fails, or the conflicts exhaust the retries.
func (c *core[S, PS]) cycle(ctx context.Context, entity string, cmd Command[S], opts []ExecOption, decide decideFunc[S], tr *execTrail) (*Result[S], error) {
	var ec execConfig
	for _, o := range opts {
		o(&ec)
	}
	coord := c.coord(entity)
	var lastConflict error
	for attempt := 1; attempt <= c.maxRetries; attempt++ {
		tr.attempts = attempt
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		state, version, personal, err := c.load(ctx, entity)
		if err != nil {
			return nil, err
		}
		emitted, err := cmd.Handle(state)
		if err != nil {
			return nil, err
		}
		events, err := registeredAll(c.reg, emitted)
		if err != nil {
			return nil, err
		}
		res := &Result[S]{State: state, Version: version, Events: events, Attempts: attempt}
		if len(events) == 0 {
			return res, nil
		}
		p := Proposal[S]{Coordinate: coord, Version: version, State: state, Command: cmd, Events: events}
		receipts, err := decide(ctx, p, func(ctx context.Context, p Proposal[S], audit policy.Audit) ([]batpak.Receipt, error) {
			return c.save(ctx, p, audit, ec)
		})
		if errors.Is(err, batpak.ErrVersionConflict) {
			lastConflict = err
			continue
		}
		if err != nil {
			return nil, err
		}
		if receipts[0].Version != version+1 {
			// An idempotent replay: the store returned the receipts of
			// events an earlier call saved, so the stream, not these
			// events, holds the state.
			if state, version, _, err = c.load(ctx, entity); err != nil {
				return nil, err
			}
			res.State, res.Version, res.Receipts = state, version, receipts
			tr.outcome = "replayed"
			return res, nil
		}
		for _, ev := range events {
			PS(state).Apply(ev)
			personal = personal || batpak.SubjectOf(ev) != ""
		}
		res.Receipts = receipts
		res.Version = receipts[len(receipts)-1].Version
		if !personal {
			c.maybeSnapshot(ctx, coord, state, version, res.Version)
		}
		return res, nil
	}
	return nil, fmt.Errorf("%w: %d attempts on %s: %w", ErrTooManyConflicts, c.maxRetries, coord, lastConflict)
}

// endExecute records how a command ended in its aggregate.execute span.
// A denial is the gates' answer, not a failure: its status stays unset.
func endExecute[S any](span trace.Span, tr execTrail, res *Result[S], err error) {
	outcome := tr.outcome
	switch {
	case err == nil && outcome != "":
	case err == nil && len(res.Receipts) == 0:
		outcome = "no_events"
	case err == nil:
		outcome = "committed"
	case errors.Is(err, policy.ErrDenied):
		outcome = "denied"
	default:
		outcome = "failed"
		endSpan(span, err)
	}
	span.SetAttributes(tracing.Outcome.String(outcome), tracing.Attempts.Int(tr.attempts))
	if res != nil {
		span.SetAttributes(tracing.Version.Int64(int64(res.Version)))
		span.SetAttributes(tracing.ReceiptAttributes(res.Receipts)...)
	}
}

// endSpan records err, if any, as span's status.
func endSpan(span trace.Span, err error) {
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
	}
}
