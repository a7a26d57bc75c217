// Package policy decides whether a proposed change may be committed, and
// records how it was allowed.
//
// A [Gate] checks a proposal against a caller-defined context and returns
// nil or a [*Denial]. A [GateSet] evaluates its gates; when they all pass
// it issues a [Receipt]. A [Pipeline] wires evaluation to a commit
// function, and [Pipeline.Bypass] commits without the gates but on record.
//
// Guarantees:
//
//   - A GateSet runs its gates in order, stopping at the first denial
//     ([FailFast]) or running every one ([EvaluateAll]), and returns a
//     receipt or the [Denials], never both. Every denial names the gate
//     that made it, whatever the gate itself put in Denial.Gate.
//   - Only a GateSet or a Pipeline makes a usable receipt (its fields are
//     unexported), and a receipt commits at most once, even when Commit is
//     called concurrently: a second commit returns [ErrReceiptUsed].
//   - A Pipeline commits only proposals that passed every gate, or bypasses
//     that carry a reason and an actor ([ErrBypassUnjustified] otherwise).
//     The commit function receives an [Audit]: the gates passed, or the
//     bypass with its reason, actor and time. [Audit.Metadata] renders it
//     as event metadata, so every bypass is visible when the log is read.
//   - Denials are returned to the caller, never written to the log.
//   - When the context of [Pipeline.Submit] is in an OpenTelemetry trace,
//     the evaluation is a span of it (policy.evaluate) naming the gates
//     that passed and those that denied; a bypass is an event on the
//     context's span. See package tracing.
//
// Caveats:
//
//   - Gates judge the proposal at one moment; nothing stops the world from
//     changing before the commit. A receipt whose commit failed stays used:
//     evaluate again to retry (the aggregate repository does, on every
//     retry).
//   - Every gate sees the same proposal value: a gate must not modify it.
//   - A gate that does not concern a proposal passes it, and is listed in
//     the audit among the gates passed.
//   - The audit reaches the log only if the commit function stores it.
package policy
