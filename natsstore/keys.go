package natsstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/shred"
)

// The keys of a store's data subjects are the values of its bucket
// "<stream>_keys", one per subject, under "s.<32 hex digits of a hash of
// the subject>", in the key entry format of the embedded store's key files
// (docs/format.md): the subject's AES-256 key or, once forgotten, a
// tombstone. A key is created with Create (the first client wins, the
// others use its key) and replaced by its tombstone with Put; the bucket
// keeps one value per key (History 1), so the server drops the key's
// message when the tombstone arrives. Each client keeps the entries it has
// read and follows the bucket with a watch, so a Forget by another client
// reaches its reads shortly after (CatchUp waits for the watch).
const keysSuffix = "_keys"

// kvKeys is the JetStream store's [shred.KeyStore].
type kvKeys struct {
	kv     jetstream.KeyValue // nil: a read-only store that found no bucket
	bucket string
	watch  jetstream.KeyWatcher
}

var _ shred.KeyStore = (*kvKeys)(nil)

func keyName(s batpak.Subject) string { return "s." + shred.Name(s) }

// openKeys binds the store's keys bucket (creating it, unless the store
// is read-only) and starts following it.
func (s *Store) openKeys(ctx context.Context) error {
	k := &kvKeys{bucket: s.cfg.origin() + keysSuffix}
	s.keys, s.keyring = k, shred.NewKeyring(k, true)
	kv, err := s.ownBucket(ctx, keysSuffix, "data subjects' keys")
	if err != nil || kv == nil {
		return err
	}
	k.kv = kv
	w, err := kv.WatchAll(context.Background(), jetstream.UpdatesOnly())
	if err != nil {
		return fmt.Errorf("natsstore: watch the keys: %w", err)
	}
	k.watch = w
	go func() {
		for e := range w.Updates() {
			if e == nil || e.Operation() != jetstream.KeyValuePut {
				continue
			}
			ent, err := shred.Unmarshal(e.Value())
			if err != nil || keyName(ent.Subject) != e.Key() {
				s.cfg.logger.Error("key entry refused", zap.String("key", e.Key()), zap.Error(err))
				continue
			}
			s.keyring.Learn(ent)
		}
	}()
	return nil
}

func (k *kvKeys) stop() {
	if k != nil && k.watch != nil {
		_ = k.watch.Stop()
	}
}

// Load reads the entry of s.
func (k *kvKeys) Load(ctx context.Context, s batpak.Subject) (*shred.Entry, bool, error) {
	if k.kv == nil {
		// Not a lost key: this read-only store cannot see the keys.
		return nil, false, &batpak.KeyError{Subject: s, Reason: fmt.Sprintf(
			"the keys bucket %s does not exist or is out of reach of this read-only store (a copy reads its origin's)", k.bucket)}
	}
	e, err := k.kv.Get(ctx, keyName(s))
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return nil, false, nil
	}
	if err != nil {
		return nil, false, fmt.Errorf("natsstore: read key of %s: %w", s, err)
	}
	ent, err := shred.Unmarshal(e.Value())
	if err != nil {
		return nil, false, fmt.Errorf("natsstore: key of %s: %w", s, err)
	}
	if ent.Subject != s {
		return nil, false, fmt.Errorf("natsstore: %w: the key of %s holds %s", shred.ErrCorrupt, s, ent.Subject)
	}
	return ent, true, nil
}

// Create stores e unless its subject has an entry.
func (k *kvKeys) Create(ctx context.Context, e *shred.Entry) (*shred.Entry, error) {
	if k.kv == nil {
		return nil, batpak.ErrReadOnly
	}
	_, err := k.kv.Create(ctx, keyName(e.Subject), shred.Marshal(e))
	if err == nil {
		return e, nil
	}
	if !kvConflict(err) {
		return nil, fmt.Errorf("natsstore: store the key of %s: %w", e.Subject, err)
	}
	old, ok, err := k.Load(ctx, e.Subject)
	if err == nil && !ok {
		err = fmt.Errorf("natsstore: the key of %s exists and is gone", e.Subject)
	}
	return old, err
}

// Forget puts the tombstone of s.
func (k *kvKeys) Forget(ctx context.Context, s batpak.Subject) error {
	if k.kv == nil {
		return batpak.ErrReadOnly
	}
	if _, err := k.kv.Put(ctx, keyName(s), shred.Marshal(&shred.Entry{Subject: s, Forgotten: true})); err != nil {
		return fmt.Errorf("natsstore: forget %s: %w", s, err)
	}
	return nil
}

// Forget destroys the key of subject: from when it returns, this client
// reads the subject's events erased ([batpak.Record.Erased]), other
// clients as soon as their watch of the keys bucket delivers the
// tombstone, and an append for the subject fails with
// [batpak.ErrForgotten]. The events and their hashes stay. It is as
// durable as the bucket's storage (file storage and the stream's
// replicas); see docs/erasure.md for what it does not reach, such as the
// server's own files until it compacts them.
func (s *Store) Forget(ctx context.Context, subject batpak.Subject) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	if s.cfg.readOnly {
		return batpak.ErrReadOnly
	}
	return s.keyring.Forget(ctx, subject)
}
