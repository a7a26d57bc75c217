package natsstore

import (
	"context"
	"errors"
	"fmt"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
)

// KVSnapshots is an [aggregate.SnapshotStore] in a JetStream key-value
// bucket beside the store ("<stream>_snapshots" unless [WithBucket] names
// another), so that snapshots live where the events do, with the same
// replicas, and every client of the store shares them.
//
// A stream's snapshot is the value of one key, "<scope>.<entity>", each
// escaped as a key token (see [escapeKey]): any stream, a whole
// coordinate, has a key of its own, so the same entity in two scopes has
// two snapshots. The value is the msgpack of the [aggregate.Snapshot]. A save never replaces a
// snapshot of a later stream version: it reads the current one and writes
// with its revision (compare and set), so of two clients saving at once
// the later version stays. A snapshot must fit in one message (the
// server's max_payload, 1 MiB by default); a larger one fails to save and
// the aggregate is replayed from its events, as for any failed snapshot.
type KVSnapshots struct {
	kv jetstream.KeyValue
}

var _ aggregate.SnapshotStore = (*KVSnapshots)(nil)

// NewKVSnapshots binds to the snapshot bucket of s, creating it if needed
// with file storage and the replicas of s's stream.
func NewKVSnapshots(ctx context.Context, s *Store, opts ...KVOption) (*KVSnapshots, error) {
	kv, err := s.openBucket(ctx, "_snapshots", "aggregate snapshots", opts)
	if err != nil {
		return nil, err
	}
	return &KVSnapshots{kv: kv}, nil
}

// snapshotKey returns the key of the snapshot of the stream c.
func snapshotKey(c batpak.Coordinate) (string, error) {
	scope, err := escapeKey(c.Scope)
	if err != nil {
		return "", err
	}
	entity, err := escapeKey(c.Entity)
	if err != nil {
		return "", err
	}
	return scope + "." + entity, nil
}

// Load returns the snapshot of the stream coord; ok is false when there
// is none.
func (k *KVSnapshots) Load(ctx context.Context, coord batpak.Coordinate) (aggregate.Snapshot, bool, error) {
	key, err := snapshotKey(coord)
	if err != nil {
		return aggregate.Snapshot{}, false, err
	}
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return aggregate.Snapshot{}, false, nil
	}
	if err != nil {
		return aggregate.Snapshot{}, false, fmt.Errorf("natsstore: load snapshot: %w", err)
	}
	snap, err := decodeSnapshot(e.Value())
	if err != nil {
		return aggregate.Snapshot{}, false, err
	}
	if snap.Coordinate != coord {
		return aggregate.Snapshot{}, false, fmt.Errorf("natsstore: snapshot under the key of %v is of %v", coord, snap.Coordinate)
	}
	return snap, true, nil
}

// Save stores s unless the bucket holds a snapshot of its stream at a
// later version (then it returns nil: the newer one is as good).
func (k *KVSnapshots) Save(ctx context.Context, s aggregate.Snapshot) error {
	key, err := snapshotKey(s.Coordinate)
	if err != nil {
		return err
	}
	body, err := msgpack.Marshal(&s)
	if err != nil {
		return err
	}
	for {
		e, err := k.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			_, err = k.kv.Create(ctx, key, body)
		case err != nil:
		default:
			// A damaged value is replaced.
			if cur, derr := decodeSnapshot(e.Value()); derr == nil && cur.Version > s.Version {
				return nil
			}
			_, err = k.kv.Update(ctx, key, body, e.Revision())
		}
		if err == nil {
			return nil
		}
		if !kvConflict(err) || ctx.Err() != nil {
			return fmt.Errorf("natsstore: save snapshot: %w", err)
		}
		// Another client saved in between: compare with its snapshot.
	}
}

func decodeSnapshot(b []byte) (aggregate.Snapshot, error) {
	var s aggregate.Snapshot
	if err := msgpack.Unmarshal(b, &s); err != nil {
		return aggregate.Snapshot{}, fmt.Errorf("natsstore: damaged snapshot: %w", err)
	}
	return s, nil
}
