// Package projection keeps read models up to date from the event log.
//
// A [Projection] names itself, declares the region of events it wants and
// applies records. A [Runner] catches a projection up by replaying history
// with the store's sequential segment scanner (no per-event index lookups),
// then follows new events with a guaranteed cursor, and persists the next
// sequence to apply in a [Checkpoints] store, so a restart resumes where it
// left off. Delivery is at least once: after a crash a projection may see
// the events since its last saved checkpoint again, and can dedupe on
// Record.Sequence. [Runner.Rebuild] starts a projection over.
//
// [Project] and [Cache] fold a single stream into a value on demand.
package projection
