package main

import (
	"cmp"
	"context"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"
	"time"

	"github.com/google/uuid"
	"go.opentelemetry.io/otel/attribute"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak/examples/bank/internal/bank"
	"github.com/batpak-go/batpak/tracing"
)

// traceRecorder traces a run (-trace) with the OpenTelemetry SDK and keeps
// the spans in memory, where a real program would export them.
type traceRecorder struct {
	tp  *sdktrace.TracerProvider
	rec *tracetest.SpanRecorder
}

func newTraceRecorder() *traceRecorder {
	rec := tracetest.NewSpanRecorder()
	return &traceRecorder{tp: sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(rec)), rec: rec}
}

func (t *traceRecorder) shutdown() { _ = t.tp.Shutdown(context.Background()) }

// spanAttributes are the attributes a printed span shows, in this order,
// with shorter names.
var spanAttributes = []struct {
	key   attribute.Key
	label string
}{
	{"bank.transfer.id", "id"}, {"bank.from", "from"}, {"bank.to", "to"}, {"bank.amount", "amount"},
	{tracing.Projection, "projection"}, {tracing.Entity, "entity"}, {tracing.Command, "command"},
	{tracing.Gates, "gates"}, {tracing.Denied, "denied"}, {tracing.Sequence, "event"},
	{tracing.Version, "version"}, {tracing.Outcome, "outcome"},
}

// printTransfer prints the span tree of the first transfer the run made,
// and the events of the transfer that name its trace, then stops
// recording: a steady workload after it would only grow the recorder.
func (t *traceRecorder) printTransfer(w io.Writer, store bank.Store) error {
	spans := t.rec.Ended()
	t.tp.UnregisterSpanProcessor(t.rec)
	var root sdktrace.ReadOnlySpan
	for _, s := range spans {
		if s.Name() == "bank.transfer" && (root == nil || s.StartTime().Before(root.StartTime())) {
			root = s
		}
	}
	if root == nil {
		fmt.Fprintln(w, "\nTrace: no transfer ran this time (-trace shows the scenario's first, on a new store)")
		return nil
	}
	tid := root.SpanContext().TraceID()
	children := make(map[trace.SpanID][]sdktrace.ReadOnlySpan)
	for _, s := range spans {
		if s.SpanContext().TraceID() == tid && s != root {
			children[s.Parent().SpanID()] = append(children[s.Parent().SpanID()], s)
		}
	}
	fmt.Fprintf(w, "\nTrace %s of one transfer (-trace):\n", tid)
	var walk func(s sdktrace.ReadOnlySpan, prefix, branch, indent string)
	walk = func(s sdktrace.ReadOnlySpan, prefix, branch, indent string) {
		fmt.Fprintf(w, "  %s%s%s\n", prefix, branch, describeSpan(s))
		kids := children[s.SpanContext().SpanID()]
		slices.SortFunc(kids, func(a, b sdktrace.ReadOnlySpan) int { return a.StartTime().Compare(b.StartTime()) })
		for i, k := range kids {
			if i == len(kids)-1 {
				walk(k, prefix+indent, "└─ ", "   ")
			} else {
				walk(k, prefix+indent, "├─ ", "│  ")
			}
		}
	}
	walk(root, "", "", "")
	return printTraceLinks(w, store, root)
}

// describeSpan is one line of the tree: the span's name, attributes and
// duration.
func describeSpan(s sdktrace.ReadOnlySpan) string {
	attrs := make(map[attribute.Key]attribute.Value)
	for _, kv := range s.Attributes() {
		attrs[kv.Key] = kv.Value
	}
	var b strings.Builder
	b.WriteString(s.Name())
	for _, a := range spanAttributes {
		v, ok := attrs[a.key]
		switch {
		case !ok:
		case v.Type() == attribute.STRINGSLICE:
			fmt.Fprintf(&b, " %s=%s", a.label, strings.Join(v.AsStringSlice(), ","))
		default:
			fmt.Fprintf(&b, " %s=%s", a.label, v.Emit())
		}
	}
	fmt.Fprintf(&b, " (%v)", s.EndTime().Sub(s.StartTime()).Round(time.Microsecond))
	return b.String()
}

// printTraceLinks prints the events of the transfer, found in the log by
// the correlation id the transfer's span names, with the traceparent each
// carries: the log leads to the trace, and the trace to the log.
func printTraceLinks(w io.Writer, store bank.Store, root sdktrace.ReadOnlySpan) error {
	var corr uuid.UUID
	for _, kv := range root.Attributes() {
		if kv.Key == tracing.CorrelationID {
			corr, _ = uuid.Parse(kv.Value.AsString())
		}
	}
	if corr == uuid.Nil {
		return nil
	}
	fmt.Fprintf(w, "  its events in the log, correlation id %s (go run ./cmd/batpak trace DIR %s draws the chain):\n", corr, corr)
	reg := bank.Registry()
	tid := root.SpanContext().TraceID()
	ctx := context.Background()
	first, err := store.Get(ctx, corr) // the group's root, which Correlated leaves out
	if err != nil {
		return err
	}
	for _, seq := range append([]uint64{first.Sequence}, store.Correlated(corr)...) {
		rec, err := store.GetSequence(ctx, seq)
		if err != nil {
			return err
		}
		name := "?"
		if v, err := reg.Decode(&rec); err == nil {
			name = reflect.TypeOf(v).Name()
		}
		in := "another trace"
		if sc := tracing.SpanContext(rec.Metadata); sc.TraceID() == tid {
			in = "this trace, span " + sc.SpanID().String()
		}
		fmt.Fprintf(w, "    #%d %s %s traceparent %s: %s\n", rec.Sequence, rec.Coordinate.Entity, name,
			cmp.Or(rec.Metadata[tracing.MetaTraceParent], "none"), in)
	}
	return nil
}
