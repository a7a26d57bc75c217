package policy

import (
	"context"
	"errors"
	"strings"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak/tracing"
)

var (
	// ErrReceiptUsed is returned when a receipt is committed a second time.
	ErrReceiptUsed = errors.New("policy: receipt already used")
	// ErrInvalidReceipt is returned for a receipt no GateSet issued.
	ErrInvalidReceipt = errors.New("policy: receipt was not issued by a gate set")
	// ErrBypassUnjustified is returned by a bypass without a reason or an actor.
	ErrBypassUnjustified = errors.New("policy: a bypass needs a reason and an actor")
)

// CommitFunc persists an allowed proposal; audit says how it was allowed
// and should travel with what is stored (see [Audit.Metadata]).
type CommitFunc[P, R any] func(ctx context.Context, proposal P, audit Audit) (R, error)

// Option configures a [Pipeline].
type Option func(*config)

type config struct {
	now func() time.Time
	tp  trace.TracerProvider
}

// WithClock sets the clock that stamps bypasses (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

// WithTracerProvider sets the provider of the pipeline's spans (default:
// the global one, otel.GetTracerProvider, a no-op until the program
// installs one). See docs/observability.md.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// ScopeName is the instrumentation scope of this package's spans.
const ScopeName = "github.com/batpak-go/batpak/policy"

// Pipeline evaluates proposals and commits the allowed ones.
type Pipeline[C, P, R any] struct {
	gates  *GateSet[C, P]
	commit CommitFunc[P, R]
	config
}

// NewPipeline returns a pipeline over gates committing with commit.
func NewPipeline[C, P, R any](gates *GateSet[C, P], commit CommitFunc[P, R], opts ...Option) *Pipeline[C, P, R] {
	p := &Pipeline[C, P, R]{gates: gates, commit: commit, config: config{now: time.Now}}
	for _, o := range opts {
		o(&p.config)
	}
	if p.tp == nil {
		p.tp = otel.GetTracerProvider()
	}
	return p
}

// Submit evaluates proposal and commits it if every gate passes; otherwise
// it returns the [Denials] and commits nothing. When ctx is in a trace,
// the evaluation is a span of it, policy.evaluate.
func (p *Pipeline[C, P, R]) Submit(ctx context.Context, c C, proposal P) (R, error) {
	var zero R
	var span trace.Span
	if trace.SpanContextFromContext(ctx).IsValid() { // the tracer is looked up only then
		_, span = p.tp.Tracer(ScopeName).Start(ctx, "policy.evaluate")
	}
	receipt, err := p.gates.Evaluate(c, proposal)
	if span != nil {
		if span.IsRecording() {
			endEvaluate(span, receipt, err)
		}
		span.End()
	}
	if err != nil {
		return zero, err
	}
	return p.commitReceipt(ctx, receipt)
}

// endEvaluate records in span the gates that passed and those that denied.
func endEvaluate[P any](span trace.Span, receipt *Receipt[P], err error) {
	if receipt != nil {
		span.SetAttributes(tracing.Gates.StringSlice(receipt.audit.Gates))
	}
	var ds Denials
	if !errors.As(err, &ds) {
		if err != nil {
			span.SetStatus(codes.Error, err.Error())
		}
		return
	}
	// A denial is the gates' answer, not a failure: the status stays unset.
	names := make([]string, len(ds))
	for i, d := range ds {
		names[i] = d.Gate
		span.AddEvent("denial", trace.WithAttributes(attribute.String("gate", d.Gate), attribute.String("code", d.Code)))
	}
	span.SetAttributes(tracing.Denied.StringSlice(names))
}

// Bypass commits proposal without evaluating the gates. The reason and the
// actor are required and are handed to the commit function in the audit.
func (p *Pipeline[C, P, R]) Bypass(ctx context.Context, proposal P, reason, actor string) (R, error) {
	var zero R
	if !Justified(reason, actor) {
		return zero, ErrBypassUnjustified
	}
	r := &Receipt[P]{proposal: proposal, valid: true, audit: Audit{Bypass: &Bypass{Reason: reason, Actor: actor, At: p.now()}}}
	if span := trace.SpanFromContext(ctx); span.IsRecording() {
		span.AddEvent("policy.bypass", trace.WithAttributes(tracing.BypassActor.String(actor), attribute.String("reason", reason)))
	}
	return p.commitReceipt(ctx, r)
}

// Justified reports whether a bypass with this reason and actor may
// proceed: both must hold more than white space. Callers that do work
// before they reach [Pipeline.Bypass] check it first, so an unjustified
// bypass fails before anything runs.
func Justified(reason, actor string) bool {
	return strings.TrimSpace(reason) != "" && strings.TrimSpace(actor) != ""
}

func (p *Pipeline[C, P, R]) commitReceipt(ctx context.Context, r *Receipt[P]) (R, error) {
	var out R
	err := r.Commit(func(proposal P, audit Audit) error {
		var err error
		out, err = p.commit(ctx, proposal, audit)
		return err
	})
	return out, err
}
