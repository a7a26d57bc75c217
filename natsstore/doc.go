// Package natsstore is the batpak event store on NATS JetStream: a
// [batpak.Store], the contract the embedded store (package eventstore)
// implements too, over a replicated log, for users who outgrow one
// machine. The aggregate, projection, policy and causal packages work on
// it unchanged, and it passes the conformance suite eventstore/storetest.
//
//	s, err := natsstore.Open(ctx, "tls://nats-1:4222,tls://nats-2:4222",
//		natsstore.WithCredentials("app.creds"), natsstore.WithReplicas(3))
//	defer s.Close()
//	rs, err := s.Append(ctx, acct, events, batpak.ExpectVersion(batpak.Exactly(v)))
//
// # Layout
//
// One JetStream stream holds one store (WithStream, default "BATPAK"). A
// batpak stream is a whole coordinate, scope and entity: "user:7" in scope
// "tenantA" and in scope "tenantB" are two streams, with their own
// versions, hash chains, reads and idempotency keys. A stream's events are
// the messages of one subject, "<prefix>.<scope>.<entity>" with the prefix
// "batpak.<stream>" (WithSubjectPrefix); the scope and the entity are each
// written as one subject token: letters, digits and -_:~=+@,!/ stay as
// they are, every other byte ('.', '*', '>', spaces, '%', non-ASCII) as
// %XX. The stream is created with file storage (WithStorage), the replicas
// asked for (WithReplicas), no limits, DenyDelete and DenyPurge, the
// duplicate window (WithDuplicateWindow, default 2 minutes),
// AllowAtomicPublish, and the store format in its metadata,
// "batpak_format": "2".
//
// The format marker guards against events of another layout. Versions
// before format 2 wrote "<prefix>.<entity>" subjects, the scope in a
// header, and keyed a stream by its entity alone, so one entity in two
// scopes shared one stream (format 1, no marker). Open refuses a stream
// that holds messages and has no marker, or another format's, with a
// [*FormatError] (matching [ErrStreamFormat] and [ErrStreamConfig]) that
// says what to do: [CopyValid] copies such a stream's events into a new
// stream of format 2. An empty stream without the marker gets it (or is
// refused if the update is not allowed). OpenReadOnly judges a mirror or
// a sourced copy, which do not carry their origin's metadata, by its
// first message.
//
// Open checks an existing stream against the store's contract and what the
// caller asked for, and refuses it with a [*ConfigError] (matching
// [ErrStreamConfig]) for each setting that does not fit: other storage
// than asked for (memory storage loses every acknowledged event when its
// servers stop), fewer replicas than WithReplicas, persist_mode async
// (acknowledged before written), a retention other than limits, max_age,
// max_msgs, max_bytes or max_msgs_per_subject (the server would remove
// events or refuse appends), message TTLs, schedules or counters, a
// mirror, a sealed stream, or subjects that do not hold "<prefix>.>". The
// settings that only restrict the stream are turned on instead, with a
// logged warning: DenyDelete, DenyPurge (and roll-ups off, since they
// purge) and AllowAtomicPublish. The server never lets deny flags be
// turned off again, and no message is touched, so this is safe on a live
// stream; if the update is not allowed, Open refuses the stream. A stream
// whose first messages were removed (purged, expired: its first sequence
// is past 1) is refused at once with [ErrInvalidMessage]. [CopyValid]
// copies the events of a refused stream into a new, well configured one.
//
// A message's subject names its stream and its data is the event's
// msgpack payload, unchanged. Its headers carry the rest: Batpak-Id
// (UUIDv7), Batpak-Kind (decimal), Batpak-Version, Batpak-Time (unix µs),
// Batpak-Correlation, Batpak-Causation (absent for a root), Batpak-Prev and
// Batpak-Hash (hex), Batpak-Meta (the metadata as a JSON object, absent
// when empty) and, for a request of n > 1 events, Batpak-Request "i/n".
// The first message of a request also carries Nats-Msg-Id (see
// Idempotency), the first message of each stream in a request
// Nats-Expected-Last-Subject-Sequence.
//
// # Order, sequences and versions
//
// The global sequence is the JetStream stream sequence. It is dense: the
// stream denies deletes and purges, and a refused or deduplicated publish
// takes no sequence; only a message that is not an event (see below)
// takes a sequence that no event has. Open refuses a stream with removed
// messages and the index stops at a gap ([ErrInvalidMessage]).
//
// Stream version N is the N-th event on the stream's subject (its scope
// and entity). The client keeps an index of each stream's sequences in the
// JetStream stream, so the version it is at and the sequence of its last
// message (the subject's last sequence) are known without asking the
// server. Every append is conditional: the first message for each stream
// carries Nats-Expected-Last-Subject-Sequence = that last sequence (0 for
// a new stream), also with batpak.Any, because the client writes the
// version and the hash link into the event and they are right only if
// nothing came in between. The expected version itself (NoStream,
// Exactly(n), ...) is checked against the index; when it fails, or the
// server refuses the subject sequence (another client appended), the
// client brings its index to the tip and checks again, so a
// VersionConflictError carries the stream's actual version. Within one
// client, appends to one stream are serialised by a lock, so they never
// conflict with each other at the server.
//
// Each stream's hash chain is the embedded store's (package
// internal/chain: BLAKE3 over the same canonical header bytes, scope and
// entity included, and the payload): a client computes it from the tip in
// its index, which the subject sequence check guarantees is the tip of the
// stream. The index checks every link as it reads the stream; VerifyChain
// recomputes every hash.
//
// # Idempotency
//
// An idempotency key belongs to the scope of the append's stream (of the
// first item's, for AppendBatch), as in every backend: the same key in
// two scopes names two requests. A keyed request's first message carries
// Nats-Msg-Id "k:" + base64url(scope, a NUL byte, key); an unkeyed one
// "e:" + its first event id, so that a publish sent again after a lost
// acknowledgement is dropped by the server instead of stored twice. The
// server remembers message ids for the stream's duplicate window only
// (default 2 minutes). Keys stay effective
// after it through the index, which holds every key of the stream (read
// back from the Nats-Msg-Id headers when the index is built): a key missing
// from an index that is fresh, that is known to hold everything the stream
// stored until less than half a window ago (this client's last acknowledged
// append or catch-up was then), can only have been stored since, so within
// the window of the publish, which the server deduplicates; an index older
// than that is first brought to the stream's tip (one STREAM.INFO request)
// and looked at again. Either way a key committed at any time before, by
// any client, returns its original receipts, and a client appending
// steadily pays no extra round trip for its keys (BenchmarkKeyedAppend:
// 10,400 to 10,600 keyed appends a second against 10,500 to 10,700 unkeyed;
// 4,800 to 5,100 when each keyed append caught up first). Appends racing
// with the same key are resolved by the server's duplicate detection
// (within the window, which is ample for a race: while the first is being
// replicated the server answers the others "in process", and they wait for
// its outcome) or, within one client, by the stream locks. A key committed
// longer than the window ago is never deduplicated by the server, only by
// the index.
//
// # Atomic requests
//
// A multi-event Append and an AppendBatch are one JetStream atomic batch
// (nats-server 2.12 or later): every message carries Nats-Batch-Id and
// Nats-Batch-Sequence, the last one Nats-Batch-Commit: 1; the messages
// before the last are sent without waiting, the commit waits for the
// acknowledgement, which names the last sequence. The server stores all of
// them at consecutive sequences or none. The server allows the expected
// subject sequence only on the first message of a subject in a batch;
// atomicity covers the others. Limits: 1000 messages per batch (the
// server's max_batch_size; WithMaxBatch), 50 batches in flight per stream
// (a client retries when the server says too many), and on a stream with
// one replica on file storage the server stages each batch in a temporary
// file store of its own, which costs about 20 ms per request: 10 to 25 ms
// for 2 events and 25 to 49 ms for 100, against 0.1 ms (default sync) or
// 0.6 to 1.3 ms (sync_always) for one event. Replicated streams stage in
// memory: 0.5 to 2 ms for 2 events, 22 to 29 ms for 100 on a 3-node
// loopback cluster. (BenchmarkAtomicBatch: nats-server 2.15.2 in process,
// three runs of 200 requests on a shared 2-core machine.) Readers never
// see part of a request: the index publishes a request's events together.
// When the stream does not accept atomic publish (an older server, or
// WithAtomicBatches(false)) every request of more than one event fails
// with [ErrBatchUnsupported], since it could not be atomic; single events
// still append.
//
// # Index, reads and delivery
//
// Each client keeps an in-memory index of the stream, built by an ordered
// consumer from sequence 1 when the store opens and kept current by the
// same consumer: sequences, ids, streams (scope and entity) and their
// versions, kinds, timestamps, hashes, idempotency keys, and the
// correlation and causation indexes (rebuilt by this projection of the
// stream, not kept in a KV bucket). It costs about 250 bytes per event plus the cached bodies;
// opening a store reads the whole stream, or only what follows the index
// checkpoint (WithIndexCheckpoints; about 56 bytes per event in an object
// store bucket, written every 65,536 events and at Close): a
// 1,000,000-event stream opens in 0.45 s from the checkpoint against 5.5 s
// reading the whole stream on an idle machine, 1.0 to 2.1 s against 9 to 39
// s on a busy one (BenchmarkOpen and bench -natsstore, one in-process
// server on 2 shared cores). Open has its own time limit (WithOpenTimeout)
// and reports progress (WithOpenProgress). A client's own acknowledged
// appends enter its index straight from the acknowledgement; other clients'
// appends arrive through the consumer, usually within a millisecond.
// Payloads and metadata are cached for the newest events (WithCacheBytes,
// default 64 MiB); older ones are read ahead in batched direct gets that
// any replica answers (the stream allows direct gets; what a replica behind
// the leader lacks is asked of the leader, STREAM.MSG.GET): ReadStream of
// 2,000 uncached events takes 25 to 28 ms against 164 ms with one request
// per event (BenchmarkReadStreamUncached). Replay streams an uncached range
// with an ordered consumer. Get, GetSequence, ReadStream, ReadAll, Query,
// cursors and subscriptions read the index; subscriptions and cursors see
// the events of every client, in stream order. Every read takes the
// caller's context: a read of bodies from the server is bounded by it and
// by WithTimeout, and a read whose context has ended returns or yields the
// context's error, cached events or not.
//
// # Failures, and what a caller may retry
//
// Every publish of a request carries the same Nats-Msg-Id, so the server
// stores the request at most once however often the client sends it. A
// publish waits WithAckWait (default 5 s) for its acknowledgement. An
// answer that leaves the outcome open (a timeout, a lost connection, no
// responders, a leader election, too many batches in flight, or "duplicate
// message id is in process", JetStream error 10158, which a replicated
// stream answers while another publish with the same id is being
// replicated: an earlier attempt of the request, or another client's
// request with the same idempotency key) makes the append bring its index
// to the stream's tip and look the request up: if it (or, for a keyed
// request, any request with its key) is there, the append returns those
// receipts; otherwise it publishes again, until WithTimeout (default 30 s)
// has passed. The caller's ctx bounds the wait for the streams' locks; once
// the first publish is sent the append runs to its outcome. Stats counts
// retries, in-process answers and recovered appends.
//
// So an append ends in one of three ways:
//
//   - Receipts: the request is in the stream, once.
//   - [ErrUnavailable]: the outcome is unknown (also when the store is
//     closed or its index stops while the outcome is open: the error then
//     matches [batpak.ErrClosed] or [ErrInvalidMessage] too). Send the
//     same request again with the same idempotency key: it returns the
//     original receipts if the first one was stored, and writes it
//     otherwise. An unkeyed request sent again may be stored twice; give
//     every request that may be retried a key.
//   - Any other error: nothing was written. An
//     [*batpak.VersionConflictError] may be retried after reloading
//     the stream; [batpak.ErrPayloadTooLarge], [ErrBatchUnsupported],
//     invalid arguments and other refusals by the server ("natsstore:
//     append refused by the server: ...") fail again unless the request or
//     the stream changes.
//
// # Messages that are not events
//
// Anything allowed to publish on the store's subjects can put a message
// into the stream that no batpak client wrote, and the stream denies
// deletes, so it stays. The index skips every message that is not an
// event: one whose subject is not a stream's subject or whose headers do
// not decode as an event, an event that breaks its stream's versions or
// hash chain, and every part of a request cut short. A skipped message
// keeps its sequence (reads, cursors and subscriptions pass over it;
// GetSequence reports it not found), is logged (a warning with its
// sequence, subject and reason) and counted (Stats.Skipped); a skipped
// message on a stream's subject still counts in the subject's sequence,
// which the next append to the stream expects. Opening such a stream
// works as before. [CopyValid] copies the valid events to a new stream
// without them.
//
// Only the store's clients should be allowed to publish on its subjects.
// The least privilege a client needs, for stream S with the default prefix
// (add "$JS.API.STREAM.CREATE.S" and "$JS.API.STREAM.UPDATE.S" for a
// client that creates the stream or lets Open repair its settings; other
// clients need no publish permission on "batpak.S.>" at all):
//
//	publish:   batpak.S.>                        (appends)
//	           $JS.API.STREAM.INFO.S             (Open, catch-up)
//	           $JS.API.CONSUMER.CREATE.S.>       (the index's and Replay's ordered consumers)
//	           $JS.API.CONSUMER.MSG.NEXT.S.>
//	           $JS.API.CONSUMER.INFO.S.>
//	           $JS.API.CONSUMER.DELETE.S.>
//	           $JS.API.STREAM.MSG.GET.S          (reads of uncached events)
//	           $JS.API.DIRECT.GET.S, $JS.API.DIRECT.GET.S.>
//	           $JS.API.STREAM.INFO.KV_S_catalog  (the catalog of event type names)
//	           $JS.API.DIRECT.GET.KV_S_catalog.>
//	           $JS.API.CONSUMER.CREATE.KV_S_catalog.>
//	           $KV.S_catalog.>
//	           $JS.API.STREAM.INFO.KV_S_keys     (the data subjects' keys)
//	           $JS.API.DIRECT.GET.KV_S_keys.>
//	           $JS.API.CONSUMER.CREATE.KV_S_keys.>
//	           $KV.S_keys.>
//	subscribe: _INBOX.>                          (replies)
//
// The buckets "S_catalog" and "S_keys" are created by the first client
// that opens the store (add "$JS.API.STREAM.CREATE.KV_S_catalog" and
// "$JS.API.STREAM.CREATE.KV_S_keys" for it). Whoever may read "S_keys"
// can open every subject's sealed payloads: grant it as narrowly as the
// personal data itself.
// TestLeastPrivilege runs a client with exactly these. The index
// checkpoint (WithIndexCheckpoints) lives in an object store bucket of its
// own, "<stream>_index" by default: a client without access to it opens by
// reading the whole stream; give the clients that should write it access
// to that bucket as well, and no one else write access.
//
// # Durability: what an acknowledgement promises
//
// An append returns once the server has acknowledged it, and what that
// means is the server's configuration. The server acknowledges a publish
// once the stream leader has stored it (one replica) or once a quorum of
// the replicas has the Raft entry and the leader has applied it (three or
// five replicas). "Stored" is:
//
//   - File storage with sync_always ("sync_interval: always" in the
//     server's jetstream block, server.Options.SyncAlways; embedded.Start's
//     default): each write is fsynced before it is acknowledged (with
//     replicas, the Raft log entry on each replica of the quorum). An
//     acknowledged event survives a crash of the process or of the
//     machine, including a power loss, on one replica's disk, or on a
//     quorum's: the embedded store's SyncEveryCommit promise, plus, with
//     3 or 5 replicas, the loss of a minority of machines.
//   - File storage with the default sync_interval (2 minutes): a write
//     reaches the operating system before the acknowledgement but is
//     fsynced up to 2 minutes later. With one replica an acknowledged
//     event survives a crash of the server process, not an OS crash or a
//     power loss (which lose up to the last 2 minutes). With replicas it
//     survives the crash of a minority of processes or machines, but not
//     of a majority at once (a shared power failure), and Jepsen's
//     analysis of NATS 2.12.1 (December 2025,
//     https://jepsen.io/analyses/nats-2.12.1) found acknowledged writes
//     lost, and replicas diverging for good, after a single node's OS
//     crash combined with process pauses or network partitions. Run
//     sync_always where an acknowledgement must mean durable.
//   - Memory storage (WithStorage(jetstream.MemoryStorage) only): an
//     acknowledged event is in the memory of the leader or of a quorum; it
//     is gone when those processes stop.
//
// Jepsen also found acknowledged writes lost when data files were
// truncated or corrupted on a minority of nodes (2.12.1), which fsync does
// not cover. The client cannot see the server's sync setting: Open checks
// what the stream shows (storage, replicas, persist mode; see Layout) and
// the operator must run the servers with sync_always. The embedded store
// (package eventstore) checks its frames with CRCs and recovers on open;
// on JetStream, VerifyChain recomputes every event's hash.
//
// # Connections
//
// Open takes the usual NATS options: credentials files (WithCredentials),
// NKeys (WithNKeySeed), TLS (WithTLS, or tls:// and wss:// URLs) and any
// nats.Option (WithNATSOptions). Nothing goes in clear text to another
// machine by default: a nats:// URL naming a host other than this machine
// makes the client demand TLS before it sends anything, credentials
// included, and a ws:// one is refused ([ErrInsecureURL]); WithInsecure
// allows clear text for networks that are private by other means.
//
// The rule covers every server the client may reach, not only those
// named: a cluster advertises its servers' client addresses, nats.go adds
// them to the connection's pool and reconnects to them with the same
// credentials. A connection with TLS demands it from each of them; a
// clear-text connection (every URL names this machine) is made with
// nats.IgnoreDiscoveredServers, so it reconnects only to the URLs given
// (list every local server), unless WithInsecure allows clear text
// everywhere. OpenConn uses a connection the caller made: it refuses a
// clear-text one whose pool already names another machine, unless
// WithInsecure is given; such a connection should be made with
// nats.IgnoreDiscoveredServers.
//
// # Where it differs from the embedded store
//
//   - A message that is not an event takes a global sequence that no event
//     has, so the sequences of a stream that holds one are not dense.
//   - LastSequence, StreamVersion, Streams and the reads show what this
//     client has indexed: its own appends at once, other clients' appends
//     after the consumer delivers them (CatchUp waits for them). Version
//     checks, idempotency and ordering are decided by the server, so they
//     hold across clients.
//   - OpenReadOnly reads a mirror (the origin's sequences) or a sourced
//     copy (renumbered; everything carried in subjects and headers holds)
//     and refuses appends with batpak.ErrReadOnly.
//   - There is no Sync (durability is the server's setting), no Dir,
//     Repair or Verify of files, and no Compact or DeleteStream: removing
//     messages would break the dense sequences.
//   - A request holds at most 1000 events (the server's batch limit), and
//     multi-event requests need nats-server 2.12 or later.
//   - The largest payload is the server's max_payload (1 MiB by default)
//     less 64 KiB for the headers.
//   - Timestamps and event ids come from each client's clock: ids increase
//     with the sequence within one client only.
//   - Subscriptions count their drops, but there is no store-wide count.
//
// # Beside the store
//
// [NewKVSnapshots] (aggregate snapshots), [NewKVCheckpoints] (projection
// checkpoints, which never move back except to 1, what a rebuild saves) and
// [NewKVLeases] (one active runner per projection, see projection.WithLeases)
// keep their data in KV buckets beside the stream, with the stream's
// replicas; events a projection parked go beside its checkpoints
// ([KVCheckpoints.DeadLetters]) or into a bucket of [NewKVDeadLetters]. [CopyValid] copies the valid events of a stream into a new one.
package natsstore
