package tracing_test

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"sync"
	"testing"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	sdktrace "go.opentelemetry.io/otel/sdk/trace"
	"go.opentelemetry.io/otel/sdk/trace/tracetest"
	"go.opentelemetry.io/otel/trace"
	"go.opentelemetry.io/otel/trace/noop"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
	"github.com/batpak-go/batpak/policy"
	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/tracing"
)

// Account is a small aggregate: a balance that deposits raise.
type Account struct{ Balance int64 }

type (
	Deposited struct{ N int64 }
	Deposit   struct{ N int64 }
)

func (a *Account) Apply(ev any) {
	if d, ok := ev.(Deposited); ok {
		a.Balance += d.N
	}
}

func (c Deposit) Handle(*Account) ([]any, error) { return []any{Deposited(c)}, nil }

func registry() *batpak.Registry {
	reg := batpak.NewRegistry()
	batpak.MustRegister[Deposited](reg, kind.Custom(0x3, 0x001), "bank.Deposited")
	return reg
}

// positive denies deposits that are not.
var positive = aggregate.CommandGate("positive", func(_ struct{}, d Deposit, _ aggregate.Proposal[Account]) *policy.Denial {
	if d.N <= 0 {
		return policy.Deny("not_positive", "a deposit must be positive")
	}
	return nil
})

// ledger is a projection that remembers the events it applied.
type ledger struct {
	mu   sync.Mutex
	seen []batpak.Record
}

func (l *ledger) Name() string          { return "ledger" }
func (l *ledger) Region() batpak.Region { return batpak.Region{Scope: "bank"} }
func (l *ledger) Apply(_ context.Context, rec batpak.Record) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	l.seen = append(l.seen, rec)
	return nil
}

func recorder() (*tracetest.SpanRecorder, trace.TracerProvider) {
	sr := tracetest.NewSpanRecorder()
	return sr, sdktrace.NewTracerProvider(sdktrace.WithSpanProcessor(sr))
}

// spansNamed returns the ended spans called name.
func spansNamed(sr *tracetest.SpanRecorder, name string) []sdktrace.ReadOnlySpan {
	var out []sdktrace.ReadOnlySpan
	for _, s := range sr.Ended() {
		if s.Name() == name {
			out = append(out, s)
		}
	}
	return out
}

func onlySpan(t *testing.T, sr *tracetest.SpanRecorder, name string) sdktrace.ReadOnlySpan {
	t.Helper()
	ss := spansNamed(sr, name)
	if len(ss) != 1 {
		t.Fatalf("%d spans %s, want 1", len(ss), name)
	}
	return ss[0]
}

func attr(s sdktrace.ReadOnlySpan, k attribute.Key) attribute.Value {
	for _, kv := range s.Attributes() {
		if kv.Key == k {
			return kv.Value
		}
	}
	return attribute.Value{}
}

func childOf(t *testing.T, child, parent sdktrace.ReadOnlySpan) {
	t.Helper()
	if child.Parent().SpanID() != parent.SpanContext().SpanID() || child.SpanContext().TraceID() != parent.SpanContext().TraceID() {
		t.Errorf("span %s is not a child of %s", child.Name(), parent.Name())
	}
}

// TestCommandTraceReachesProjection checks that one command makes one
// trace, from the repository through the gates and the save to the
// projection that applies its event, and that the event carries the
// save's trace context.
func TestCommandTraceReachesProjection(t *testing.T) {
	sr, tp := recorder()
	store := memstore.New()
	defer store.Close()
	ctx := context.Background()
	gates := policy.NewGateSet(policy.FailFast, positive)
	repo, err := aggregate.NewGatedRepository[Account](store, registry(), "bank", gates, aggregate.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	res, err := repo.Execute(ctx, "account:1", struct{}{}, Deposit{N: 5})
	if err != nil {
		t.Fatal(err)
	}
	runner := projection.NewRunner(store, projection.NewMemoryCheckpoints(), projection.WithTracerProvider(tp))
	l := &ledger{}
	if _, err := runner.CatchUp(ctx, l); err != nil {
		t.Fatal(err)
	}

	exec := onlySpan(t, sr, "aggregate.execute")
	load := onlySpan(t, sr, "aggregate.load")
	eval := onlySpan(t, sr, "policy.evaluate")
	save := onlySpan(t, sr, "aggregate.save")
	apply := onlySpan(t, sr, "projection.apply")
	if exec.Parent().IsValid() {
		t.Error("aggregate.execute has a parent; the command was the root")
	}
	childOf(t, load, exec)
	childOf(t, eval, exec)
	childOf(t, save, exec)
	childOf(t, apply, save)
	if apply.SpanKind() != trace.SpanKindConsumer || save.SpanKind() != trace.SpanKindProducer {
		t.Errorf("kinds: save %v, apply %v", save.SpanKind(), apply.SpanKind())
	}

	// The event names the save's span; the spans name the event.
	rec, err := store.Get(ctx, res.Receipts[0].EventID)
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("00-%s-%s-01", save.SpanContext().TraceID(), save.SpanContext().SpanID())
	if got := rec.Metadata[tracing.MetaTraceParent]; got != want {
		t.Errorf("traceparent %q, want %q", got, want)
	}
	if sc := tracing.SpanContext(rec.Metadata); !sc.Equal(save.SpanContext().WithRemote(true)) {
		t.Errorf("SpanContext of the metadata: %v", sc)
	}
	if len(l.seen) != 1 || l.seen[0].Metadata[tracing.MetaTraceParent] != want {
		t.Errorf("the projection saw %v", l.seen)
	}
	id := rec.ID.String()
	for _, s := range []sdktrace.ReadOnlySpan{exec, save, apply} {
		if got := attr(s, tracing.EventID).AsString(); got != id {
			t.Errorf("%s: %s = %q, want %q", s.Name(), tracing.EventID, got, id)
		}
	}
	if got := attr(apply, tracing.CorrelationID).AsString(); got != rec.CorrelationID.String() {
		t.Errorf("apply: correlation %q, want %q", got, rec.CorrelationID)
	}
	for k, want := range map[attribute.Key]string{tracing.Outcome: "committed", tracing.Command: "tracing_test.Deposit", tracing.Entity: "account:1", tracing.Scope: "bank"} {
		if got := attr(exec, k).AsString(); got != want {
			t.Errorf("aggregate.execute: %s = %q, want %q", k, got, want)
		}
	}
	if got := attr(eval, tracing.Gates).AsStringSlice(); len(got) != 1 || got[0] != "positive" {
		t.Errorf("policy.evaluate: gates %v", got)
	}
	if got := attr(apply, tracing.Outcome).AsString(); got != "applied" {
		t.Errorf("projection.apply: outcome %q", got)
	}
	if got := attr(apply, tracing.Projection).AsString(); got != "ledger" {
		t.Errorf("projection.apply: projection %q", got)
	}
}

// TestCausalChainIsOneTrace checks that a transfer, a command whose event
// causes a second command, made in one span, leaves both events in that
// trace, and that the spans name the causation.
func TestCausalChainIsOneTrace(t *testing.T) {
	sr, tp := recorder()
	store := memstore.New()
	defer store.Close()
	repo, err := aggregate.NewRepository[Account](store, registry(), "bank", aggregate.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	ctx, transfer := tp.Tracer("test").Start(context.Background(), "transfer")
	sent, err := repo.Execute(ctx, "account:a", Deposit{N: -5})
	if err != nil {
		t.Fatal(err)
	}
	cause := sent.Receipts[0].EventID
	got, err := repo.Execute(ctx, "account:b", Deposit{N: 5}, aggregate.CausedBy(cause))
	if err != nil {
		t.Fatal(err)
	}
	transfer.End()
	tid := transfer.SpanContext().TraceID()
	for _, r := range []*aggregate.Result[Account]{sent, got} {
		rec, err := store.Get(context.Background(), r.Receipts[0].EventID)
		if err != nil {
			t.Fatal(err)
		}
		if sc := tracing.SpanContext(rec.Metadata); sc.TraceID() != tid {
			t.Errorf("event %d is in trace %s, want %s", rec.Sequence, sc.TraceID(), tid)
		}
		if rec.CorrelationID != cause {
			t.Errorf("event %d: correlation %s, want the transfer's %s", rec.Sequence, rec.CorrelationID, cause)
		}
	}
	saves := spansNamed(sr, "aggregate.save")
	if len(saves) != 2 {
		t.Fatalf("%d saves", len(saves))
	}
	if c := attr(saves[1], tracing.CausationID).AsString(); c != cause.String() {
		t.Errorf("the second save's causation %q, want %q", c, cause)
	}
	for _, s := range spansNamed(sr, "aggregate.execute") {
		if s.Parent().SpanID() != transfer.SpanContext().SpanID() {
			t.Errorf("an execute span outside the transfer's")
		}
	}
}

// TestDenialIsAnAnswer checks the spans of a command the gates refuse.
func TestDenialIsAnAnswer(t *testing.T) {
	sr, tp := recorder()
	store := memstore.New()
	defer store.Close()
	repo, err := aggregate.NewGatedRepository[Account](store, registry(), "bank", policy.NewGateSet(policy.FailFast, positive), aggregate.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Execute(context.Background(), "account:1", struct{}{}, Deposit{N: -1}); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("Execute: %v", err)
	}
	exec := onlySpan(t, sr, "aggregate.execute")
	eval := onlySpan(t, sr, "policy.evaluate")
	if got := attr(exec, tracing.Outcome).AsString(); got != "denied" {
		t.Errorf("outcome %q", got)
	}
	if exec.Status().Code != codes.Unset || eval.Status().Code != codes.Unset {
		t.Errorf("a denial set the status: %v, %v", exec.Status(), eval.Status())
	}
	if got := attr(eval, tracing.Denied).AsStringSlice(); len(got) != 1 || got[0] != "positive" {
		t.Errorf("denied %v", got)
	}
	if n := len(spansNamed(sr, "aggregate.save")); n != 0 {
		t.Errorf("%d saves of a denied command", n)
	}
}

// TestBypassOnRecord checks that a bypass is an event on the execute span.
func TestBypassOnRecord(t *testing.T) {
	sr, tp := recorder()
	store := memstore.New()
	defer store.Close()
	repo, err := aggregate.NewGatedRepository[Account](store, registry(), "bank", policy.NewGateSet(policy.FailFast, positive), aggregate.WithTracerProvider(tp))
	if err != nil {
		t.Fatal(err)
	}
	if _, err := repo.Bypass(context.Background(), "account:1", Deposit{N: -1}, "correction", "ops:jane"); err != nil {
		t.Fatal(err)
	}
	exec := onlySpan(t, sr, "aggregate.execute")
	var found bool
	for _, ev := range exec.Events() {
		found = found || ev.Name == "policy.bypass"
	}
	if !found {
		t.Errorf("no policy.bypass event on %s: %v", exec.Name(), exec.Events())
	}
}

// TestNoProviderNoMetadata checks that without a tracer provider nothing
// is added to the log.
func TestNoProviderNoMetadata(t *testing.T) {
	store := memstore.New()
	defer store.Close()
	for name, opts := range map[string][]aggregate.Option{
		"global": nil,
		"noop":   {aggregate.WithTracerProvider(noop.NewTracerProvider())},
	} {
		repo, err := aggregate.NewRepository[Account](store, registry(), "bank", opts...)
		if err != nil {
			t.Fatal(err)
		}
		res, err := repo.Execute(context.Background(), "account:"+name, Deposit{N: 1})
		if err != nil {
			t.Fatal(err)
		}
		rec, err := store.Get(context.Background(), res.Receipts[0].EventID)
		if err != nil {
			t.Fatal(err)
		}
		if len(rec.Metadata) != 0 {
			t.Errorf("%s: metadata %v", name, rec.Metadata)
		}
	}
	ts := tracing.Wrap(store, tracing.WithTracerProvider(noop.NewTracerProvider()))
	rs, err := ts.Append(context.Background(), batpak.Coordinate{Entity: "e", Scope: "bank"}, []batpak.Event{{Kind: kind.Custom(0x3, 0x001), Payload: 1}})
	if err != nil {
		t.Fatal(err)
	}
	if rec, _ := store.Get(context.Background(), rs[0].EventID); len(rec.Metadata) != 0 {
		t.Errorf("Wrap with no provider: metadata %v", rec.Metadata)
	}
}

// TestWrap checks the wrapper's spans and metadata.
func TestWrap(t *testing.T) {
	sr, tp := recorder()
	store := memstore.New()
	defer store.Close()
	ts := tracing.Wrap(store, tracing.WithTracerProvider(tp))
	if ts.Unwrap() != batpak.Store(store) {
		t.Fatal("Unwrap")
	}
	ctx := context.Background()
	coord := batpak.Coordinate{Entity: "e", Scope: "bank"}
	k := kind.Custom(0x3, 0x001)
	own := map[string]string{"note": "mine"}
	foreign := map[string]string{tracing.MetaTraceParent: "00-0af7651916cd43dd8448eb211c80319c-b7ad6b7169203331-01"}
	events := []batpak.Event{{Kind: k, Payload: 1, Metadata: own}, {Kind: k, Payload: 2, Metadata: foreign}}
	rs, err := ts.Append(ctx, coord, events)
	if err != nil {
		t.Fatal(err)
	}
	if len(own) != 1 || events[0].Metadata["note"] != "mine" || len(events[0].Metadata) != 1 {
		t.Errorf("the caller's metadata changed: %v", own)
	}
	app := onlySpan(t, sr, "batpak.append")
	first, _ := store.Get(ctx, rs[0].EventID)
	if sc := tracing.SpanContext(first.Metadata); sc.SpanID() != app.SpanContext().SpanID() || first.Metadata["note"] != "mine" {
		t.Errorf("first event's metadata %v", first.Metadata)
	}
	second, _ := store.Get(ctx, rs[1].EventID)
	if !maps.Equal(second.Metadata, foreign) {
		t.Errorf("a traceparent was overwritten: %v", second.Metadata)
	}
	if got := attr(app, tracing.Events).AsInt64(); got != 2 {
		t.Errorf("batpak.append: events %d", got)
	}
	if got := attr(app, tracing.Sequence).AsInt64(); got != int64(rs[0].Sequence) {
		t.Errorf("batpak.append: sequence %d", got)
	}

	items := []batpak.BatchItem{{Coordinate: coord, Event: batpak.Event{Kind: k, Payload: 3}}, {Coordinate: batpak.Coordinate{Entity: "f", Scope: "bank"}, Event: batpak.Event{Kind: k, Payload: 4}}}
	rs, err = ts.AppendBatch(ctx, items)
	if err != nil {
		t.Fatal(err)
	}
	batch := onlySpan(t, sr, "batpak.append_batch")
	for _, r := range rs {
		rec, _ := store.Get(ctx, r.EventID)
		if sc := tracing.SpanContext(rec.Metadata); sc.SpanID() != batch.SpanContext().SpanID() {
			t.Errorf("batch event %d: metadata %v", rec.Sequence, rec.Metadata)
		}
	}
	if items[0].Event.Metadata != nil {
		t.Error("the caller's batch item changed")
	}

	// A failed append is an error span.
	if _, err := ts.Append(ctx, coord, events[:1], batpak.ExpectVersion(batpak.NoStream)); !errors.Is(err, batpak.ErrVersionConflict) {
		t.Fatalf("conflicting append: %v", err)
	}
	if ss := spansNamed(sr, "batpak.append"); len(ss) != 2 || ss[1].Status().Code != codes.Error {
		t.Errorf("the failed append's span: %v", ss)
	}
}

// TestProjectionOnlyAddsToTraces checks that a projection applying events
// appended outside any trace makes no span, unless its own context is in
// a trace, which its spans then join.
func TestProjectionOnlyAddsToTraces(t *testing.T) {
	sr, tp := recorder()
	store := memstore.New()
	defer store.Close()
	for i := range 3 {
		if _, err := store.Append(context.Background(), batpak.Coordinate{Entity: "e", Scope: "bank"}, []batpak.Event{{Kind: kind.Custom(0x3, 0x001), Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	runner := projection.NewRunner(store, projection.NewMemoryCheckpoints(), projection.WithTracerProvider(tp))
	if _, err := runner.CatchUp(context.Background(), &ledger{}); err != nil {
		t.Fatal(err)
	}
	if n := len(spansNamed(sr, "projection.apply")); n != 0 {
		t.Fatalf("%d apply spans of untraced events", n)
	}
	ctx, rebuild := tp.Tracer("test").Start(context.Background(), "rebuild")
	runner = projection.NewRunner(store, projection.NewMemoryCheckpoints(), projection.WithTracerProvider(tp))
	if _, err := runner.CatchUp(ctx, &ledger{}); err != nil {
		t.Fatal(err)
	}
	rebuild.End()
	applies := spansNamed(sr, "projection.apply")
	if len(applies) != 3 {
		t.Fatalf("%d apply spans in the rebuild's trace, want 3", len(applies))
	}
	for _, s := range applies {
		if s.Parent().SpanID() != rebuild.SpanContext().SpanID() {
			t.Errorf("an apply span outside the rebuild's")
		}
	}
}
