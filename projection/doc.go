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
// Several processes may run the same projection: with [WithLeases], exactly
// one of them applies it at a time and another takes over, from the saved
// checkpoint, once the holder stops or dies. [FileLeases] are flock'd files
// (released by the kernel when the process dies); natsstore.KVLeases keep
// leases in a JetStream KV bucket with a TTL. A runner that loses its lease
// stops applying under a context whose cause is [ErrLeaseLost].
//
// [Project] and [Cache] fold a single stream into a value on demand.
package projection
