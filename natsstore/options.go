package natsstore

import (
	"crypto/tls"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"
)

// Option configures [Open] and [OpenConn].
type Option func(*config)

type config struct {
	stream      string
	prefix      string
	replicas    int
	storage     jetstream.StorageType
	duplicates  time.Duration
	maxPayload  int
	maxBatch    int
	cacheBytes  int64
	atomic      bool
	clock       func() time.Time
	timeout     time.Duration
	ackWait     time.Duration
	logger      *zap.Logger
	natsOpts    []nats.Option
	tlsConfig   *tls.Config
	credentials string
	nkeySeed    string
	insecure    bool
	readOnly    bool // OpenReadOnly: bind to the stream as it is, refuse appends
	// originStream names the stream whose store a read-only copy holds
	// (empty: the store's own stream); its buckets hold the catalog.
	originStream string
	ck           checkpointConfig
}

// Defaults.
const (
	// DefaultStream is the JetStream stream name of a store.
	DefaultStream = "BATPAK"
	// DefaultDuplicateWindow is the stream's Duplicates window: the server
	// deduplicates a repeated Nats-Msg-Id within it. Idempotency keys
	// stay effective after it through the client's index (see the package
	// documentation).
	DefaultDuplicateWindow = 2 * time.Minute
	// DefaultMaxBatch is the most events in one atomic request: the
	// server's default max_batch_size for atomic batch publish.
	DefaultMaxBatch = 1000
	// DefaultCacheBytes bounds the payloads and metadata the client keeps
	// in memory.
	DefaultCacheBytes = 64 << 20
)

// origin returns the name of the stream whose store this is: the store's
// own stream, or the origin of a read-only copy. Its buckets hold the
// store's catalog.
func (c *config) origin() string {
	if c.originStream != "" {
		return c.originStream
	}
	return c.stream
}

// newConfig applies opts to the defaults.
func newConfig(opts []Option) config {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	return cfg
}

func defaultConfig() config {
	return config{
		stream:     DefaultStream,
		replicas:   1,
		storage:    jetstream.FileStorage,
		duplicates: DefaultDuplicateWindow,
		maxPayload: 4 << 20,
		maxBatch:   DefaultMaxBatch,
		cacheBytes: DefaultCacheBytes,
		atomic:     true,
		clock:      time.Now,
		timeout:    30 * time.Second,
		ackWait:    5 * time.Second,
		logger:     zap.NewNop(),
	}
}

// WithStream names the JetStream stream that holds the store (default
// "BATPAK"). Its subjects are "<prefix>.<scope>.<entity>" (see
// [WithSubjectPrefix]).
func WithStream(name string) Option { return func(c *config) { c.stream = name } }

// WithSubjectPrefix sets the subject prefix of the store's streams
// (default "batpak.<stream name>"). It must not overlap another stream's
// subjects.
func WithSubjectPrefix(p string) Option { return func(c *config) { c.prefix = p } }

// WithReplicas sets the stream's replication factor when the store creates
// it (default 1; 3 or 5 on a cluster). Open refuses an existing stream
// with fewer replicas ([*ConfigError]); one with more is kept.
func WithReplicas(n int) Option { return func(c *config) { c.replicas = max(n, 1) } }

// WithStorage sets the stream's storage when the store creates it, and
// what Open requires of an existing one (default jetstream.FileStorage).
// With jetstream.MemoryStorage every acknowledged event is lost when the
// servers holding the stream stop: for tests and caches only.
func WithStorage(t jetstream.StorageType) Option { return func(c *config) { c.storage = t } }

// WithDuplicateWindow sets the stream's Duplicates window when the store
// creates it (default 2 minutes).
func WithDuplicateWindow(d time.Duration) Option { return func(c *config) { c.duplicates = d } }

// WithMaxPayload sets the largest encoded payload of one event (default
// 4 MiB, lowered to fit the server's max_payload with room for headers).
func WithMaxPayload(n int) Option { return func(c *config) { c.maxPayload = max(n, 1) } }

// WithMaxBatch sets the most events of one request (default 1000, the
// server's default limit for an atomic batch).
func WithMaxBatch(n int) Option { return func(c *config) { c.maxBatch = max(n, 1) } }

// WithCacheBytes bounds the payloads and metadata kept in memory (default
// 64 MiB). The newest events stay cached; older ones are read from the
// server when asked for. 0 caches nothing; a negative value caches
// everything.
func WithCacheBytes(n int64) Option { return func(c *config) { c.cacheBytes = n } }

// WithAtomicBatches turns the use of JetStream atomic batch publish on or
// off (default on; it needs nats-server 2.12 or later). Off, requests of
// more than one event fail with [ErrBatchUnsupported].
func WithAtomicBatches(on bool) Option { return func(c *config) { c.atomic = on } }

// WithClock sets the clock for event timestamps and ids (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithTimeout bounds one append from its first publish to its outcome,
// retries through leader elections and reconnects included, a read of
// events from the server, and the write of the index checkpoint at Close
// (default 30 s). Open has its own bound ([WithOpenTimeout]).
func WithTimeout(d time.Duration) Option {
	return func(c *config) { c.timeout = max(d, time.Millisecond) }
}

// WithAckWait sets how long one publish waits for the server's
// acknowledgement before the append retries it (default 5 s).
func WithAckWait(d time.Duration) Option {
	return func(c *config) { c.ackWait = max(d, time.Millisecond) }
}

// WithLogger sets the logger (default: no-op).
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.logger = l } }

// WithNATSOptions adds options to the connection [Open] makes (user and
// password, tokens, custom dialers, reconnect settings, ...).
func WithNATSOptions(opts ...nats.Option) Option {
	return func(c *config) { c.natsOpts = append(c.natsOpts, opts...) }
}

// WithTLS makes [Open] connect with TLS using cfg (client certificates,
// private roots, ...).
func WithTLS(cfg *tls.Config) Option { return func(c *config) { c.tlsConfig = cfg } }

// WithCredentials makes [Open] authenticate with a NATS credentials file
// (user JWT and NKey seed).
func WithCredentials(file string) Option { return func(c *config) { c.credentials = file } }

// WithNKeySeed makes [Open] authenticate with the NKey seed in file.
func WithNKeySeed(file string) Option { return func(c *config) { c.nkeySeed = file } }

// WithInsecure allows [Open] to connect without TLS to a host other than
// this machine. Without it such a URL is refused with [ErrInsecureURL]
// unless it is tls:// or wss:// or [WithTLS] is given.
func WithInsecure() Option { return func(c *config) { c.insecure = true } }
