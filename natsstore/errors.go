package natsstore

import "errors"

var (
	// ErrBatchUnsupported is returned for a request of more than one event
	// (a multi-event Append or an AppendBatch of more than one item) when
	// the stream does not accept JetStream atomic batch publish: a server
	// older than 2.12, or a store opened with WithAtomicBatches(false).
	// Such a request cannot be made atomic, so it is refused whole; send
	// its events one by one if atomicity does not matter.
	ErrBatchUnsupported = errors.New("natsstore: atomic multi-event appends need JetStream atomic batch publish (nats-server 2.12 or later)")
	// ErrInvalidMessage reports a message in the stream that is not a
	// batpak event or that breaks the log's invariants (a removed message,
	// a version out of order, a broken hash link). The store stops indexing
	// at the first one: reads see what came before, appends fail.
	ErrInvalidMessage = errors.New("natsstore: invalid message in the stream")
	// ErrUnavailable is returned when the outcome of an append is unknown:
	// it could not be settled within the store's timeout (no server, no
	// stream leader, no quorum), or the store closed while it was open.
	// The append may or may not have been committed: send it again with the
	// same idempotency key to find out without writing it twice. Every
	// other error of an append means that nothing was written.
	ErrUnavailable = errors.New("natsstore: JetStream unavailable; the outcome of the append is unknown")
	// ErrInsecureURL is returned by Open for a URL that would send
	// credentials and events in clear text to a host other than this
	// machine; use tls:// or wss://, pass WithTLS, or opt out with
	// WithInsecure.
	ErrInsecureURL = errors.New("natsstore: refusing a clear-text connection to a remote host")
	// ErrStreamConfig is matched by the [*ConfigError]s Open returns for an
	// existing stream whose configuration could remove events (limits, a
	// retention other than limits, message TTLs), acknowledges less than
	// the caller asked for (memory storage, fewer replicas, asynchronous
	// persistence) or cannot take appends (a mirror, a sealed stream).
	ErrStreamConfig = errors.New("natsstore: the stream's configuration does not fit the store")
)
