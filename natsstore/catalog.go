package natsstore

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/typecat"
	"github.com/batpak-go/batpak/kind"
)

// The catalog of event type names is one value, catalogKey, of the
// store's bucket "<stream>_catalog", in the catalog format of the embedded
// store (docs/format.md). It is replaced with a compare-and-set on its
// revision, so concurrent clients never lose each other's names and a
// kind keeps its first name, a name its first kind. A client follows the
// value with a watch: names that other clients add reach its records
// shortly after (CatchUp reads the value at once).
const (
	catalogSuffix = "_catalog"
	catalogKey    = "types"
)

// catalog is a client's copy of the store's catalog.
type catalog struct {
	kv    jetstream.KeyValue // nil: a read-only store whose origin has none
	cur   atomic.Pointer[typecat.Catalog]
	rev   atomic.Uint64 // revision of cur in the bucket
	mu    sync.Mutex    // one compare-and-set at a time from this client
	watch jetstream.KeyWatcher
}

// openCatalog binds the store's catalog bucket (creating it, unless the
// store is read-only), loads the catalog and starts following it.
func (s *Store) openCatalog(ctx context.Context) error {
	kv, err := s.ownBucket(ctx, catalogSuffix, "event type names")
	if err != nil || kv == nil {
		return err
	}
	s.types.kv = kv
	// A bucket just created in a cluster may have no leader yet to
	// answer: the read is asked again while ctx lasts.
	wait := 10 * time.Millisecond
	for {
		err := s.types.load(ctx)
		if err == nil {
			break
		}
		if !retryableSetup(err) || ctx.Err() != nil {
			return err
		}
		sleep(ctx, &wait)
	}
	// The watch outlives ctx, so it is not created under it; a cluster
	// that is slow to create its consumer is asked again while ctx lasts.
	var w jetstream.KeyWatcher
	wait = 10 * time.Millisecond
	for {
		w, err = kv.Watch(context.Background(), catalogKey, jetstream.UpdatesOnly())
		if err == nil {
			break
		}
		if !(retryableSetup(err) || errors.Is(err, context.DeadlineExceeded)) || ctx.Err() != nil {
			return fmt.Errorf("natsstore: watch the catalog: %w", err)
		}
		sleep(ctx, &wait)
	}
	s.types.watch = w
	go s.types.follow(s.cfg.logger)
	return nil
}

// load reads the catalog from the bucket.
func (c *catalog) load(ctx context.Context) error {
	if c.kv == nil {
		return nil
	}
	e, err := c.kv.Get(ctx, catalogKey)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("natsstore: read the catalog: %w", err)
	}
	return c.set(e)
}

// set takes entry e of the catalog key if it is newer than what c holds.
func (c *catalog) set(e jetstream.KeyValueEntry) error {
	if e.Operation() != jetstream.KeyValuePut {
		return fmt.Errorf("%w: the catalog was deleted from its bucket", typecat.ErrCorrupt)
	}
	cat, err := typecat.Unmarshal(e.Value())
	if err != nil {
		return fmt.Errorf("natsstore: catalog: %w", err)
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	if e.Revision() > c.rev.Load() {
		c.cur.Store(cat)
		c.rev.Store(e.Revision())
	}
	return nil
}

// follow applies the watch's updates until it stops.
func (c *catalog) follow(log *zap.Logger) {
	for e := range c.watch.Updates() {
		if e == nil {
			continue
		}
		if err := c.set(e); err != nil {
			log.Error("catalog update refused", zap.Error(err))
		}
	}
}

// stop ends the watch.
func (c *catalog) stop() {
	if c.watch != nil {
		_ = c.watch.Stop()
	}
}

// record adds the type names of events to the catalog before they are
// published, or returns the conflict that refuses them.
func (s *Store) recordTypes(ctx context.Context, events []batpak.Event) error {
	c := &s.types
	add, err := c.cur.Load().Additions(events)
	if err != nil || len(add) == 0 {
		return err
	}
	if c.kv == nil || s.cfg.readOnly {
		// A read-only store binds the bucket to read it; it never writes
		// a name another store's appends would then have to agree with.
		return batpak.ErrReadOnly
	}
	c.mu.Lock()
	defer c.mu.Unlock()
	for {
		cur, rev := c.cur.Load(), c.rev.Load()
		if add, err = cur.Additions(events); err != nil || len(add) == 0 {
			return err
		}
		next := cur.With(add...)
		var nrev uint64
		if rev == 0 {
			nrev, err = c.kv.Create(ctx, catalogKey, typecat.Marshal(next))
		} else {
			nrev, err = c.kv.Update(ctx, catalogKey, typecat.Marshal(next), rev)
		}
		if err == nil {
			c.cur.Store(next)
			c.rev.Store(nrev)
			return nil
		}
		if !kvConflict(err) {
			return fmt.Errorf("natsstore: record event type names: %w", err)
		}
		// Another client changed the catalog: read it and check again.
		e, gerr := c.kv.Get(ctx, catalogKey)
		if gerr != nil {
			return fmt.Errorf("natsstore: read the catalog: %w", gerr)
		}
		cat, uerr := typecat.Unmarshal(e.Value())
		if uerr != nil {
			return fmt.Errorf("natsstore: catalog: %w", uerr)
		}
		c.cur.Store(cat)
		c.rev.Store(e.Revision())
	}
}

// readable makes a stored record what readers see: with the catalog's type
// name, and its payload opened if a subject's key sealed it, or erased.
func (s *Store) readable(rec batpak.Record) (batpak.Record, error) {
	rec.Type = s.types.cur.Load().Name(rec.Kind)
	if len(rec.Metadata) > 0 {
		if err := s.keyring.Open(context.Background(), &rec); err != nil {
			return batpak.Record{}, err
		}
	}
	return rec, nil
}

// EventTypes returns the catalog of event type names: the name of every
// kind an append named, as this client last read it.
func (s *Store) EventTypes(ctx context.Context) (map[kind.Kind]string, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, err
	}
	return s.types.cur.Load().Map(), nil
}
