package natsstore

import (
	"context"
	"errors"
	"fmt"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak/projection"
)

// KVCheckpoints is a [projection.Checkpoints] store in a JetStream
// key-value bucket beside the store ("<stream>_checkpoints" unless
// [WithBucket] names another), so that runners in any process continue
// where another stopped (see [projection.WithLeases] and [KVLeases]).
//
// A projection's checkpoint is the value of one key, the name escaped as
// a key token, in decimal. A checkpoint never moves back, except to 1 (the
// start, as [projection.Runner.Rebuild] saves it): a save of a smaller
// sequence is dropped. It reads the current value and writes with its
// revision (compare and set), so a late save — from a runner that lost its
// lease, or one the client sent again after a reconnect — cannot undo the
// progress another runner saved since. Every sequence below a checkpoint
// has been applied by some runner, so keeping the larger one is right for
// a read model they share.
//
// On a replicated bucket a read may be served by a replica a little
// behind the leader: a runner taking over may then start from an older
// checkpoint and apply some events again, which the at-least-once
// delivery of projections allows.
//
// A runner parks events beside these checkpoints ([KVCheckpoints.DeadLetters]):
// in the same bucket, under keys "<projection>.<sequence>", which never
// collide with a checkpoint's key (an escaped name holds no dot).
type KVCheckpoints struct {
	kv jetstream.KeyValue
}

var _ projection.Checkpoints = (*KVCheckpoints)(nil)

// DeadLetters returns the parked events kept beside these checkpoints; a
// [projection.Runner] over the checkpoints parks there by default.
func (k *KVCheckpoints) DeadLetters() projection.DeadLetters { return &KVDeadLetters{kv: k.kv} }

// NewKVCheckpoints binds to the checkpoint bucket of s, creating it if
// needed with file storage and the replicas of s's stream.
func NewKVCheckpoints(ctx context.Context, s *Store, opts ...KVOption) (*KVCheckpoints, error) {
	kv, err := s.openBucket(ctx, "_checkpoints", "projection checkpoints", opts)
	if err != nil {
		return nil, err
	}
	return &KVCheckpoints{kv: kv}, nil
}

// Load returns the checkpoint of name: the next sequence it will apply, 0
// when there is none.
func (k *KVCheckpoints) Load(ctx context.Context, name string) (uint64, error) {
	next, _, err := k.load(ctx, name)
	return next, err
}

// load returns the checkpoint of name and its revision (0: none).
func (k *KVCheckpoints) load(ctx context.Context, name string) (next, rev uint64, err error) {
	key, err := escapeKey(name)
	if err != nil {
		return 0, 0, err
	}
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) {
		return 0, 0, nil
	}
	if err != nil {
		return 0, 0, fmt.Errorf("natsstore: load checkpoint: %w", err)
	}
	next, err = strconv.ParseUint(string(e.Value()), 10, 64)
	if err != nil {
		return 0, e.Revision(), fmt.Errorf("%w: %q: %v", projection.ErrBadCheckpoint, e.Value(), err)
	}
	return next, e.Revision(), nil
}

// Save sets the checkpoint of name to next, unless it is already at or
// past next and next is not 1.
func (k *KVCheckpoints) Save(ctx context.Context, name string, next uint64) error {
	key, err := escapeKey(name)
	if err != nil {
		return err
	}
	val := []byte(strconv.FormatUint(next, 10))
	for {
		cur, rev, err := k.load(ctx, name)
		switch {
		case err != nil && !errors.Is(err, projection.ErrBadCheckpoint):
			return err
		case err == nil && rev != 0 && cur >= next && next > 1:
			return nil
		case rev == 0:
			_, err = k.kv.Create(ctx, key, val)
		default: // a damaged value is replaced
			_, err = k.kv.Update(ctx, key, val, rev)
		}
		if err == nil {
			return nil
		}
		if !kvConflict(err) || ctx.Err() != nil {
			return fmt.Errorf("natsstore: save checkpoint %s: %w", name, err)
		}
		// Another runner saved in between: compare with its checkpoint.
	}
}
