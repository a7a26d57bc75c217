package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/codec"
	"github.com/batpak-go/batpak/kind"
)

// request is one Append or AppendBatch handed to the writer.
type request struct {
	ctx      context.Context
	items    []item
	key      string
	atomic   bool // written between batch markers
	syncOnly bool
	delete   batpak.Coordinate // a tombstone for this stream, when Entity is set
	done     chan result
}

type item struct {
	coord       batpak.Coordinate
	kind        kind.Kind
	payload     []byte
	meta        map[string]string
	expected    batpak.ExpectedVersion
	correlation uuid.UUID
	causation   uuid.UUID
}

type result struct {
	receipts []batpak.Receipt
	err      error
}

// Append appends events to the stream of coord, atomically: all of them or
// none. Options set the expected version (checked against the stream before
// the first event), an idempotency key and correlation and causation ids.
// It returns once the events are durable (per the sync mode) with one
// receipt per event. ctx bounds the wait for a place in the writer's queue;
// once the writer has taken the request, the call returns its outcome.
func (s *Store) Append(ctx context.Context, coord batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	if obs := s.cfg.observer; obs != nil {
		start := time.Now()
		rs, err := s.append(ctx, coord, events, opts)
		obs.ObserveAppend(len(events), time.Since(start), err)
		return rs, err
	}
	return s.append(ctx, coord, events, opts)
}

func (s *Store) append(ctx context.Context, coord batpak.Coordinate, events []batpak.Event, opts []batpak.AppendOption) ([]batpak.Receipt, error) {
	o, err := batpak.ResolveAppendOptions(opts...)
	if err != nil {
		return nil, err
	}
	if err := coord.Validate(); err != nil {
		return nil, err
	}
	if len(events) == 0 {
		return nil, batpak.ErrEmptyAppend
	}
	r := &request{ctx: ctx, key: codec.ScopedKey(coord.Scope, o.IdempotencyKey), atomic: len(events) > 1, items: make([]item, len(events))}
	for i, ev := range events {
		it, err := s.prepare(ctx, coord.Scope, ev)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		it.coord, it.correlation, it.causation, it.expected = coord, o.Correlation, o.Causation, batpak.Any
		r.items[i] = it
	}
	r.items[0].expected = o.Expected
	if err := s.recordTypes(events); err != nil {
		return nil, err
	}
	return s.submit(ctx, r)
}

// AppendBatch appends events to several streams atomically: after a crash
// either every item is there or none. Each item's expected version is
// checked in order. The only options that apply are the idempotency key and,
// as a default for items without their own, correlation and causation.
func (s *Store) AppendBatch(ctx context.Context, items []batpak.BatchItem, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	if obs := s.cfg.observer; obs != nil {
		start := time.Now()
		rs, err := s.appendBatch(ctx, items, opts)
		obs.ObserveAppend(len(items), time.Since(start), err)
		return rs, err
	}
	return s.appendBatch(ctx, items, opts)
}

func (s *Store) appendBatch(ctx context.Context, items []batpak.BatchItem, opts []batpak.AppendOption) ([]batpak.Receipt, error) {
	o, err := batpak.ResolveAppendOptions(opts...)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, batpak.ErrEmptyAppend
	}
	r := &request{ctx: ctx, key: codec.ScopedKey(items[0].Coordinate.Scope, o.IdempotencyKey), atomic: true, items: make([]item, len(items))}
	for i, bi := range items {
		bi, err := bi.Resolve(o)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		it, err := s.prepare(ctx, bi.Coordinate.Scope, bi.Event)
		if err != nil {
			return nil, fmt.Errorf("item %d: %w", i, err)
		}
		it.coord, it.expected, it.correlation, it.causation = bi.Coordinate, bi.Expected, bi.CorrelationID, bi.CausationID
		r.items[i] = it
	}
	if err := s.recordTypes(batchEvents(items)); err != nil {
		return nil, err
	}
	return s.submit(ctx, r)
}

// batchEvents returns the events of items.
func batchEvents(items []batpak.BatchItem) []batpak.Event {
	evs := make([]batpak.Event, len(items))
	for i := range items {
		evs[i] = items[i].Event
	}
	return evs
}

// prepare encodes an event's payload in the caller's goroutine, so encoding
// runs in parallel and the writer only copies bytes. The payload of an
// event with a subject is sealed with the subject's key, which is made
// durable first if it is new.
func (s *Store) prepare(ctx context.Context, scope string, ev batpak.Event) (item, error) {
	payload, meta, err := codec.Encode(ev, s.cfg.maxPayload)
	if err != nil {
		return item{}, err
	}
	if ev.Subject != "" {
		if s.readOnly {
			return item{}, batpak.ErrReadOnly
		}
		if payload, meta, err = s.keyring.Seal(ctx, scope, ev.Subject, ev.Kind, payload, meta, s.cfg.maxPayload); err != nil {
			return item{}, err
		}
	}
	return item{kind: ev.Kind, payload: payload, meta: meta}, nil
}

func (s *Store) submit(ctx context.Context, r *request) ([]batpak.Receipt, error) {
	if s.readOnly {
		return nil, batpak.ErrReadOnly
	}
	if err := s.failure(); err != nil {
		return nil, err
	}
	r.ctx = ctx
	r.done = make(chan result, 1)
	s.pipe.inFlight.Add(1)
	defer s.pipe.inFlight.Add(-1)
	if err := s.pipe.handOver(ctx, r); err != nil {
		return nil, err
	}
	res := <-r.done
	return res.receipts, res.err
}
