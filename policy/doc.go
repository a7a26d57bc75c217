// Package policy decides whether a proposed change may be committed.
//
// A [Gate] checks a proposal against a caller-defined context and returns
// nil or a [*Denial]. A [GateSet] evaluates its gates fail-fast or
// collecting every denial; when they all pass it issues a [Receipt], which
// only a GateSet can make and which commits at most once. A [Pipeline]
// wires evaluation to a commit function, and [Pipeline.Bypass] commits
// without the gates but with a reason and an actor that travel with the
// committed events ([Audit.Metadata]), so every bypass is visible when the
// log is read later. Denials are returned to the caller, never written to
// the log.
package policy
