// Package projection keeps read models up to date from the event log.
//
// A [Projection] names itself, declares the region of events it wants and
// applies records. A [Runner] catches a projection up by replaying history
// with the store's sequential segment scanner (no per-event index lookups),
// then follows new events with a guaranteed cursor, and persists the next
// sequence to apply in a [Checkpoints] store, so a restart resumes where it
// left off. [Runner.Rebuild] starts a projection over. [Project] and
// [Cache] fold a single stream into a value on demand.
//
// # Guarantees
//
//   - Every event of a projection's region is offered to it in global
//     order, and a restart resumes from the saved checkpoint: delivery is
//     at least once. Package projection/sqlproj makes it exactly once for
//     a read model in a database/sql database, by committing each event
//     with the projection's position.
//   - Projections are isolated: under [Runner.RunAll] a projection that
//     fails stops alone; the others go on. Each failure is reported
//     ([WithOnFailure]) and shows in [Runner.Status].
//   - A failed Apply is tried again with exponential backoff and jitter,
//     as the projection's [Policy] says (by default 5 attempts from 100 ms).
//     If every attempt fails the event is parked: a [DeadLetter] with its
//     sequence, event id, projection, error, attempts and times, kept in
//     [DeadLetters]. Then the projection stops at the event ([Stop], the
//     default: its read model stays a prefix of the log) or goes on past
//     it ([Continue]), per projection ([WithPolicyFor]).
//   - Parked events survive restarts: by default they are kept beside the
//     checkpoints, in [FileCheckpoints]' directory ([FileDeadLetters],
//     written with [vfs.WriteFileAtomic]). They can be listed,
//     retried and skipped from code ([Runner.Parked], [Runner.Retry],
//     [Runner.Skip]) or from another process ("batpak projections"). A
//     projection stopped at a parked event under RunAll starts again from
//     it once it is retried or skipped; a restart retries it too.
//   - [Runner.Status] gives per projection its state, position, lag in
//     events and in time, and how many events it applied, retried and
//     parked.
//   - Several processes may run the same projection: with [WithLeases],
//     exactly one of them applies it at a time and another takes over,
//     from the saved checkpoint, once the holder stops or dies. [FileLeases]
//     are flock'd files (released by the kernel when the process dies);
//     natsstore.KVLeases keep leases in a JetStream KV bucket with a TTL. A
//     runner that loses its lease stops applying under a context whose
//     cause is [ErrLeaseLost].
//   - With an OpenTelemetry tracer provider ([WithTracerProvider], or the
//     global one), applying an event is a span (projection.apply) in the
//     trace the event's metadata names, or in the runner's context's; an
//     event outside any trace, applied outside any, gets no span. See
//     package tracing.
//
// # Caveats
//
//   - At least once means a crash replays the events since the last saved
//     checkpoint ([WithCheckpointEvery]): a projection that is not
//     transactional dedupes on Record.Sequence, or uses sqlproj.
//   - Under [Continue] a parked event is missing from the read model until
//     it is retried, and a retry applies it after later events
//     ([ParkedRetry] tells such an Apply). Choose it for projections whose
//     events do not depend on each other.
//   - Retries hold the projection: while an event waits for its next
//     attempt, nothing after it is applied. The backoff is bounded by
//     Policy.MaxBackoff and Attempts.
//   - A resolution asked for from another process is seen within the
//     [WithResolvePoll] interval under RunAll, and otherwise when the
//     projection next starts.
//   - [MemoryCheckpoints] keep parked events in memory: they die with the
//     process. Checkpoints that offer no dead letters (sqlproj.Positions)
//     need [WithDeadLetters] for durable ones.
//   - Status's lag in time is the age of the newest applied event while
//     the projection is behind: an upper bound of how old the oldest
//     unapplied event is.
package projection
