// Package batpak is the contract of batpak's event stores: the [Store]
// interface every backend implements, the events and records it keeps,
// the coordinates that name streams, expected versions, append and read
// options, and the errors every backend returns. Start here.
//
// Three backends implement [Store] as they are, and the conformance suite
// (package eventstore/storetest) checks each of them:
//
//   - package eventstore: embedded, append-only segment files in one
//     directory; an append returns once it is on disk (fdatasync).
//   - package natsstore: NATS JetStream, for more than one machine.
//   - package memstore: in memory, for unit tests and examples.
//
// Aggregates (package aggregate), projections (package projection) and the
// causal graph (package causal) take a Store and run on any of them.
//
// # Guarantees
//
// Every backend gives these; package eventstore/storetest tests them:
//
//   - A stream is its whole [Coordinate]: Scope and Entity. The same entity
//     in two scopes is two streams, with their own versions, reads and
//     expected-version checks, and an idempotency key belongs to one scope.
//   - Every event gets a global sequence, dense and increasing from 1, and
//     a stream version, dense and increasing from 1 within its stream.
//     Reads see events in that order.
//   - An append is atomic: all of its events are stored, or none. So is an
//     AppendBatch across streams. A refused append ([ErrVersionConflict],
//     a bad argument) stores nothing.
//   - An expected version ([ExpectVersion] with [NoStream], [StreamExists]
//     or [Exactly]) is checked against the stream as the append commits:
//     of two appends expecting the same version, one fails with a
//     [*VersionConflictError] that carries the stream's actual version.
//   - An append with an idempotency key ([WithIdempotencyKey]) that was
//     already committed stores nothing and returns the original receipts.
//   - Once an append returns, every read, cursor and query sees its
//     events; a [Cursor] yields every matching event exactly once, in
//     order, and waits for the next.
//   - Each stream's events are chained by hashes over their content, so a
//     changed or missing event is detected (VerifyChain where a backend
//     offers it; [*ChainError]).
//   - Reads take a context and end with its error once it is done.
//   - Event types have stable names ([Register]); a store keeps a catalog
//     of the names it has seen ([Store.EventTypes]), records carry their
//     kind's name ([Record.Type]), and an append that would rename a kind
//     or move a name to another kind is refused ([ErrTypeConflict]).
//   - Every event records its payload's schema version and codec
//     ([MetaSchema], [MetaCodec]; [ParseSchema]); [Registry.Decode] runs a
//     payload written at an older version through the type's upcasters
//     ([Upcast]), so every read path that decodes through a registry
//     (aggregates, projections, the caller's own) sees the current shape,
//     and refuses ([ErrSchema]) what a later release wrote rather than
//     misread it.
//   - An event that names a data subject ([Event.Subject], [Personal]) is
//     stored with its payload sealed by the subject's key (AES-256-GCM),
//     which is durable before the event is; readers get it opened. After
//     [Store.Forget] the key is gone, durably: the subject's events read
//     erased ([Record.Erased], [Erased]) on every path and after a
//     reopen, appends for the subject fail ([ErrForgotten]), and hash
//     chains still verify (they cover the sealed bytes). A lost key is
//     damage ([*KeyError], matching [ErrCorrupt]), never an erasure.
//   - Bad input gets a typed error matched with errors.Is ([ErrInvalidCoordinate],
//     [ErrInvalidExpectedVersion], [ErrInvalidIdempotencyKey],
//     [ErrInvalidMetadata], [ErrReservedKind], [ErrPayloadTooLarge],
//     [ErrEmptyAppend]) and stores nothing.
//
// # Caveats
//
//   - What "durable" means is the backend's: eventstore syncs to its disk
//     before an append returns (unless configured otherwise), natsstore is
//     as durable as the JetStream servers' storage and sync settings,
//     memstore keeps nothing after the process ends.
//   - A [Subscription] drops events when its channel is full (and counts
//     them); use a Cursor when every event matters.
//   - Payloads are msgpack unless a type's codec says otherwise
//     ([WithCodec], [JSON]): a field a type does not export is not stored.
//   - Forget erases what is in the store, not copies of it elsewhere (read
//     models built before, backups, logs), nor personal data outside a
//     sealed payload (stream names, metadata); docs/erasure.md has the
//     whole list.
//   - Decoding is lenient unless a type asks for [Strict] decoding: a field
//     the payload lacks stays zero, one the type lacks is skipped.
//   - Only events built by [Registry.Event] (as aggregates build them)
//     record a schema version; an Event built by hand carries none and
//     reads as version 1. Metadata keys starting with "batpak." are the
//     library's: an append that sets any but [MetaSchema] and [MetaCodec]
//     is refused ([ErrInvalidMetadata]).
package batpak
