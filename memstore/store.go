package memstore

import (
	"context"
	"maps"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/chain"
	"github.com/batpak-go/batpak/internal/ids"
	"github.com/batpak-go/batpak/internal/shred"
	"github.com/batpak-go/batpak/internal/typecat"
	"github.com/batpak-go/batpak/kind"
)

var _ batpak.Store = (*Store)(nil)

// Store is an in-memory [batpak.Store]. Make one with [New]; it is safe
// for concurrent use.
type Store struct {
	cfg config

	// closed is set under mu by Close; reads that do not hold mu (an
	// iterator between two events) check it on their own.
	closed atomic.Bool

	// mu protects everything below. Appends, Subscribe, Close and a
	// subscription's Close take it for writing; reads for reading. It is
	// the only lock of the package, and no user code runs under it but
	// the clock (WithClock).
	mu sync.RWMutex
	// log holds every event; log[i] has global sequence i+1. Records are
	// never changed once appended, so a reader may keep a prefix of the
	// slice and read it without the lock while appends grow it.
	log []batpak.Record
	// byID maps an event id to its sequence.
	byID map[uuid.UUID]uint64
	// streams maps a stream, its whole coordinate, to its events.
	streams map[batpak.Coordinate]*stream
	// keys maps a committed idempotency key, with its scope (scopedKey),
	// to the receipts of the append that used it.
	keys map[string][]batpak.Receipt
	// correlated and causedBy map a correlation or causation id to the
	// sequences of the events that carry it (a root not included in its
	// own group), in commit order.
	correlated map[uuid.UUID][]uint64
	causedBy   map[uuid.UUID][]uint64
	// subs are the open subscriptions, offered every new event.
	subs map[*subscription]struct{}
	// appended is closed when events are appended or the store closes,
	// and then replaced (unless closed): cursors wait on it.
	appended chan struct{}
	// types is the catalog of event type names; replaced (never changed)
	// under mu for writing, read without it.
	types atomic.Pointer[typecat.Catalog]
	// keyring seals and opens the payloads of data subjects; it has its own
	// lock.
	keyring *shred.Keyring
	// ids and hasher belong to the appender holding mu for writing.
	ids    ids.Generator
	hasher *chain.Hasher
}

// stream is one stream's events.
type stream struct {
	seqs []uint64 // version v is seqs[v-1]; appended to, never changed
	hash [32]byte // of the newest event
}

// New returns an empty store.
func New(opts ...Option) *Store {
	cfg := defaultConfig()
	for _, opt := range opts {
		opt(&cfg)
	}
	return &Store{
		cfg:        cfg,
		byID:       make(map[uuid.UUID]uint64),
		streams:    make(map[batpak.Coordinate]*stream),
		keys:       make(map[string][]batpak.Receipt),
		correlated: make(map[uuid.UUID][]uint64),
		causedBy:   make(map[uuid.UUID][]uint64),
		subs:       make(map[*subscription]struct{}),
		appended:   make(chan struct{}),
		hasher:     chain.New(),
		keyring:    shred.NewKeyring(shred.NewMemoryKeys(), true),
	}
}

// Close closes every subscription, wakes every waiting cursor and makes
// later calls return [batpak.ErrClosed], a second Close included. The
// events are dropped with the store.
func (s *Store) Close() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return batpak.ErrClosed
	}
	s.closed.Store(true)
	for sub := range s.subs {
		sub.closeLocked()
	}
	close(s.appended)
	return nil
}

// Sync returns nil: there is nothing to make durable. It is here for
// callers written against a store with an explicit durability barrier.
func (s *Store) Sync(ctx context.Context) error { return s.checkRead(ctx) }

// checkRead returns [batpak.ErrClosed] once the store is closed, else
// ctx's error once ctx has ended. It is cheap enough to call before every
// event a read yields.
func (s *Store) checkRead(ctx context.Context) error {
	if s.closed.Load() {
		return batpak.ErrClosed
	}
	select {
	case <-ctx.Done():
		return ctx.Err()
	default:
		return nil
	}
}

// record returns a copy of the event at sequence seq of log. mu need not
// be held: log is a prefix of s.log taken under it.
func (s *Store) record(log []batpak.Record, seq uint64) (batpak.Record, error) {
	return s.clone(&log[seq-1])
}

// clone returns a copy of rec as readers see it, sharing nothing with it
// so no caller can change what the store holds: with its type name from
// the catalog, and its payload opened if a subject's key sealed it (nil
// and Erased once the subject is forgotten).
func (s *Store) clone(rec *batpak.Record) (batpak.Record, error) {
	c := *rec
	c.Payload = slices.Clone(rec.Payload)
	c.Metadata = maps.Clone(rec.Metadata)
	c.Type = s.types.Load().Name(rec.Kind)
	if err := s.keyring.Open(context.Background(), &c); err != nil {
		return batpak.Record{}, err
	}
	return c, nil
}

// Forget destroys the key of subject: the subject's events read erased
// from now on, and appends for it fail with [batpak.ErrForgotten].
func (s *Store) Forget(ctx context.Context, subject batpak.Subject) error {
	if err := s.checkRead(ctx); err != nil {
		return err
	}
	return s.keyring.Forget(ctx, subject)
}

// EventTypes returns the catalog of event type names: the name of every
// kind an append named.
func (s *Store) EventTypes(ctx context.Context) (map[kind.Kind]string, error) {
	if err := s.checkRead(ctx); err != nil {
		return nil, err
	}
	return s.types.Load().Map(), nil
}

// snapshot returns the log as it is now; appends made later do not change
// it.
func (s *Store) snapshot() []batpak.Record {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.log[:len(s.log):len(s.log)]
}
