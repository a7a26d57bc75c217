package natsstore

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strconv"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak/projection"
)

// KVDeadLetters is a [projection.DeadLetters] store in a JetStream
// key-value bucket, so that events one runner parked are listed, retried
// or skipped by any process, and a runner that takes over a projection
// (see [KVLeases]) finds them. A runner over [KVCheckpoints] parks in
// their bucket by default; [NewKVDeadLetters] binds to a bucket of its own.
//
// Each parked event is the JSON of its [projection.DeadLetter] under the
// key "<projection>.<sequence>", the name escaped as a key token. Park
// writes the whole record, so a later Park of the same event replaces it;
// Resolve changes a record with its revision (compare and set), so a
// resolution never undoes a Park that came in between, and is not lost
// to one either.
type KVDeadLetters struct {
	kv jetstream.KeyValue
}

var _ projection.DeadLetters = (*KVDeadLetters)(nil)

// NewKVDeadLetters binds to the dead-letter bucket of s ("<stream>_deadletters"
// unless [WithBucket] names another), creating it if needed with file
// storage and the replicas of s's stream.
func NewKVDeadLetters(ctx context.Context, s *Store, opts ...KVOption) (*KVDeadLetters, error) {
	kv, err := s.openBucket(ctx, "_deadletters", "parked events of projections", opts)
	if err != nil {
		return nil, err
	}
	return &KVDeadLetters{kv: kv}, nil
}

func (k *KVDeadLetters) key(name string, seq uint64) (string, error) {
	p, err := escapeKey(name)
	if err != nil {
		return "", err
	}
	return p + "." + strconv.FormatUint(seq, 10), nil
}

// Park adds d, or replaces the record of the same projection and sequence.
func (k *KVDeadLetters) Park(ctx context.Context, d projection.DeadLetter) error {
	key, err := k.key(d.Projection, d.Sequence)
	if err != nil {
		return err
	}
	val, err := json.Marshal(d)
	if err != nil {
		return err
	}
	if _, err := k.kv.Put(ctx, key, val); err != nil {
		return fmt.Errorf("natsstore: park %s #%d: %w", d.Projection, d.Sequence, err)
	}
	return nil
}

// Parked returns the parked events of the projection name, in sequence
// order.
func (k *KVDeadLetters) Parked(ctx context.Context, name string) ([]projection.DeadLetter, error) {
	p, err := escapeKey(name)
	if err != nil {
		return nil, err
	}
	keys, err := k.kv.ListKeysFiltered(ctx, p+".*")
	if err != nil {
		return nil, fmt.Errorf("natsstore: list parked events of %s: %w", name, err)
	}
	defer keys.Stop()
	// Every key first: the lister's goroutine blocks until its channel is
	// drained, so a return halfway through would leave it behind.
	var names []string
	for key := range keys.Keys() {
		names = append(names, key)
	}
	var out []projection.DeadLetter
	for _, key := range names {
		d, _, err := k.get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue // removed since it was listed
		}
		if err != nil {
			return nil, err
		}
		out = append(out, d)
	}
	if ctx.Err() != nil {
		return nil, ctx.Err()
	}
	slices.SortFunc(out, func(a, b projection.DeadLetter) int { return cmp.Compare(a.Sequence, b.Sequence) })
	return out, nil
}

// get reads the record under key and its revision.
func (k *KVDeadLetters) get(ctx context.Context, key string) (projection.DeadLetter, uint64, error) {
	var d projection.DeadLetter
	e, err := k.kv.Get(ctx, key)
	if errors.Is(err, jetstream.ErrKeyNotFound) || errors.Is(err, jetstream.ErrKeyDeleted) {
		return d, 0, jetstream.ErrKeyNotFound
	}
	if err != nil {
		return d, 0, fmt.Errorf("natsstore: read parked event %s: %w", key, err)
	}
	if err := json.Unmarshal(e.Value(), &d); err != nil {
		return d, 0, fmt.Errorf("%w: key %s: %v", projection.ErrBadDeadLetters, key, err)
	}
	return d, e.Revision(), nil
}

// Remove drops the parked event seq of name; a missing one is no error.
func (k *KVDeadLetters) Remove(ctx context.Context, name string, seq uint64) error {
	key, err := k.key(name, seq)
	if err != nil {
		return err
	}
	if err := k.kv.Purge(ctx, key); err != nil && !errors.Is(err, jetstream.ErrKeyNotFound) {
		return fmt.Errorf("natsstore: remove parked %s #%d: %w", name, seq, err)
	}
	return nil
}

// Resolve sets the Resolution of the parked event seq of name, or returns
// an error matching [projection.ErrNotParked] when there is none.
func (k *KVDeadLetters) Resolve(ctx context.Context, name string, seq uint64, how projection.Resolution) error {
	if how != projection.ResolveRetry && how != projection.ResolveSkip {
		return fmt.Errorf("%w: %q", projection.ErrBadResolution, how)
	}
	key, err := k.key(name, seq)
	if err != nil {
		return err
	}
	for {
		d, rev, err := k.get(ctx, key)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			return fmt.Errorf("%w: %s #%d", projection.ErrNotParked, name, seq)
		}
		if err != nil {
			return err
		}
		d.Resolution = how
		val, err := json.Marshal(d)
		if err != nil {
			return err
		}
		if _, err = k.kv.Update(ctx, key, val, rev); err == nil {
			return nil
		}
		if !kvConflict(err) || ctx.Err() != nil {
			return fmt.Errorf("natsstore: resolve parked %s #%d: %w", name, seq, err)
		}
		// Parked again in between: resolve the new record.
	}
}
