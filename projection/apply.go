package projection

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"go.opentelemetry.io/otel/attribute"
	"go.opentelemetry.io/otel/codes"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/tracing"
)

// ApplyError is the error of a projection that stopped at an event it
// parked: Apply failed Attempts times in this run, and the projection's
// [Policy] is [Stop].
type ApplyError struct {
	Projection string
	Sequence   uint64
	EventID    uuid.UUID
	Attempts   int
	Err        error // the last Apply error
}

func (e *ApplyError) Error() string {
	return fmt.Sprintf("projection %s: apply #%d failed %d time(s), parked, projection stopped: %v",
		e.Projection, e.Sequence, e.Attempts, e.Err)
}

func (e *ApplyError) Unwrap() error { return e.Err }

type parkedRetryKey struct{}

// ParkedRetry reports whether ctx is that of an Apply that retries an
// event parked behind the projection's position (with [Continue]): the
// projection has applied later events already. A projection that skips
// events below its own stored position, as package sqlproj does, applies
// such a retry anyway and leaves its position alone.
func ParkedRetry(ctx context.Context) bool {
	v, _ := ctx.Value(parkedRetryKey{}).(bool)
	return v
}

// begin starts a run of p: it loads p's checkpoint and parked events,
// and does what was asked of the events parked behind the checkpoint
// (retry or skip them). It returns the next sequence to apply.
func (r *Runner) begin(ctx context.Context, p Projection) (*track, uint64, error) {
	name := p.Name()
	t := r.trackOf(name)
	next, err := r.cps.Load(ctx, name)
	if err != nil {
		return t, 0, fmt.Errorf("projection %s: load checkpoint: %w", name, err)
	}
	next = max(next, 1)
	parked, err := r.dls.Parked(ctx, name)
	if err != nil {
		return t, 0, fmt.Errorf("projection %s: load parked events: %w", name, err)
	}
	r.mu.Lock()
	t.region, t.next = p.Region(), next
	t.parked = make(map[uint64]DeadLetter, len(parked))
	for _, d := range parked {
		t.parked[d.Sequence] = d
	}
	r.mu.Unlock()
	if next > 1 {
		if rec, ok, err := r.event(ctx, next-1); err == nil && ok {
			r.mu.Lock()
			t.last = rec.Timestamp
			r.mu.Unlock()
		}
	}
	pol := r.policyOf(name)
	pol.Then = Continue // a retry that fails again parks the event again; it never stops p
	rctx := context.WithValue(ctx, parkedRetryKey{}, true)
	for _, d := range parked {
		if d.Sequence >= next {
			break // met on the way: skipped or retried in order
		}
		switch d.Resolution {
		case ResolveSkip:
			if err := r.unpark(ctx, t, name, d.Sequence); err != nil {
				return t, 0, err
			}
		case ResolveRetry:
			rec, ok, err := r.event(ctx, d.Sequence)
			if err != nil {
				return t, 0, fmt.Errorf("projection %s: read parked #%d: %w", name, d.Sequence, err)
			}
			if !ok {
				d.Resolution, d.Error, d.LastFailed = "", "the event is no longer in the log", time.Now()
				if err := r.park(ctx, t, d); err != nil {
					return t, 0, err
				}
				continue
			}
			if err := r.apply(rctx, p, t, rec, pol); err != nil {
				return t, 0, err
			}
		}
	}
	return t, next, nil
}

// event reads the event at seq; ok is false if there is none.
func (r *Runner) event(ctx context.Context, seq uint64) (batpak.Record, bool, error) {
	for rec, err := range r.src.Replay(ctx, batpak.Region{FromSequence: seq, ToSequence: seq}, seq) {
		if err != nil {
			return batpak.Record{}, false, err
		}
		return rec, rec.Sequence == seq, nil
	}
	return batpak.Record{}, false, nil
}

// apply applies rec to p as p's policy says: it tries Apply up to
// pol.Attempts times with backoff and parks the event if every try fails.
// It returns nil to go on with the next event: rec was applied, skipped
// as someone asked, or parked under [Continue]. Otherwise it returns
// ctx's error, a *ApplyError ([Stop]) or a failure to park.
func (r *Runner) apply(ctx context.Context, p Projection, t *track, rec batpak.Record, pol Policy) error {
	name := p.Name()
	r.mu.Lock()
	prev, wasParked := t.parked[rec.Sequence]
	r.mu.Unlock()
	if wasParked && prev.Resolution == ResolveSkip {
		return r.unpark(ctx, t, name, rec.Sequence)
	}
	ctx, span := r.startApply(ctx, &rec)
	defer span.End()
	attempts := 0
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		attempts++
		if attempts > 1 {
			r.mu.Lock()
			t.retried++
			r.mu.Unlock()
		}
		err := p.Apply(ctx, rec)
		if err != nil && span.IsRecording() {
			span.AddEvent("apply failed", trace.WithAttributes(tracing.Attempts.Int(attempts), attribute.String("error", err.Error())))
		}
		return struct{}{}, err
	}, backoff.WithBackOff(pol.backoff()), backoff.WithMaxTries(uint(pol.Attempts)), backoff.WithMaxElapsedTime(0))
	if span.IsRecording() {
		endApply(span, name, &rec, attempts, err, ctx.Err() != nil)
	}
	if err == nil {
		r.mu.Lock()
		t.applied++
		t.last = rec.Timestamp
		r.mu.Unlock()
		if wasParked {
			return r.unpark(ctx, t, name, rec.Sequence)
		}
		return nil
	}
	if cerr := ctx.Err(); cerr != nil {
		return cerr // not exhausted: the event is offered again on the next run
	}
	now := time.Now()
	d := DeadLetter{Projection: name, Sequence: rec.Sequence, EventID: rec.ID, Error: err.Error(),
		Attempts: prev.Attempts + attempts, Parked: now, LastFailed: now, Stopped: pol.Then == Stop}
	if wasParked {
		d.Parked = prev.Parked
	}
	if perr := r.park(ctx, t, d); perr != nil {
		return fmt.Errorf("projection %s: apply #%d failed %d time(s): %w; %w", name, rec.Sequence, attempts, err, perr)
	}
	if d.Stopped {
		return &ApplyError{Projection: name, Sequence: rec.Sequence, EventID: rec.ID, Attempts: attempts, Err: err}
	}
	return nil
}

// startApply starts the projection.apply span of rec, as a child of the
// span that appended rec when rec names one (see package tracing), or else
// of ctx's span. A projection only adds to traces and never starts one: an
// event appended outside any trace, applied outside any, gets no span, so
// that replaying a long untraced history costs no span per event.
func (r *Runner) startApply(ctx context.Context, rec *batpak.Record) (context.Context, trace.Span) {
	// The extracted context keeps ctx's cancellation.
	return tracing.StartChild(tracing.Extract(ctx, rec.Metadata), r.tracer, "projection.apply", trace.SpanKindConsumer)
}

// endApply records in span which event name applied, in how many
// attempts, and how it ended: applied, canceled (offered again on the
// next run), or parked with the last error.
func endApply(span trace.Span, name string, rec *batpak.Record, attempts int, err error, canceled bool) {
	span.SetAttributes(tracing.Projection.String(name), tracing.Attempts.Int(attempts))
	span.SetAttributes(tracing.RecordAttributes(rec)...)
	switch {
	case err == nil:
		span.SetAttributes(tracing.Outcome.String("applied"))
	case canceled:
		span.SetAttributes(tracing.Outcome.String("canceled"))
	default:
		span.SetAttributes(tracing.Outcome.String("parked"))
		span.SetStatus(codes.Error, err.Error())
	}
}

// park stores d and reports it.
func (r *Runner) park(ctx context.Context, t *track, d DeadLetter) error {
	if err := r.dls.Park(context.WithoutCancel(ctx), d); err != nil {
		return fmt.Errorf("projection %s: park #%d: %w", d.Projection, d.Sequence, err)
	}
	r.mu.Lock()
	t.parked[d.Sequence] = d
	r.mu.Unlock()
	if r.onParked != nil {
		r.onParked(d)
	}
	return nil
}

// unpark removes the parked event seq: it was applied or skipped.
func (r *Runner) unpark(ctx context.Context, t *track, name string, seq uint64) error {
	if err := r.dls.Remove(context.WithoutCancel(ctx), name, seq); err != nil {
		return fmt.Errorf("projection %s: remove parked #%d: %w", name, seq, err)
	}
	r.mu.Lock()
	delete(t.parked, seq)
	r.mu.Unlock()
	return nil
}

// Parked returns the parked events of the projection name.
func (r *Runner) Parked(ctx context.Context, name string) ([]DeadLetter, error) {
	return r.dls.Parked(ctx, name)
}

// Retry asks for the parked event seq of the projection name to be
// applied again. A projection that stopped at it under [Runner.RunAll]
// starts again at once and retries it; one that went on past it
// ([Continue]) retries it out of order (see [ParkedRetry]) as its run
// starts again. Otherwise the retry happens when the projection next
// starts. It returns an error matching [ErrNotParked] if the event is not
// parked.
func (r *Runner) Retry(ctx context.Context, name string, seq uint64) error {
	return r.resolve(ctx, name, seq, ResolveRetry)
}

// Skip asks for the parked event seq of the projection name to be
// dropped: never applied. It takes effect as [Runner.Retry] does.
func (r *Runner) Skip(ctx context.Context, name string, seq uint64) error {
	return r.resolve(ctx, name, seq, ResolveSkip)
}

func (r *Runner) resolve(ctx context.Context, name string, seq uint64, how Resolution) error {
	if err := r.dls.Resolve(ctx, name, seq, how); err != nil {
		return err
	}
	t := r.trackOf(name)
	select {
	case t.nudge <- struct{}{}:
	default:
	}
	return nil
}

// ended records how a run of name ended and reports a failure.
func (r *Runner) ended(ctx context.Context, name string, err error) {
	t := r.trackOf(name)
	var ae *ApplyError
	switch {
	case err == nil || ctx.Err() != nil:
		r.setState(t, Idle, nil)
		return
	case errors.As(err, &ae):
		r.setState(t, Stopped, err)
	default:
		r.setState(t, Failed, err)
	}
	if r.onFailure != nil {
		r.onFailure(name, err)
	}
}
