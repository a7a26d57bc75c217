package policy

import (
	"context"
	"errors"
	"strings"
	"time"
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
}

// WithClock sets the clock that stamps bypasses (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.now = now } }

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
	return p
}

// Submit evaluates proposal and commits it if every gate passes; otherwise
// it returns the [Denials] and commits nothing.
func (p *Pipeline[C, P, R]) Submit(ctx context.Context, c C, proposal P) (R, error) {
	var zero R
	receipt, err := p.gates.Evaluate(c, proposal)
	if err != nil {
		return zero, err
	}
	return p.commitReceipt(ctx, receipt)
}

// Bypass commits proposal without evaluating the gates. The reason and the
// actor are required and are handed to the commit function in the audit.
func (p *Pipeline[C, P, R]) Bypass(ctx context.Context, proposal P, reason, actor string) (R, error) {
	var zero R
	if !Justified(reason, actor) {
		return zero, ErrBypassUnjustified
	}
	r := &Receipt[P]{proposal: proposal, valid: true, audit: Audit{Bypass: &Bypass{Reason: reason, Actor: actor, At: p.now()}}}
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
