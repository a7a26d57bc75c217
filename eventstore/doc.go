// Package eventstore is batpak's embedded, append-only event store: a
// [batpak.Store] in one directory.
//
// A [Store] keeps events in segment files (package segment) in one
// directory. Every event belongs to a stream, named by its whole
// [batpak.Coordinate] (scope and entity), and gets a dense global
// sequence, a stream version starting at 1 and a BLAKE3 hash chained to
// the previous event of its stream. Reads take a context and return
// iter.Seq2[batpak.Record, error] streams; [Store.Subscribe] pushes new
// events without ever slowing the writer, and [Store.Cursor] pulls every
// matching event in order, blocking until the next one arrives. Package
// batpak holds the contract (types, options, errors) this package
// implements.
//
// # Guarantees
//
// Where durability is concerned, these hold for the default sync mode,
// [SyncEveryCommit] (see Caveats for the others):
//
//   - An acknowledged append is durable. [Store.Append] and
//     [Store.AppendBatch] return receipts only after the events' frames are
//     written and synced (fdatasync), so they survive a process crash,
//     kill -9 and power loss. An append is atomic: after a crash all of its
//     events are there or none, also for a batch across streams.
//   - One writer, group commit. One process at a time opens a directory for
//     writing (an flock on its LOCK file; a second gets [ErrLocked]). In it,
//     a writer goroutine gathers the concurrent requests into one write and
//     one data sync (waiting, at most half a sync's time, for as many as
//     were in flight lately, up to 16), and a lone appender commits its own
//     request on its goroutine. A request refused by its checks (a version conflict, a bad
//     argument) is answered on its own and never fails the rest of its
//     group. A failed request leaves nothing behind, and an acknowledged
//     sequence or version is never handed out again.
//   - An event is visible only once it is durable: reads, cursors and
//     subscribers see it after the sync, never before.
//   - Damage is never hidden. A checkpoint's watermark and a sealed
//     segment's footer prove that the bytes below them were durable, so
//     acknowledged: [Open] fails closed with [ErrCorrupt] (a
//     *segment.CorruptError naming the segment, file and offset) where such
//     bytes, or any frame of a sealed segment, are damaged or missing,
//     rather than drop events. Only past that
//     durability floor, at the end of the active segment, can a torn tail
//     (a frame the crash cut off, with no valid frame after it) be left from
//     a write that was never acknowledged: it is cut off, logged and counted
//     in Stats().ColdStart.TruncatedBytes. [Repair] (batpak repair) is the
//     explicit way past corruption: it quarantines what it cannot keep and
//     reports exactly what that was.
//   - [OpenReadOnly] opens a directory alongside its writer (or without one):
//     it sees the events durable when it opened and changes nothing on disk.
//     A writer that seals or compacts a segment while it opens makes it
//     start over (up to ten times); it never reads a file cut under it.
//   - Beside the segments, the catalog of event type names ([CatalogFile])
//     and the data subjects' keys ([KeysDir]) are written before the events
//     that need them, each file replaced whole ([vfs.WriteFileAtomic]): a
//     name or key an acknowledged event needs survives any crash, and
//     [Store.Forget] leaves a subject's key or its tombstone, never a mix.
//     [Verify] checks both.
//
// docs/durability.md states the contract in full, with the tests that check
// each part.
//
// # Caveats
//
//   - [SyncInterval] and [SyncNone] acknowledge appends, and make them
//     visible, before they are durable. A process crash loses nothing
//     acknowledged in any mode (the kernel holds the written pages), but a
//     power loss or kernel crash can lose the appends since the last sync:
//     with SyncInterval(n, d) those of the last interval (up to n events or
//     d), with SyncNone everything since the last segment rotation,
//     [Store.Sync] or Close.
//   - Unix only: the directory lock is flock(2) and sealed segments are read
//     through mmap.
//   - The index lives in RAM: about 6 bytes per event (an entry saying
//     where the frame is, its stream, kind and flags, bit-packed once its
//     chunk of 16,384 entries is full: about 2 bytes, 20 before; and 4
//     bytes for its place in its stream's list of sequences), plus about
//     55 bytes per stream (a 40-byte record, an 8-byte table slot, its
//     name; 32 more for its last hash) and each idempotency key. A stream
//     holds at most 4,294,967,295 events ([ErrStreamFull]). Open
//     maps the latest checkpoint and uses its packed chunks, its streams'
//     sequences and last hashes where they lie (mapped, not heap: the
//     kernel pages them), copying a stream's out at its next append, so
//     an open's heap is about 8 bytes per event where it was 16; then it
//     reads what follows the checkpoint. Ids, links and timestamps stay in the frames: [Store.Get]
//     binary searches the frames by id, a time-bounded [Store.Query] reads
//     the frames its other bounds select, and the first causal query after
//     an open ([Store.CausedBy], [Store.Correlated]) reads every frame once
//     to build the causal maps, which then stay in RAM. An open without a
//     usable checkpoint rebuilds from the footers an index that holds every
//     event's ids (about 32 bytes per event); a writable one that rebuilt at
//     least [WithCheckpointEvery] events writes a checkpoint and loads the
//     index from it before it returns.
//   - After a failed data sync the store does not retry (the kernel may have
//     dropped the unsynced pages): it fails the waiting appends and turns
//     read-only until it is reopened, as it does when a segment rotation
//     fails (a full disk, for one). Later appends return [ErrStoreFailed],
//     reads keep working and Stats().Failed says why; reopening recovers
//     from what is really on disk.
//   - Open trusts the CRC-checked checkpoint and footers and does not reread
//     the frames they cover, so a damaged byte inside such data is not found
//     at open: a read of it returns [ErrCorrupt], and [Verify] (batpak
//     verify) and [Store.Scrub] find it without waiting for a read.
package eventstore
