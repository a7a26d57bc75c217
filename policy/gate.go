package policy

import (
	"fmt"
	"sync/atomic"
	"time"
)

// Gate checks a proposal P against a caller-defined context C. It returns
// nil to pass or a denial; the GateSet reports a copy of the denial with
// its Gate set to the gate's name, so a gate may return a shared denial.
type Gate[C, P any] interface {
	Name() string
	Check(ctx C, proposal P) *Denial
}

// GateFunc makes a Gate from a name and a function.
func GateFunc[C, P any](name string, check func(ctx C, proposal P) *Denial) Gate[C, P] {
	return funcGate[C, P]{name: name, check: check}
}

type funcGate[C, P any] struct {
	name  string
	check func(C, P) *Denial
}

func (g funcGate[C, P]) Name() string                    { return g.name }
func (g funcGate[C, P]) Check(ctx C, proposal P) *Denial { return g.check(ctx, proposal) }

// Mode says how a GateSet evaluates.
type Mode int

const (
	// FailFast stops at the first denial.
	FailFast Mode = iota
	// EvaluateAll runs every gate and reports every denial.
	EvaluateAll
)

// GateSet is an ordered set of gates.
type GateSet[C, P any] struct {
	mode  Mode
	gates []Gate[C, P]
}

// NewGateSet returns a gate set evaluating gates in order.
func NewGateSet[C, P any](mode Mode, gates ...Gate[C, P]) *GateSet[C, P] {
	return &GateSet[C, P]{mode: mode, gates: gates}
}

// Names returns the gate names in order.
func (s *GateSet[C, P]) Names() []string {
	names := make([]string, len(s.gates))
	for i, g := range s.gates {
		names[i] = g.Name()
	}
	return names
}

// Evaluate runs the gates. If all pass it returns a receipt for the
// proposal; otherwise a [Denials] error.
func (s *GateSet[C, P]) Evaluate(ctx C, proposal P) (*Receipt[P], error) {
	var denials Denials
	passed := make([]string, 0, len(s.gates))
	for _, g := range s.gates {
		d := g.Check(ctx, proposal)
		if d == nil {
			passed = append(passed, g.Name())
			continue
		}
		named := *d // a copy: the gate may return a shared denial
		named.Gate = g.Name()
		denials = append(denials, &named)
		if s.mode == FailFast {
			break
		}
	}
	if len(denials) > 0 {
		return nil, denials
	}
	return &Receipt[P]{proposal: proposal, audit: Audit{Gates: passed}, valid: true}, nil
}

// Receipt proves that a proposal passed its gates (or was bypassed on
// record). Only a GateSet or a Pipeline can make a usable one, and it
// commits at most once.
type Receipt[P any] struct {
	proposal P
	audit    Audit
	valid    bool
	used     atomic.Bool
}

// Proposal returns the proposal the receipt was issued for.
func (r *Receipt[P]) Proposal() P { return r.proposal }

// Audit returns what the receipt records: the gates passed, or the bypass.
func (r *Receipt[P]) Audit() Audit { return r.audit }

// Commit runs commit with the proposal and the audit record, once. A
// second call returns [ErrReceiptUsed]; a receipt not made by a GateSet
// returns [ErrInvalidReceipt]. If commit fails, the receipt stays used:
// evaluate again to retry, since the world the gates saw may have changed.
func (r *Receipt[P]) Commit(commit func(P, Audit) error) error {
	if r == nil || !r.valid {
		return ErrInvalidReceipt
	}
	if !r.used.CompareAndSwap(false, true) {
		return ErrReceiptUsed
	}
	return commit(r.proposal, r.audit)
}

// Audit is what a commit records about how it was allowed.
type Audit struct {
	Gates  []string // gates that passed (empty for a bypass)
	Bypass *Bypass  // set when the gates were skipped
}

// Bypass records a commit that skipped the gates.
type Bypass struct {
	Reason string
	Actor  string
	At     time.Time
}

// Metadata keys written by [Audit.Metadata].
const (
	MetaGates        = "policy.gates"
	MetaBypassReason = "policy.bypass.reason"
	MetaBypassActor  = "policy.bypass.actor"
	MetaBypassAt     = "policy.bypass.at"
)

// Metadata renders the audit as event metadata, so it is stored (and
// hashed) with every committed event.
func (a Audit) Metadata() map[string]string {
	m := make(map[string]string, 3)
	if a.Bypass != nil {
		m[MetaBypassReason] = a.Bypass.Reason
		m[MetaBypassActor] = a.Bypass.Actor
		m[MetaBypassAt] = a.Bypass.At.UTC().Format(time.RFC3339Nano)
		return m
	}
	if len(a.Gates) > 0 {
		m[MetaGates] = fmt.Sprint(a.Gates)
	}
	return m
}
