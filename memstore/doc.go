// Package memstore is batpak's in-memory event store: the reference
// implementation of [batpak.Store], small enough to read in one sitting,
// for unit tests and examples.
//
// # Guarantees
//
// A [Store] keeps every promise of the [batpak.Store] contract except
// durability:
//
//   - Nothing is durable. The events live in the process's memory and are
//     gone with the Store or the process; there is no file, no reopen.
//   - Streams are named by their whole coordinate: the same entity in two
//     scopes is two streams, with their own versions, expected-version
//     checks and reads. Idempotency keys belong to a scope (the append's,
//     or a batch's first item's).
//   - Appends are atomic, batches across streams included: every event is
//     stored or none is. One lock orders them, so global sequences are
//     dense from 1 and stream versions count from 1 without gaps; a
//     refused append (a version conflict, a bad argument, a cancelled
//     context) changes nothing and does not use its idempotency key up.
//   - An appended event is visible to every reader when Append returns.
//   - Records are built as the embedded store (package eventstore) builds
//     them: msgpack payloads, UUIDv7 ids from the store's clock that sort
//     like sequences, timestamps in microseconds, the same correlation and
//     causation rules, and the same BLAKE3 hash chain per stream, so a
//     record's hash here is the hash the embedded store gives the same
//     event.
//   - Reads yield a copy of each record; changing it does not change the
//     store. A read iterates the log as it was when the read began.
//   - Cursors yield every matching event once, in order, and wait for the
//     next; subscriptions are lossy and never slow an append.
//
// Beyond the contract it offers what the causal graph (package causal)
// and projection runners (package projection) read: [Store.Correlated],
// [Store.CausedBy], [Store.Replay] and [Store.Follow], and, for code
// written against stores that have them, [Store.VerifyChain] and
// [Store.Sync].
//
// # Caveats
//
//   - Memory grows with every event and is never given back before the
//     Store is dropped: there is no deletion, compaction or limit.
//   - One lock serialises appends, and a cursor's or query's scan of the
//     log is linear in its length: fine for tests, not a database.
//   - A closed Store stays closed: every later call fails with
//     [batpak.ErrClosed], and there is no reopening it. To start over, make
//     a new one.
package memstore
