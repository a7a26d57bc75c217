package aggregate

import (
	"context"
	"reflect"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"
	"go.uber.org/zap"

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
	// StateVersion is the schema version of the state type when the
	// snapshot was taken ([WithStateVersion]); 0, in a snapshot taken
	// before snapshots had versions, stands for 1. A snapshot of another
	// version is ignored and the stream replayed.
	StateVersion uint32
	Data         []byte // msgpack of the state
}

// SnapshotStore keeps the latest snapshot per stream. Load returns
// ok=false when there is none. A repository treats a snapshot as a cache:
// a load error, or a snapshot of another stream, type or state version or
// past the stream's version, makes it replay the stream, and a failed save
// is ignored.
type SnapshotStore interface {
	Load(ctx context.Context, coord batpak.Coordinate) (s Snapshot, ok bool, err error)
	Save(ctx context.Context, s Snapshot) error
}

// SnapshotStats counts what a repository's snapshots did since it was
// made. Every load is a hit or a miss; a miss that found a snapshot it
// could not use is counted once more by its reason.
type SnapshotStats struct {
	Hits   uint64 // loads that started from a snapshot
	Misses uint64 // loads that replayed the whole stream
	// StateVersionMismatches counts snapshots ignored because they were
	// taken of another state version ([WithStateVersion]).
	StateVersionMismatches uint64
	// Unusable counts snapshots ignored for another reason: a failed
	// load, damage, another stream or type, or a version past the stream.
	Unusable   uint64
	Saves      uint64
	SaveErrors uint64
}

type snapshotCounters struct {
	hits, misses, versionMismatches, unusable, saves, saveErrors atomic.Uint64
}

func (c *snapshotCounters) stats() SnapshotStats {
	return SnapshotStats{
		Hits: c.hits.Load(), Misses: c.misses.Load(), StateVersionMismatches: c.versionMismatches.Load(),
		Unusable: c.unusable.Load(), Saves: c.saves.Load(), SaveErrors: c.saveErrors.Load(),
	}
}

// loadSnapshot fills state from the latest usable snapshot of coord and
// returns its version; a missing, corrupt or unusable snapshot returns
// ok=false (logged and counted) and may leave state half-filled.
func (c *core[S, PS]) loadSnapshot(ctx context.Context, coord batpak.Coordinate, state *S) (uint64, bool) {
	snap, ok, err := c.snapshots.Load(ctx, coord)
	reject := func(counter *atomic.Uint64, msg string, fields ...zap.Field) (uint64, bool) {
		counter.Add(1)
		c.snapCount.misses.Add(1)
		c.log.Warn(msg, append(fields, zap.Stringer("stream", coord))...)
		return 0, false
	}
	switch {
	case err != nil:
		return reject(&c.snapCount.unusable, "snapshot load failed; replaying the stream", zap.Error(err))
	case !ok:
		c.snapCount.misses.Add(1)
		return 0, false
	case snap.Coordinate != coord:
		return reject(&c.snapCount.unusable, "snapshot of another stream; replaying", zap.Stringer("snapshot_stream", snap.Coordinate))
	case snap.Type != typeName[S]():
		return reject(&c.snapCount.unusable, "snapshot of another state type; replaying", zap.String("snapshot_type", snap.Type))
	case max(snap.StateVersion, 1) != c.stateVersion:
		return reject(&c.snapCount.versionMismatches, "snapshot of another state version; replaying the stream",
			zap.Uint32("snapshot_state_version", max(snap.StateVersion, 1)), zap.Uint32("state_version", c.stateVersion))
	case snap.Version > c.store.StreamVersion(coord):
		// A snapshot past the stream (of a store since replaced, say)
		// would make every save conflict.
		return reject(&c.snapCount.unusable, "snapshot past the stream's version; replaying", zap.Uint64("snapshot_version", snap.Version))
	}
	if err := msgpack.Unmarshal(snap.Data, state); err != nil {
		return reject(&c.snapCount.unusable, "snapshot does not decode; replaying", zap.Error(err))
	}
	c.snapCount.hits.Add(1)
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
	if err == nil {
		err = c.snapshots.Save(ctx, Snapshot{Coordinate: coord, Version: after, Type: typeName[S](), StateVersion: c.stateVersion, Data: data})
	}
	if err != nil {
		c.snapCount.saveErrors.Add(1)
		c.log.Warn("snapshot save failed", zap.Stringer("stream", coord), zap.Error(err))
		return
	}
	c.snapCount.saves.Add(1)
}

func typeName[S any]() string {
	t := reflect.TypeFor[S]()
	return t.PkgPath() + "." + t.Name()
}
