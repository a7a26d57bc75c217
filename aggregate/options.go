package aggregate

import (
	"github.com/google/uuid"
	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"
	"go.uber.org/zap"
)

// Option configures a repository ([NewRepository], [NewGatedRepository]).
type Option func(*config)

type config struct {
	snapshots    SnapshotStore
	every        uint64
	stateVersion uint32
	maxRetries   int
	tp           trace.TracerProvider
	log          *zap.Logger
}

func newConfig(opts []Option) config {
	c := config{maxRetries: 10, stateVersion: 1, log: zap.NewNop()}
	for _, o := range opts {
		o(&c)
	}
	if c.tp == nil {
		c.tp = otel.GetTracerProvider()
	}
	return c
}

// WithSnapshots saves a snapshot of an aggregate to store each time a
// command's events carry its stream across a multiple of every events (0
// or less: after every command), and loads from the latest snapshot plus
// the events after it. The constructor refuses a state type that a
// snapshot would not restore as it was ([ErrNotSnapshottable]).
func WithSnapshots(store SnapshotStore, every int) Option {
	return func(c *config) { c.snapshots, c.every = store, uint64(max(every, 1)) }
}

// WithStateVersion sets the schema version of the state type (default
// 1). Snapshots record it; a snapshot of another version is not loaded
// but counted ([SnapshotStats].StateVersionMismatches), logged, and the
// stream replayed, so bump it whenever the state type changes in a way an
// old snapshot would not restore correctly (a field renamed, a meaning
// changed). The next save writes a snapshot of the new version.
func WithStateVersion(v uint32) Option {
	return func(c *config) { c.stateVersion = max(v, 1) }
}

// WithLogger logs what the repository does not return as an error: a
// snapshot it could not use (and why), a snapshot save that failed.
// Default: no logging.
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.log = l } }

// WithMaxRetries bounds the load-handle-save cycles of one command when
// other writers keep changing the stream (default 10; at least 1).
func WithMaxRetries(n int) Option {
	return func(c *config) { c.maxRetries = max(n, 1) }
}

// WithTracerProvider sets the provider of the repository's spans and of
// its gates' (default: the global one, otel.GetTracerProvider, a no-op
// until the program installs one). See package tracing.
func WithTracerProvider(tp trace.TracerProvider) Option {
	return func(c *config) { c.tp = tp }
}

// ExecOption configures one Execute or Bypass.
type ExecOption func(*execConfig)

type execConfig struct {
	causation   uuid.UUID
	correlation uuid.UUID
	key         string
	meta        map[string]string
}

// CausedBy records that the command's events were caused by event id; they
// join id's correlation group.
func CausedBy(id uuid.UUID) ExecOption { return func(c *execConfig) { c.causation = id } }

// CorrelatedWith puts the command's events in correlation group id.
func CorrelatedWith(id uuid.UUID) ExecOption { return func(c *execConfig) { c.correlation = id } }

// IdempotencyKey makes the save idempotent: a retried command with the same
// key returns the original receipts, and the state the stream holds.
func IdempotencyKey(key string) ExecOption { return func(c *execConfig) { c.key = key } }

// WithMetadata adds metadata to every emitted event. Keys starting with
// "policy." are reserved for the policy audit and are dropped.
func WithMetadata(kv map[string]string) ExecOption {
	return func(c *execConfig) { c.meta = kv }
}
