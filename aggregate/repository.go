package aggregate

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"strings"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/policy"
)

// Root is implemented by a pointer to an aggregate's state: it folds one
// event (a value of a registered type, or msgpack.RawMessage for a kind the
// registry does not know) into the state.
type Root interface {
	Apply(event any)
}

// Command decides, given the current state, which events to emit. It
// returns an error to refuse the command outright (a business rule that is
// not a policy gate).
type Command[S any] interface {
	Handle(state *S) ([]any, error)
}

// Store is what a repository needs from an event store.
type Store interface {
	Append(ctx context.Context, coord batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) ([]batpak.Receipt, error)
	ReadStream(entity string, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error]
}

// Proposal is what the policy gates judge: the state before the command,
// the command and the events it would emit.
type Proposal[S any] struct {
	Entity  string
	Version uint64
	State   *S
	Command any
	Events  []any
}

// Result is the outcome of a command.
type Result[S any] struct {
	State    *S     // state after the new events
	Version  uint64 // stream version after the new events
	Events   []any
	Receipts []batpak.Receipt
	Attempts int // load-handle-save cycles it took
}

// ErrTooManyConflicts is returned when every retry lost to a concurrent
// writer; it wraps the last eventstore.ErrVersionConflict.
var ErrTooManyConflicts = errors.New("aggregate: too many concurrent modifications")

// ptr constrains PS to be *S implementing Root.
type ptr[S any] interface {
	*S
	Root
}

// Repository loads and saves aggregates of state type S whose policy
// context type is C.
type Repository[S any, PS ptr[S], C any] struct {
	store      Store
	reg        *batpak.Registry
	scope      string
	gates      *policy.GateSet[C, Proposal[S]]
	snapshots  SnapshotStore
	every      uint64
	maxRetries int
}

// Option configures a Repository.
type Option[S any, C any] func(*repoConfig[S, C])

type repoConfig[S any, C any] struct {
	gates      *policy.GateSet[C, Proposal[S]]
	snapshots  SnapshotStore
	every      uint64
	maxRetries int
}

// WithGates runs every command's proposal through gates before saving.
func WithGates[S any, C any](gates *policy.GateSet[C, Proposal[S]]) Option[S, C] {
	return func(c *repoConfig[S, C]) { c.gates = gates }
}

// WithSnapshots saves a snapshot every n events and loads from the latest.
func WithSnapshots[S any, C any](store SnapshotStore, every int) Option[S, C] {
	return func(c *repoConfig[S, C]) { c.snapshots, c.every = store, uint64(max(every, 1)) }
}

// WithMaxRetries bounds the load-handle-save attempts on version conflicts
// (default 10).
func WithMaxRetries[S any, C any](n int) Option[S, C] {
	return func(c *repoConfig[S, C]) { c.maxRetries = max(n, 1) }
}

// NewRepository returns a repository for aggregates in scope, whose event
// types are registered in reg.
func NewRepository[S any, PS ptr[S], C any](store Store, reg *batpak.Registry, scope string, opts ...Option[S, C]) *Repository[S, PS, C] {
	cfg := repoConfig[S, C]{maxRetries: 10}
	for _, o := range opts {
		o(&cfg)
	}
	return &Repository[S, PS, C]{store: store, reg: reg, scope: scope, gates: cfg.gates,
		snapshots: cfg.snapshots, every: cfg.every, maxRetries: cfg.maxRetries}
}

// Load returns the current state of entity and its version (0 and the zero
// state for an entity without events).
func (r *Repository[S, PS, C]) Load(ctx context.Context, entity string) (*S, uint64, error) {
	state := new(S)
	var version uint64
	if r.snapshots != nil {
		if v, ok := r.loadSnapshot(ctx, entity, state); ok {
			version = v
		} else {
			state = new(S)
		}
	}
	for rec, err := range r.store.ReadStream(entity, version+1) {
		if err != nil {
			return nil, 0, err
		}
		ev, err := r.reg.Decode(&rec)
		if err != nil {
			return nil, 0, err
		}
		PS(state).Apply(ev)
		version = rec.Version
	}
	return state, version, nil
}

// ExecOption configures one Execute or Bypass.
type ExecOption func(*execConfig)

type execConfig struct {
	causation   uuid.UUID
	correlation uuid.UUID
	key         string
	meta        map[string]string
}

// CausedBy records that the command's events were caused by event id; they
// join id's correlation group.
func CausedBy(id uuid.UUID) ExecOption { return func(c *execConfig) { c.causation = id } }

// CorrelatedWith puts the command's events in correlation group id.
func CorrelatedWith(id uuid.UUID) ExecOption { return func(c *execConfig) { c.correlation = id } }

// IdempotencyKey makes the save idempotent: a retried command with the same
// key returns the original receipts.
func IdempotencyKey(key string) ExecOption { return func(c *execConfig) { c.key = key } }

// WithMetadata adds metadata to every emitted event. Keys starting with
// "policy." are reserved for the policy audit and are dropped.
func WithMetadata(kv map[string]string) ExecOption {
	return func(c *execConfig) { c.meta = kv }
}

// Execute handles cmd on entity: load, handle, gates (with policy context
// pc), append with the expected version. It retries from the load when a
// concurrent writer changed the stream, up to the repository's bound. A
// denial is returned as policy.Denials (errors.Is policy.ErrDenied).
func (r *Repository[S, PS, C]) Execute(ctx context.Context, entity string, pc C, cmd Command[S], opts ...ExecOption) (*Result[S], error) {
	return r.run(ctx, entity, cmd, opts, func(p Proposal[S], save policy.CommitFunc[Proposal[S], []batpak.Receipt]) ([]batpak.Receipt, error) {
		if r.gates == nil {
			return save(ctx, p, policy.Audit{})
		}
		return policy.NewPipeline(r.gates, save).Submit(ctx, pc, p)
	})
}

// Bypass handles cmd on entity without the policy gates. reason and actor
// are required and are stored in every emitted event's metadata.
func (r *Repository[S, PS, C]) Bypass(ctx context.Context, entity string, cmd Command[S], reason, actor string, opts ...ExecOption) (*Result[S], error) {
	if strings.TrimSpace(reason) == "" || strings.TrimSpace(actor) == "" {
		return nil, policy.ErrBypassUnjustified
	}
	gates := r.gates
	if gates == nil {
		gates = policy.NewGateSet[C, Proposal[S]](policy.FailFast)
	}
	return r.run(ctx, entity, cmd, opts, func(p Proposal[S], save policy.CommitFunc[Proposal[S], []batpak.Receipt]) ([]batpak.Receipt, error) {
		return policy.NewPipeline(gates, save).Bypass(ctx, p, reason, actor)
	})
}

type decideFunc[S any] func(Proposal[S], policy.CommitFunc[Proposal[S], []batpak.Receipt]) ([]batpak.Receipt, error)

func (r *Repository[S, PS, C]) run(ctx context.Context, entity string, cmd Command[S], opts []ExecOption, decide decideFunc[S]) (*Result[S], error) {
	var ec execConfig
	for _, o := range opts {
		o(&ec)
	}
	var lastConflict error
	for attempt := 1; attempt <= r.maxRetries; attempt++ {
		if err := ctx.Err(); err != nil {
			return nil, err
		}
		state, version, err := r.Load(ctx, entity)
		if err != nil {
			return nil, err
		}
		events, err := cmd.Handle(state)
		if err != nil {
			return nil, err
		}
		res := &Result[S]{State: state, Version: version, Events: events, Attempts: attempt}
		if len(events) == 0 {
			return res, nil
		}
		p := Proposal[S]{Entity: entity, Version: version, State: state, Command: cmd, Events: events}
		receipts, err := decide(p, func(ctx context.Context, p Proposal[S], audit policy.Audit) ([]batpak.Receipt, error) {
			return r.save(ctx, p, audit, ec)
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
			if state, version, err = r.Load(ctx, entity); err != nil {
				return nil, err
			}
			res.State, res.Version, res.Receipts = state, version, receipts
			return res, nil
		}
		for _, ev := range events {
			PS(state).Apply(ev)
		}
		res.Receipts = receipts
		res.Version = receipts[len(receipts)-1].Version
		r.maybeSnapshot(ctx, entity, state, version, res.Version)
		return res, nil
	}
	return nil, fmt.Errorf("%w: %d attempts on %q: %w", ErrTooManyConflicts, r.maxRetries, entity, lastConflict)
}

// save appends the proposal's events with the expected version, the
// audit's metadata and the command's correlation and causation.
func (r *Repository[S, PS, C]) save(ctx context.Context, p Proposal[S], audit policy.Audit, ec execConfig) ([]batpak.Receipt, error) {
	meta := maps.Clone(ec.meta)
	if meta == nil {
		meta = make(map[string]string)
	}
	// Only the audit writes the policy keys: the caller's metadata cannot
	// hide a bypass or forge one.
	maps.DeleteFunc(meta, func(k, _ string) bool { return strings.HasPrefix(k, "policy.") })
	maps.Copy(meta, audit.Metadata())
	events := make([]batpak.Event, len(p.Events))
	for i, v := range p.Events {
		ev, err := r.reg.Event(v)
		if err != nil {
			return nil, fmt.Errorf("aggregate: %w", err)
		}
		ev.Metadata = meta
		events[i] = ev
	}
	opts := []batpak.AppendOption{batpak.ExpectVersion(batpak.Exactly(p.Version))}
	if ec.causation != uuid.Nil {
		opts = append(opts, batpak.WithCausation(ec.causation))
	}
	if ec.correlation != uuid.Nil {
		opts = append(opts, batpak.WithCorrelation(ec.correlation))
	}
	if ec.key != "" {
		opts = append(opts, batpak.WithIdempotencyKey(ec.key))
	}
	return r.store.Append(ctx, batpak.Coordinate{Entity: p.Entity, Scope: r.scope}, events, opts...)
}
