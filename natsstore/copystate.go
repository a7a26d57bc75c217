package natsstore

import (
	"context"
	"errors"
	"fmt"
	"maps"
	"slices"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/shred"
	"github.com/batpak-go/batpak/internal/typecat"
	"github.com/batpak-go/batpak/kind"
)

// copyState copies what a store keeps beside its stream, from the
// buckets of the stream named from to those of dst: the catalog of type
// names (merged: a conflict fails the copy) and every subject's key or
// tombstone (a tombstone wins over a key the destination has, so a Forget
// made on the source between two runs holds in the copy). It runs before
// the events are copied, so no sealed event arrives without its key.
func copyState(ctx context.Context, js jetstream.JetStream, from string, dst *Store) error {
	if kv, err := js.KeyValue(ctx, from+catalogSuffix); err == nil {
		e, err := kv.Get(ctx, catalogKey)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
		case err != nil:
			return fmt.Errorf("natsstore: copy: source catalog: %w", err)
		default:
			cat, err := typecat.Unmarshal(e.Value())
			if err != nil {
				return fmt.Errorf("natsstore: copy: source catalog: %w", err)
			}
			m := cat.Map()
			events := make([]batpak.Event, 0, len(m))
			for _, k := range slices.Sorted(maps.Keys(m)) {
				events = append(events, batpak.Event{Kind: kind.Kind(k), Type: m[k]})
			}
			if err := dst.recordTypes(ctx, events); err != nil {
				return fmt.Errorf("natsstore: copy: catalog: %w", err)
			}
		}
	} else if !errors.Is(err, jetstream.ErrBucketNotFound) {
		return fmt.Errorf("natsstore: copy: source catalog: %w", err)
	}
	kv, err := js.KeyValue(ctx, from+keysSuffix)
	if errors.Is(err, jetstream.ErrBucketNotFound) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("natsstore: copy: source keys: %w", err)
	}
	keys, err := kv.ListKeys(ctx)
	if err != nil {
		return fmt.Errorf("natsstore: copy: source keys: %w", err)
	}
	defer func() { _ = keys.Stop() }()
	for name := range keys.Keys() {
		e, err := kv.Get(ctx, name)
		if errors.Is(err, jetstream.ErrKeyNotFound) {
			continue
		}
		if err != nil {
			return fmt.Errorf("natsstore: copy: key %s: %w", name, err)
		}
		ent, err := shred.Unmarshal(e.Value())
		if err == nil && keyName(ent.Subject) != name {
			err = fmt.Errorf("%w: it holds the key of %s", shred.ErrCorrupt, ent.Subject)
		}
		if err != nil {
			return fmt.Errorf("natsstore: copy: key %s: %w", name, err)
		}
		if ent.Forgotten {
			err = dst.keys.Forget(ctx, ent.Subject)
		} else {
			_, err = dst.keys.Create(ctx, ent)
		}
		if err != nil {
			return fmt.Errorf("natsstore: copy: %w", err)
		}
	}
	return nil
}
