package memstore

import (
	"context"
	"fmt"
	"slices"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/codec"
	"github.com/batpak-go/batpak/internal/typecat"
	"github.com/batpak-go/batpak/kind"
)

// item is one event of an append, checked and encoded, before the store
// gives it a place.
type item struct {
	coord       batpak.Coordinate
	kind        kind.Kind
	typ         string // the event's type name, "" if none
	payload     []byte
	meta        map[string]string
	expected    batpak.ExpectedVersion
	correlation uuid.UUID
	causation   uuid.UUID
}

// Append appends events to the stream coord, atomically: all of them or
// none. Options set the expected version (checked against the stream before
// the first event), an idempotency key and correlation and causation ids.
// The events are visible to every reader when it returns.
func (s *Store) Append(ctx context.Context, coord batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
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
	items := make([]item, len(events))
	for i, ev := range events {
		it, err := s.prepare(ctx, coord.Scope, ev)
		if err != nil {
			return nil, fmt.Errorf("event %d: %w", i, err)
		}
		it.coord, it.expected, it.correlation, it.causation = coord, batpak.Any, o.Correlation, o.Causation
		items[i] = it
	}
	items[0].expected = o.Expected
	return s.commit(ctx, codec.ScopedKey(coord.Scope, o.IdempotencyKey), items)
}

// AppendBatch appends events to several streams atomically, checking each
// item's expected version in item order: a later item on a stream sees the
// versions of the batch's earlier items on it. The idempotency key belongs
// to the scope of the first item; the correlation and causation options
// are the defaults of items without their own.
func (s *Store) AppendBatch(ctx context.Context, items []batpak.BatchItem, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	o, err := batpak.ResolveAppendOptions(opts...)
	if err != nil {
		return nil, err
	}
	if len(items) == 0 {
		return nil, batpak.ErrEmptyAppend
	}
	prepared := make([]item, len(items))
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
		prepared[i] = it
	}
	return s.commit(ctx, codec.ScopedKey(items[0].Coordinate.Scope, o.IdempotencyKey), prepared)
}

// prepare checks an event and encodes its payload, outside the lock, as
// every backend does (internal/codec): reserved kinds are
// [batpak.ErrReservedKind], payloads above the limit
// [batpak.ErrPayloadTooLarge], metadata that is not UTF-8
// [batpak.ErrInvalidMetadata]. The payload of an event with a subject is
// sealed with the subject's key (internal/shred). Empty metadata is stored
// as none.
func (s *Store) prepare(ctx context.Context, scope string, ev batpak.Event) (item, error) {
	payload, meta, err := codec.Encode(ev, s.cfg.maxPayload)
	if err != nil {
		return item{}, err
	}
	if ev.Subject != "" {
		if payload, meta, err = s.keyring.Seal(ctx, scope, ev.Subject, ev.Kind, payload, meta, s.cfg.maxPayload); err != nil {
			return item{}, err
		}
	}
	if len(meta) == 0 {
		meta = nil
	}
	return item{kind: ev.Kind, typ: ev.Type, payload: payload, meta: meta}, nil
}

// commit appends items as one atomic request, with the idempotency key
// key (already scoped; "" for none). Under the write lock it checks, in
// order: the store is open, ctx has not ended, the key is new (else the
// original receipts are the answer), and each item's expected version
// against its stream as the earlier items left it. Only then does it
// change anything, so a refused request leaves nothing behind.
func (s *Store) commit(ctx context.Context, key string, items []item) ([]batpak.Receipt, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, batpak.ErrClosed
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	if rs, ok := s.keys[key]; ok && key != "" {
		return slices.Clone(rs), nil
	}
	types, err := s.catalogWith(items)
	if err != nil {
		return nil, err
	}

	now := s.cfg.clock()
	ts := time.UnixMicro(now.UnixMicro()) // the stored precision
	first := uint64(len(s.log)) + 1
	tips := make(map[batpak.Coordinate]tip, 1) // the streams as this request leaves them
	recs := make([]batpak.Record, len(items))
	var root uuid.UUID
	for i := range items {
		it := &items[i]
		t, ok := tips[it.coord]
		if !ok {
			t = s.tip(it.coord)
		}
		if !it.expected.Accepts(t.version) {
			return nil, conflict(it.coord, it.expected, t.version)
		}
		rec := &recs[i]
		*rec = batpak.Record{
			Coordinate:  it.coord,
			ID:          s.ids.Next(now),
			CausationID: it.causation,
			Kind:        it.kind,
			Timestamp:   ts,
			Sequence:    first + uint64(i),
			Version:     t.version + 1,
			Metadata:    it.meta,
			Payload:     it.payload,
			PrevHash:    t.hash,
		}
		if i == 0 {
			root = rec.ID
		}
		rec.CorrelationID = s.correlationFor(it, root)
		rec.Hash = sum(s.hasher, rec)
		tips[it.coord] = tip{version: rec.Version, hash: rec.Hash}
	}

	receipts := make([]batpak.Receipt, len(recs))
	for i := range recs {
		s.publish(&recs[i])
		receipts[i] = batpak.Receipt{EventID: recs[i].ID, Sequence: recs[i].Sequence, Version: recs[i].Version, Hash: recs[i].Hash}
	}
	if key != "" {
		s.keys[key] = slices.Clone(receipts)
	}
	s.types.Store(types)
	s.offer(recs)
	close(s.appended)
	s.appended = make(chan struct{})
	return receipts, nil
}

// catalogWith returns the catalog with the type names of items added, or
// the conflict that refuses the request. mu is held for writing.
func (s *Store) catalogWith(items []item) (*typecat.Catalog, error) {
	cur := s.types.Load()
	events := make([]batpak.Event, 0, len(items))
	for _, it := range items {
		if it.typ != "" {
			events = append(events, batpak.Event{Kind: it.kind, Type: it.typ})
		}
	}
	add, err := cur.Additions(events)
	if err != nil || len(add) == 0 {
		return cur, err
	}
	return cur.With(add...), nil
}

// tip is a stream's version and newest hash.
type tip struct {
	version uint64
	hash    [32]byte
}

// tip returns the committed tip of the stream c. mu is held.
func (s *Store) tip(c batpak.Coordinate) tip {
	st, ok := s.streams[c]
	if !ok {
		return tip{}
	}
	return tip{version: uint64(len(st.seqs)), hash: st.hash}
}

// correlationFor picks an event's correlation id as the embedded store
// does: the explicit one; else the correlation of its cause, if that is a
// committed event; else the id of the request's first event (root), which
// starts a new group. mu is held.
func (s *Store) correlationFor(it *item, root uuid.UUID) uuid.UUID {
	if it.correlation != uuid.Nil {
		return it.correlation
	}
	if it.causation != uuid.Nil {
		if seq, ok := s.byID[it.causation]; ok {
			return s.log[seq-1].CorrelationID
		}
	}
	return root
}

// publish adds rec to the log and the indexes. mu is held for writing.
func (s *Store) publish(rec *batpak.Record) {
	s.log = append(s.log, *rec)
	s.byID[rec.ID] = rec.Sequence
	st, ok := s.streams[rec.Coordinate]
	if !ok {
		st = &stream{}
		s.streams[rec.Coordinate] = st
	}
	st.seqs = append(st.seqs, rec.Sequence)
	st.hash = rec.Hash
	if rec.CorrelationID != rec.ID {
		s.correlated[rec.CorrelationID] = append(s.correlated[rec.CorrelationID], rec.Sequence)
	}
	if rec.CausationID != uuid.Nil {
		s.causedBy[rec.CausationID] = append(s.causedBy[rec.CausationID], rec.Sequence)
	}
}

// conflict is the error for an append to the stream c, at version actual,
// that expected another.
func conflict(c batpak.Coordinate, expected batpak.ExpectedVersion, actual uint64) error {
	return &batpak.VersionConflictError{Stream: c, Expected: expected, Actual: actual}
}
