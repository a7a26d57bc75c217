// Package tracing carries OpenTelemetry trace context through batpak's
// event log, and adds spans to any [batpak.Store].
//
// batpak traces with the OpenTelemetry API (go.opentelemetry.io/otel) and
// never with an SDK: every span is a no-op until the program installs a
// tracer provider (otel.SetTracerProvider, or the WithTracerProvider
// option of each package). What is traced, where:
//
//   - package aggregate: a span for each command a repository executes
//     (aggregate.execute), its loads (aggregate.load) and saves
//     (aggregate.save);
//   - package policy: a span for each evaluation of a gate set within a
//     trace (policy.evaluate);
//   - package projection: a span for each event a projection applies
//     (projection.apply);
//   - this package: [Wrap] adds a span to each Append and AppendBatch of a
//     store (batpak.append, batpak.append_batch), for programs that append
//     without a repository.
//
// # The trace context in the log
//
// An event appended within a span carries that span's W3C trace context in
// its metadata, under the keys [MetaTraceParent] ("traceparent") and
// [MetaTraceState] ("tracestate"), the names the W3C Trace Context and
// CloudEvents use. A repository's save writes it (the aggregate.save span),
// and so does [Wrap]'s append for events that have none yet. A projection
// that applies the event starts its projection.apply span as a child of
// that context: the command, the append and every read model it updated
// are one trace. Each span names the events it wrote or applied
// (batpak.event.id, batpak.correlation_id), so a trace leads to the causal
// chain in the log (package causal, "batpak trace"), and each event's
// traceparent leads back to the trace.
//
// # Guarantees
//
//   - Without a tracer provider no span is recorded and no metadata is
//     added: an event gets a traceparent only when its append runs within
//     a valid span context.
//   - A traceparent already in an event's metadata is never overwritten:
//     the first producer that names one wins.
//   - The format in the log is always W3C Trace Context, whatever
//     propagators the program installed, so an event written today can be
//     linked to its trace by any reader later. Baggage is never written
//     to the log.
//
// # Caveats
//
//   - The metadata is covered by the event's hash: the trace context is
//     part of the event for good. It names a trace, not its content; a
//     trace the backend no longer keeps leaves a dangling reference.
//   - A projection only adds to traces: an event that names no trace,
//     applied by a runner whose context is in none, gets no apply span.
//     One rebuilt or caught up long after its events were appended adds
//     its apply spans to the old traces they name.
//   - [Wrap] returns a [batpak.Store] and only that: methods a backend has
//     beyond the contract (eventstore's Replay and Stats, say) are reached
//     through [Store.Unwrap].
package tracing
