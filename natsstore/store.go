package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"
	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/shred"
	"github.com/batpak-go/batpak/internal/subs"
)

var _ batpak.Store = (*Store)(nil)

// Store is a batpak event store kept in one JetStream stream: a
// [batpak.Store], within the limits the package documentation lists. It is
// safe for concurrent use, and several Stores (in one process or many) may
// share one stream.
type Store struct {
	cfg     config
	nc      *nats.Conn
	ownConn bool
	js      jetstream.JetStream
	stream  jetstream.Stream
	prefix  string // subject prefix with its trailing dot
	atomic  bool   // the stream accepts atomic batch publish
	maxPay  int

	ix      *index
	applyMu sync.Mutex // orders publishing to the index and the fan-out
	ids     idSource
	locks   streamLocks

	consumer jetstream.ConsumeContext

	sendMu    sync.RWMutex // Close takes it to stop new appends
	closed    atomic.Bool
	inflight  sync.WaitGroup
	appending atomic.Int64
	stats     struct{ retries, recovered, serverConflicts, inProcess atomic.Uint64 }
	done      chan struct{} // closed by Close

	subs    subs.Set
	ck      *checkpointer  // the index checkpoint (checkpoint.go)
	types   catalog        // event type names (catalog.go)
	keyring *shred.Keyring // data subjects' keys (keys.go)
	keys    *kvKeys
}

// Open connects to the NATS server(s) at urls (comma-separated, as for
// nats.Connect) and opens the store, creating its stream if needed. The
// connection takes the credentials, NKey and TLS options given; a URL that
// names a host other than this machine gets TLS unless [WithInsecure] says
// otherwise. Close closes the connection.
func Open(ctx context.Context, urls string, opts ...Option) (*Store, error) {
	return dialAndOpen(ctx, urls, newConfig(opts), open)
}

// dialAndOpen connects to urls with cfg's connection options and opens the
// store with openFn over a connection the store owns (Close closes it).
func dialAndOpen(ctx context.Context, urls string, cfg config, openFn func(context.Context, *nats.Conn, config) (*Store, error)) (*Store, error) {
	nopts, err := connectOptions(urls, &cfg)
	if err != nil {
		return nil, err
	}
	nc, err := nats.Connect(urls, nopts...)
	if err != nil {
		return nil, fmt.Errorf("natsstore: connect: %w", err)
	}
	s, err := openFn(ctx, nc, cfg)
	if err != nil {
		nc.Close()
		return nil, err
	}
	s.ownConn = true
	return s, nil
}

// OpenConn opens the store over an existing connection, which Close leaves
// open. The connection should reconnect forever (nats.MaxReconnects(-1)).
// Its security is the caller's: OpenConn refuses ([ErrInsecureURL]) a
// clear-text connection whose server pool already names a host other
// than this machine, unless [WithInsecure] is given, but it cannot stop
// the pool from growing later; a clear-text connection to this machine
// should be made with nats.IgnoreDiscoveredServers.
func OpenConn(ctx context.Context, nc *nats.Conn, opts ...Option) (*Store, error) {
	cfg := newConfig(opts)
	if err := checkConnTLS(nc, &cfg); err != nil {
		return nil, err
	}
	return open(ctx, nc, cfg)
}

func open(ctx context.Context, nc *nats.Conn, cfg config) (*Store, error) {
	if err := validStreamName(cfg.stream); err != nil {
		return nil, err
	}
	if cfg.prefix == "" {
		cfg.prefix = "batpak." + cfg.stream
	}
	if err := validSubjectPrefix(cfg.prefix); err != nil {
		return nil, err
	}
	js, err := jetstream.New(nc)
	if err != nil {
		return nil, fmt.Errorf("natsstore: %w", err)
	}
	s := &Store{
		cfg:    cfg,
		nc:     nc,
		js:     js,
		prefix: cfg.prefix + ".",
		ix:     newIndex(cfg.cacheBytes),
		done:   make(chan struct{}),
	}
	s.locks.m = make(map[batpak.Coordinate]*streamLock)
	// Headers take at most a few KiB unless metadata is large; keep 64 KiB
	// of the server's max_payload for them.
	s.maxPay = cfg.maxPayload
	if mp := int(nc.MaxPayload()); mp > 0 {
		s.maxPay = min(s.maxPay, max(mp-64<<10, mp/2))
	}
	ctx, cancel := openContext(ctx, cfg.ck)
	defer cancel()
	if err := s.bindStream(ctx); err != nil {
		return nil, err
	}
	info, err := s.stream.Info(ctx)
	if err != nil {
		return nil, fmt.Errorf("natsstore: stream info: %w", err)
	}
	if err := s.checkState(info.State); err != nil {
		return nil, err
	}
	if err := s.openCatalog(ctx); err != nil {
		return nil, err
	}
	if err := s.openKeys(ctx); err != nil {
		s.types.stop()
		return nil, err
	}
	if err := s.loadIndex(ctx, info); err != nil {
		s.types.stop()
		s.keys.stop()
		return nil, err
	}
	return s, nil
}

// ensureStream creates the store's stream or binds to it. An existing
// stream is refused with a [*FormatError] if it holds events of another
// store format (format.go); otherwise it gets the settings that only
// restrict it (deny delete and purge, atomic batch publish where the
// server supports it, and the format marker if it is empty) and is
// refused with [*ConfigError]s if it could remove events, acknowledges
// less than asked for, or cannot take appends.
func (s *Store) ensureStream(ctx context.Context) error {
	want := jetstream.StreamConfig{
		Name:               s.cfg.stream,
		Description:        "batpak event store",
		Subjects:           []string{s.cfg.prefix + ".>"},
		Retention:          jetstream.LimitsPolicy,
		Storage:            s.cfg.storage,
		Replicas:           s.cfg.replicas,
		Discard:            jetstream.DiscardNew,
		MaxMsgs:            -1,
		MaxBytes:           -1,
		MaxAge:             0,
		MaxMsgsPerSubject:  -1,
		Duplicates:         s.cfg.duplicates,
		DenyDelete:         true,
		DenyPurge:          true,
		AllowAtomicPublish: s.cfg.atomic,
		AllowDirect:        true,
		Metadata:           map[string]string{"batpak": "event store", formatKey: strconv.Itoa(storeFormat)},
	}
	wait := 10 * time.Millisecond
	for {
		str, err := s.js.Stream(ctx, s.cfg.stream)
		if errors.Is(err, jetstream.ErrStreamNotFound) {
			str, err = s.js.CreateStream(ctx, want)
			if errors.Is(err, jetstream.ErrStreamNameAlreadyInUse) {
				continue // created concurrently
			}
		}
		if err != nil {
			if retryableSetup(err) && ctx.Err() == nil {
				sleep(ctx, &wait)
				continue
			}
			return fmt.Errorf("natsstore: stream %s: %w", s.cfg.stream, err)
		}
		if err := s.checkFormat(str.CachedInfo()); err != nil {
			return err
		}
		str, uerr := s.repairConfig(ctx, str)
		if err := s.checkConfig(str.CachedInfo().Config); err != nil {
			return err
		}
		if m := formatMarker(&str.CachedInfo().Config); m != strconv.Itoa(storeFormat) {
			// Empty, and the update that marks it failed: events written
			// now would make the next Open refuse the stream.
			if uerr == nil {
				uerr = errors.New("the server did not keep the stream's metadata (nats-server 2.10 or later does)")
			}
			return &FormatError{Stream: s.cfg.stream, Marker: m, Cause: uerr}
		}
		s.stream = str
		s.atomic = s.cfg.atomic && str.CachedInfo().Config.AllowAtomicPublish
		return nil
	}
}

func covers(subjects []string, want string) bool {
	for _, s := range subjects {
		if s == want {
			return true
		}
	}
	return false
}

// retryableSetup reports errors of a cluster that is still electing leaders.
func retryableSetup(err error) bool {
	var apiErr *jetstream.APIError
	if errors.As(err, &apiErr) {
		switch apiErr.ErrorCode {
		case 10005, 10008, 10009, 10023: // no peers yet, cluster not available, not leader, insufficient resources
			return true
		}
	}
	return errors.Is(err, nats.ErrTimeout) || errors.Is(err, nats.ErrNoResponders) ||
		errors.Is(err, jetstream.ErrJetStreamNotEnabled)
}

// startConsumer starts the ordered consumer that feeds the index from the
// first sequence the index lacks.
func (s *Store) startConsumer(ctx context.Context) error {
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{s.cfg.prefix + ".>"},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		// Removed by the server a minute after the store stops using it.
		InactiveThreshold: time.Minute,
		OptStartSeq:       s.ix.lastSeq() + 1,
		NamePrefix:        "batpak_ix_" + nuid.Next(),
	})
	if err != nil {
		return fmt.Errorf("natsstore: index consumer: %w", err)
	}
	cc, err := cons.Consume(s.onMessage,
		jetstream.PullMaxMessagesWithBytesLimit(1024, 32<<20),
		jetstream.PullExpiry(10*time.Second),
		jetstream.PullHeartbeat(2*time.Second),
		jetstream.ConsumeErrHandler(func(_ jetstream.ConsumeContext, err error) {
			if !s.closed.Load() {
				s.cfg.logger.Warn("index consumer", zap.Error(err))
			}
		}))
	if err != nil {
		return fmt.Errorf("natsstore: index consumer: %w", err)
	}
	s.consumer = cc
	return nil
}

// onMessage indexes one message of the stream and fans the events it
// completes out to the subscribers.
func (s *Store) onMessage(m jetstream.Msg) {
	meta, err := m.Metadata()
	if err != nil {
		s.cfg.logger.Warn("index consumer: message without metadata", zap.Error(err))
		return
	}
	ev, err := decodeMessage(s.prefix, m.Subject(), m.Headers(), m.Data(), meta.Sequence.Stream)
	if err != nil {
		ev = foreignMessage(s.prefix, m.Subject(), meta.Sequence.Stream, err)
	}
	s.applyMu.Lock()
	defer s.applyMu.Unlock()
	evs, err := s.ix.add(ev)
	for _, n := range s.ix.takeSkips() {
		s.cfg.logger.Warn("skipped a message that is not a batpak event", zap.String("stream", s.cfg.stream),
			zap.Uint64("sequence", n.seq), zap.String("subject", n.subject), zap.String("reason", n.reason))
	}
	if err != nil {
		s.cfg.logger.Error("index stopped", zap.Error(err))
		return
	}
	if len(evs) > 0 {
		s.fanOut(evs)
	}
}

// Close stops new appends, waits for those under way, stops the index
// consumer, ends subscriptions and wakes waiting cursors. A second Close
// returns [batpak.ErrClosed].
func (s *Store) Close() error {
	s.sendMu.Lock()
	if s.closed.Load() {
		s.sendMu.Unlock()
		return batpak.ErrClosed
	}
	s.closed.Store(true)
	s.sendMu.Unlock()
	s.inflight.Wait()
	s.ck.close()
	s.types.stop()
	s.keys.stop()
	s.consumer.Stop()
	close(s.done)
	s.subs.CloseAll()
	if s.ownConn {
		s.nc.Close()
	}
	return nil
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return batpak.ErrClosed
	}
	return nil
}

// Conn returns the store's NATS connection.
func (s *Store) Conn() *nats.Conn { return s.nc }

// StreamName returns the name of the store's JetStream stream.
func (s *Store) StreamName() string { return s.cfg.stream }

// AtomicBatches reports whether the stream accepts atomic batch publish,
// that is whether requests of more than one event are possible.
func (s *Store) AtomicBatches() bool { return s.atomic }

// CatchUp waits until this client's index holds every event the stream
// held when CatchUp was called. Appends and reads of this client never
// need it (a client sees its own acknowledged appends); it makes the
// appends of other clients visible, e.g. before a read that must not miss
// them, with the type names those clients recorded and the subjects they
// forgot.
func (s *Store) CatchUp(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if err := s.catchUp(ctx); err != nil {
		if s.closed.Load() {
			return batpak.ErrClosed
		}
		return fmt.Errorf("natsstore: catch up: %w", err)
	}
	// The names of the events caught up with were recorded before them;
	// keys are read again, so a Forget made elsewhere holds here now.
	s.keyring.Refresh()
	return s.types.load(ctx)
}

func timeOf(us int64) time.Time { return time.UnixMicro(us) }
