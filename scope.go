package batpak

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak/kind"
)

// ErrOutOfScope is returned by a scoped view ([Scoped]) for a coordinate
// of another scope.
var ErrOutOfScope = errors.New("batpak: coordinate outside the view's scope")

// Scoped returns a view of s that sees and writes only the streams of
// scope: for a multi-tenant app, one view per tenant.
//
//   - Appends take coordinates with an empty Scope (the view fills it in)
//     or with scope itself; any other scope is refused with
//     [ErrOutOfScope] and nothing is stored.
//   - Reads, queries, cursors and subscriptions see only the events of
//     scope: Get and GetSequence of another scope's event return
//     [ErrNotFound], ReadStream and StreamVersion of another scope's
//     stream see nothing, and a Region's Scope is set to scope.
//   - LastSequence and the sequences of records stay the store's global
//     ones, so a tenant sees gaps where other tenants' events are.
//
// A scope that no coordinate could have (empty, too long, not UTF-8, with
// control characters) is refused with a [*CoordinateError]. Closing the
// view closes s.
func Scoped(s Store, scope string) (Store, error) {
	if err := validateName("scope", scope); err != nil {
		return nil, err
	}
	return &scoped{s: s, scope: scope}, nil
}

type scoped struct {
	s     Store
	scope string
}

var _ Store = (*scoped)(nil)

// coord returns c in the view's scope, or an error for another scope.
func (v *scoped) coord(c Coordinate) (Coordinate, error) {
	switch c.Scope {
	case "":
		c.Scope = v.scope
	case v.scope:
	default:
		return c, fmt.Errorf("%w: %s in a view of scope %q", ErrOutOfScope, c, v.scope)
	}
	return c, nil
}

func (v *scoped) region(r Region) Region {
	r.Scope = v.scope
	return r
}

func (v *scoped) Append(ctx context.Context, coord Coordinate, events []Event, opts ...AppendOption) ([]Receipt, error) {
	c, err := v.coord(coord)
	if err != nil {
		return nil, err
	}
	return v.s.Append(ctx, c, events, opts...)
}

func (v *scoped) AppendBatch(ctx context.Context, items []BatchItem, opts ...AppendOption) ([]Receipt, error) {
	in := make([]BatchItem, len(items))
	for i, it := range items {
		c, err := v.coord(it.Coordinate)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		it.Coordinate = c
		in[i] = it
	}
	return v.s.AppendBatch(ctx, in, opts...)
}

// own returns rec if it is in the view's scope, else ErrNotFound.
func (v *scoped) own(rec Record, err error, what string) (Record, error) {
	if err == nil && rec.Coordinate.Scope != v.scope {
		return Record{}, fmt.Errorf("%w: %s in scope %q", ErrNotFound, what, v.scope)
	}
	return rec, err
}

func (v *scoped) Get(ctx context.Context, id uuid.UUID) (Record, error) {
	rec, err := v.s.Get(ctx, id)
	return v.own(rec, err, "event "+id.String())
}

func (v *scoped) GetSequence(ctx context.Context, seq uint64) (Record, error) {
	rec, err := v.s.GetSequence(ctx, seq)
	return v.own(rec, err, fmt.Sprintf("sequence %d", seq))
}

func (v *scoped) ReadStream(ctx context.Context, coord Coordinate, from uint64, opts ...ReadOption) iter.Seq2[Record, error] {
	c, err := v.coord(coord)
	if err != nil {
		return func(yield func(Record, error) bool) { yield(Record{}, err) }
	}
	return v.s.ReadStream(ctx, c, from, opts...)
}

func (v *scoped) ReadAll(ctx context.Context, from uint64) iter.Seq2[Record, error] {
	return v.s.Query(ctx, Region{Scope: v.scope, FromSequence: from})
}

func (v *scoped) Query(ctx context.Context, r Region) iter.Seq2[Record, error] {
	return v.s.Query(ctx, v.region(r))
}

func (v *scoped) StreamVersion(coord Coordinate) uint64 {
	c, err := v.coord(coord)
	if err != nil {
		return 0
	}
	return v.s.StreamVersion(c)
}

func (v *scoped) LastSequence() uint64 { return v.s.LastSequence() }

// Forget forgets a subject of the view's scope: a Subject with an empty
// Scope is taken in it, one of another scope is refused ([ErrOutOfScope]).
func (v *scoped) Forget(ctx context.Context, subject Subject) error {
	switch subject.Scope {
	case "":
		subject.Scope = v.scope
	case v.scope:
	default:
		return fmt.Errorf("%w: subject %s in a view of scope %q", ErrOutOfScope, subject, v.scope)
	}
	return v.s.Forget(ctx, subject)
}

// EventTypes returns the store's catalog: type names are not scoped.
func (v *scoped) EventTypes(ctx context.Context) (map[kind.Kind]string, error) {
	return v.s.EventTypes(ctx)
}

func (v *scoped) Cursor(r Region, from uint64) Cursor { return v.s.Cursor(v.region(r), from) }

func (v *scoped) Subscribe(r Region, buffer int) (Subscription, error) {
	return v.s.Subscribe(v.region(r), buffer)
}

func (v *scoped) Close() error { return v.s.Close() }
