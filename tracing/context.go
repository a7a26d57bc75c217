package tracing

import (
	"context"
	"maps"

	"go.opentelemetry.io/otel/propagation"
	"go.opentelemetry.io/otel/trace"
)

// Metadata keys of the trace context an event carries: the W3C Trace
// Context headers, lower case, as CloudEvents' distributed tracing
// extension names them.
const (
	MetaTraceParent = "traceparent"
	MetaTraceState  = "tracestate"
)

// w3c is the propagator of the trace context in the log: always W3C
// Trace Context, whatever the program's global propagator is, so that the
// format of the log does not depend on a process's configuration.
var w3c propagation.TraceContext

// Inject returns meta with the trace context of ctx's span added: meta
// itself when ctx has no valid span context or meta already holds a
// traceparent, and otherwise a copy (meta is never changed).
func Inject(ctx context.Context, meta map[string]string) map[string]string {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return meta
	}
	if _, ok := meta[MetaTraceParent]; ok {
		return meta
	}
	out := make(map[string]string, len(meta)+2)
	maps.Copy(out, meta)
	w3c.Inject(ctx, propagation.MapCarrier(out))
	return out
}

// Extract returns ctx with the span context meta carries as its remote
// parent, or ctx itself if meta carries none that is valid.
func Extract(ctx context.Context, meta map[string]string) context.Context {
	if _, ok := meta[MetaTraceParent]; !ok {
		return ctx
	}
	return w3c.Extract(ctx, propagation.MapCarrier(meta))
}

// SpanContext returns the span context meta carries (not valid if none).
func SpanContext(meta map[string]string) trace.SpanContext {
	return trace.SpanContextFromContext(Extract(context.Background(), meta))
}

// StartChild starts a span named name of kind kind with tracer when ctx is
// in a trace (its span context is valid), and otherwise returns ctx and a
// no-op span: a step that is only ever part of some operation is traced
// when the operation is, and costs no span when it is not.
func StartChild(ctx context.Context, tracer trace.Tracer, name string, kind trace.SpanKind) (context.Context, trace.Span) {
	if !trace.SpanContextFromContext(ctx).IsValid() {
		return ctx, trace.SpanFromContext(context.Background()) // a no-op span
	}
	return tracer.Start(ctx, name, trace.WithSpanKind(kind))
}
