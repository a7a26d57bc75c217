// Package eventstore is batpak's embedded, append-only event store.
//
// A [Store] keeps events in segment files (package segment) in one
// directory. Appends are committed one at a time: a writer goroutine groups
// concurrent requests into one write and one data sync (group commit), and
// a lone appender commits its own request on its goroutine; an event
// becomes visible to readers only once it is durable, and an
// acknowledged append is never lost (see docs/durability.md).
//
// Every event belongs to a stream, named by the entity of its [Coordinate],
// and gets a dense global sequence, a stream version starting at 1 and a
// BLAKE3 hash chained to the previous event of its stream. Reads return
// iter.Seq2[Record, error] streams; [Store.Subscribe] pushes new events
// without ever slowing the writer, and [Store.Cursor] pulls every matching
// event in order, blocking until the next one arrives.
package eventstore
