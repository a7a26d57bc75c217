package tracing

import (
	"context"
	"iter"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// ScopeName is the instrumentation scope of this package's spans.
const ScopeName = "github.com/batpak-go/batpak/tracing"

// Option configures [Wrap].
type Option func(*config)

type config struct {
	tp trace.TracerProvider
}

// WithTracerProvider sets the provider of the spans (default: the global
// one, otel.GetTracerProvider, as it is when Wrap is called; a global
// provider installed later is used too).
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// Store is a [batpak.Store] whose appends are traced: each Append and
// AppendBatch is a span (batpak.append, batpak.append_batch, of kind
// producer), and each appended event without a traceparent gets the
// span's. Every other method is the wrapped store's.
type Store struct {
	s      batpak.Store
	tracer trace.Tracer
}

var _ batpak.Store = (*Store)(nil)

// Wrap returns s with traced appends.
func Wrap(s batpak.Store, opts ...Option) *Store {
	c := config{}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return &Store{s: s, tracer: c.tp.Tracer(ScopeName)}
}

// Unwrap returns the wrapped store.
func (t *Store) Unwrap() batpak.Store { return t.s }

// Append implements [batpak.Store.Append] in a span.
func (t *Store) Append(ctx context.Context, coord batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	ctx, span := t.tracer.Start(ctx, "batpak.append", trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(CoordinateAttributes(coord)...)
	}
	if trace.SpanContextFromContext(ctx).IsValid() {
		events = injectEvents(ctx, events)
	}
	rs, err := t.s.Append(ctx, coord, events, opts...)
	EndAppend(span, rs, err)
	return rs, err
}

// AppendBatch implements [batpak.Store.AppendBatch] in a span.
func (t *Store) AppendBatch(ctx context.Context, items []batpak.BatchItem, opts ...batpak.AppendOption) ([]batpak.Receipt, error) {
	ctx, span := t.tracer.Start(ctx, "batpak.append_batch", trace.WithSpanKind(trace.SpanKindProducer))
	defer span.End()
	if trace.SpanContextFromContext(ctx).IsValid() {
		injected := make([]batpak.BatchItem, len(items))
		for i, it := range items {
			it.Event.Metadata = Inject(ctx, it.Event.Metadata)
			injected[i] = it
		}
		items = injected
	}
	rs, err := t.s.AppendBatch(ctx, items, opts...)
	EndAppend(span, rs, err)
	return rs, err
}

// injectEvents returns a copy of events whose metadata carries ctx's trace
// context (the caller's slice and maps are left alone).
func injectEvents(ctx context.Context, events []batpak.Event) []batpak.Event {
	out := make([]batpak.Event, len(events))
	for i, ev := range events {
		ev.Metadata = Inject(ctx, ev.Metadata)
		out[i] = ev
	}
	return out
}

// EndAppend records the outcome of an append in span: the receipts'
// attributes, or the error as the span's status.
func EndAppend(span trace.Span, rs []batpak.Receipt, err error) {
	if !span.IsRecording() {
		return
	}
	if err != nil {
		span.RecordError(err)
		span.SetStatus(codes.Error, err.Error())
		return
	}
	span.SetAttributes(ReceiptAttributes(rs)...)
}

// Get implements [batpak.Store.Get].
func (t *Store) Get(ctx context.Context, id uuid.UUID) (batpak.Record, error) {
	return t.s.Get(ctx, id)
}

// GetSequence implements [batpak.Store.GetSequence].
func (t *Store) GetSequence(ctx context.Context, seq uint64) (batpak.Record, error) {
	return t.s.GetSequence(ctx, seq)
}

// ReadStream implements [batpak.Store.ReadStream].
func (t *Store) ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error] {
	return t.s.ReadStream(ctx, coord, from, opts...)
}

// ReadAll implements [batpak.Store.ReadAll].
func (t *Store) ReadAll(ctx context.Context, from uint64) iter.Seq2[batpak.Record, error] {
	return t.s.ReadAll(ctx, from)
}

// Query implements [batpak.Store.Query].
func (t *Store) Query(ctx context.Context, r batpak.Region) iter.Seq2[batpak.Record, error] {
	return t.s.Query(ctx, r)
}

// StreamVersion implements [batpak.Store.StreamVersion].
func (t *Store) StreamVersion(coord batpak.Coordinate) uint64 { return t.s.StreamVersion(coord) }

// LastSequence implements [batpak.Store.LastSequence].
func (t *Store) LastSequence() uint64 { return t.s.LastSequence() }

// Forget implements [batpak.Store.Forget].
func (t *Store) Forget(ctx context.Context, subject batpak.Subject) error {
	return t.s.Forget(ctx, subject)
}

// EventTypes implements [batpak.Store.EventTypes].
func (t *Store) EventTypes(ctx context.Context) (map[kind.Kind]string, error) {
	return t.s.EventTypes(ctx)
}

// Cursor implements [batpak.Store.Cursor].
func (t *Store) Cursor(r batpak.Region, from uint64) batpak.Cursor { return t.s.Cursor(r, from) }

// Subscribe implements [batpak.Store.Subscribe].
func (t *Store) Subscribe(r batpak.Region, buffer int) (batpak.Subscription, error) {
	return t.s.Subscribe(r, buffer)
}

// Close implements [batpak.Store.Close].
func (t *Store) Close() error { return t.s.Close() }
