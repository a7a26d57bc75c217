// Package aggregate runs commands against event-sourced aggregate roots.
//
// A state type folds its own events ([Root.Apply]); a [Command] looks at
// the current state and returns the events to emit. A [Repository] loads
// the state (a snapshot plus the events after it), handles the command and
// appends the events with the expected version; a [GatedRepository] runs
// every proposal through policy gates first. Event types are registered
// once in a [batpak.Registry]: the repository turns values into events and
// records back into values, so user code never switches on kinds.
//
//	repo, err := aggregate.NewRepository[Tally](store, reg, "tallies")
//	res, err := repo.Execute(ctx, "tally:1", Add{N: 3})
//
//	gates := policy.NewGateSet(policy.EvaluateAll,
//		aggregate.CommandGate("cap", func(c Cap, add Add, p aggregate.Proposal[Tally]) *policy.Denial { ... }))
//	repo, err := aggregate.NewGatedRepository(store, reg, "tallies", gates)
//	res, err := repo.Execute(ctx, "tally:1", Cap{Max: 10}, Add{N: 3})
//
// Package aggregatetest tests aggregates given events, when a command,
// then events, a denial or an error.
//
// # Guarantees
//
//   - A repository reads and writes the streams of its scope only: the
//     stream of an entity is (scope, entity), and its snapshots are keyed
//     and checked by that coordinate too, so repositories of two scopes
//     never see each other's events or snapshots.
//   - A command's events are appended atomically with the version its state
//     was loaded at as the expected version. When another writer got there
//     first, the whole cycle (load, handle, gates) runs again on the fresh
//     state, up to [WithMaxRetries] times, then fails with
//     [ErrTooManyConflicts]. Gates therefore always judge the state the
//     events are appended to.
//   - A denial or a command's error appends nothing.
//   - Apply sees every event in its type's current shape: the registry
//     passes payloads written at older schema versions through the type's
//     upcasters (see batpak.Upcast). An event of a kind the registry does
//     not know fails the load with an [*UnknownEventError] (matching
//     [ErrUnknownEvent]): a state folded without it would be wrong.
//   - Apply, the gates and [Result.Events] see every event in the form the
//     registry decodes it, both after a command and on a reload, whether
//     the command returned a value or a pointer; see [Root] and [Command].
//   - The state a command returns equals the state a later Load returns,
//     with or without snapshots, including after an idempotent replay
//     ([IdempotencyKey]), which returns the original receipts and the
//     state the stream holds.
//   - Every event carries the policy audit in its metadata: the gates it
//     passed, or the bypass with its reason, actor and time. Caller
//     metadata cannot set or hide those keys.
//   - [WithSnapshots] refuses, when the repository is built, a state type
//     that a snapshot would not restore ([ErrNotSnapshottable]): one with
//     unexported fields, interface, function or channel fields anywhere
//     inside, unless the type holding them encodes itself
//     (msgpack.CustomEncoder/CustomDecoder, msgpack.Marshaler/Unmarshaler,
//     encoding.BinaryMarshaler/BinaryUnmarshaler or
//     encoding.TextMarshaler/TextUnmarshaler).
//   - With an OpenTelemetry tracer provider ([WithTracerProvider], or the
//     global one), each command is a span (aggregate.execute) with its
//     loads, gate evaluations and saves as children, and the events it
//     appends carry the save's trace context in their metadata
//     ("traceparent"; see package tracing). Without one, nothing is
//     recorded and no metadata is added.
//
// # Caveats
//
//   - Apply receives values of the registered types, not pointers: with a
//     registry of values, a `case *Deposited:` compiles and never fires.
//   - An event type registered in neither form is found when a command
//     emits it ([ErrNotRegistered]), not when the repository is built.
//   - Snapshots are a cache: a missing, damaged or unusable one falls back
//     to a replay, and a failed save is ignored; both are counted
//     ([Repository.SnapshotStats]) and logged ([WithLogger]). A snapshot
//     records the state type's schema version ([WithStateVersion]): one of
//     another version is never loaded, so bump the version when the state
//     changes shape. Fields tagged
//     `msgpack:"-"` are left out of snapshots on purpose, so they are zero
//     after a snapshot load; a type that encodes itself is trusted to
//     round-trip.
//   - A command runs once per attempt: Handle must not have side effects
//     outside the events it returns.
//   - Gates see the proposal's command as the [Command] it is; a gate made
//     with [CommandGate] judges commands of one type and passes the others.
package aggregate
