package aggregate

import (
	"context"
	"reflect"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
)

// Snapshot is an aggregate's state at a version of its stream.
type Snapshot struct {
	// Coordinate is the stream's: snapshots, like streams, are per
	// (scope, entity).
	Coordinate batpak.Coordinate
	Version    uint64
	// Type identifies the state's Go type; a snapshot of another type is
	// ignored, so renaming or replacing a state type falls back to a replay.
	Type string
	Data []byte // msgpack of the state
}

// SnapshotStore keeps the latest snapshot per stream. Load returns
// ok=false when there is none. A repository treats a snapshot as a cache:
// a load error, or a snapshot of another stream or type or past the
// stream's version, makes it replay the stream, and a failed save is
// ignored.
type SnapshotStore interface {
	Load(ctx context.Context, coord batpak.Coordinate) (s Snapshot, ok bool, err error)
	Save(ctx context.Context, s Snapshot) error
}

// loadSnapshot fills state from the latest usable snapshot of coord and
// returns its version; a missing, corrupt or unusable snapshot returns
// ok=false and may leave state half-filled.
func (c *core[S, PS]) loadSnapshot(ctx context.Context, coord batpak.Coordinate, state *S) (uint64, bool) {
	snap, ok, err := c.snapshots.Load(ctx, coord)
	if err != nil || !ok || snap.Coordinate != coord || snap.Type != typeName[S]() {
		return 0, false
	}
	// A snapshot past the stream (of a store since replaced, say) would
	// make every save conflict.
	if snap.Version > c.store.StreamVersion(coord) {
		return 0, false
	}
	if err := msgpack.Unmarshal(snap.Data, state); err != nil {
		return 0, false
	}
	return snap.Version, true
}

// maybeSnapshot saves a snapshot when the save carried the stream across a
// multiple of the snapshot interval. A failed snapshot is not an error:
// the events are saved.
func (c *core[S, PS]) maybeSnapshot(ctx context.Context, coord batpak.Coordinate, state *S, before, after uint64) {
	if c.snapshots == nil || before/c.every == after/c.every {
		return
	}
	data, err := msgpack.Marshal(state)
	if err != nil {
		return
	}
	_ = c.snapshots.Save(ctx, Snapshot{Coordinate: coord, Version: after, Type: typeName[S](), Data: data})
}

func typeName[S any]() string {
	t := reflect.TypeFor[S]()
	return t.PkgPath() + "." + t.Name()
}
