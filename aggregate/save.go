package aggregate

import (
	"context"
	"maps"
	"strings"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/policy"
	"github.com/batpak-go/batpak/tracing"
)

// save appends the proposal's events with the expected version, the
// audit's metadata and the command's correlation and causation.
func (c *core[S, PS]) save(ctx context.Context, p Proposal[S], audit policy.Audit, ec execConfig) ([]batpak.Receipt, error) {
	ctx, span := tracing.StartChild(ctx, c.tracer, "aggregate.save", trace.SpanKindProducer)
	defer span.End()
	if span.IsRecording() {
		span.SetAttributes(tracing.Scope.String(p.Coordinate.Scope), tracing.Entity.String(p.Coordinate.Entity), tracing.Version.Int64(int64(p.Version)))
		if ec.causation != uuid.Nil {
			span.SetAttributes(tracing.CausationID.String(ec.causation.String()))
		}
	}
	receipts, err := c.append(ctx, p, audit, ec)
	tracing.EndAppend(span, receipts, err)
	return receipts, err
}

// append appends the proposal's events, with the trace context of ctx's
// span in their metadata.
func (c *core[S, PS]) append(ctx context.Context, p Proposal[S], audit policy.Audit, ec execConfig) ([]batpak.Receipt, error) {
	meta := maps.Clone(ec.meta)
	if meta == nil {
		meta = make(map[string]string)
	}
	// Only the audit writes the policy keys: the caller's metadata cannot
	// hide a bypass or forge one; nor can it set the library's keys.
	maps.DeleteFunc(meta, func(k, _ string) bool {
		return strings.HasPrefix(k, "policy.") || strings.HasPrefix(k, batpak.MetaPrefix)
	})
	maps.Copy(meta, audit.Metadata())
	meta = tracing.Inject(ctx, meta)
	events := make([]batpak.Event, len(p.Events))
	for i, ev := range p.Events {
		v, _, err := registered(c.reg, ev)
		if err != nil {
			return nil, err
		}
		if events[i], err = c.reg.Event(v); err != nil {
			return nil, err
		}
		// The registry's keys (schema version, codec) beside the rest.
		events[i].Metadata = withMeta(meta, events[i].Metadata)
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
	return c.store.Append(ctx, p.Coordinate, events, opts...)
}

// withMeta returns meta with extra added, meta itself if extra is empty.
func withMeta(meta, extra map[string]string) map[string]string {
	if len(extra) == 0 {
		return meta
	}
	m := maps.Clone(meta)
	if m == nil {
		m = make(map[string]string, len(extra))
	}
	maps.Copy(m, extra)
	return m
}
