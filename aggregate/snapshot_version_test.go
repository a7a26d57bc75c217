package aggregate_test

import (
	"context"
	"testing"

	"go.uber.org/zap"
	"go.uber.org/zap/zaptest/observer"

	"github.com/batpak-go/batpak/aggregate"
)

// TestSnapshotStateVersion: a snapshot taken of another state version is
// not loaded: the repository replays the stream, says so in its log and
// its stats, and its next save writes a snapshot of its own version,
// which the next load uses. A snapshot without a version is version 1.
func TestSnapshotStateVersion(t *testing.T) {
	ctx := context.Background()
	s := openStore(t)
	snaps := aggregate.NewMemorySnapshots()
	v1, err := aggregate.NewRepository[Account](s, registry(), scope, aggregate.WithSnapshots(snaps, 1))
	if err != nil {
		t.Fatal(err)
	}
	mustExec(t, v1, "a", Open{})
	mustExec(t, v1, "a", Deposit{Amount: 5})
	snap, ok, _ := snaps.Load(ctx, co("a"))
	if !ok || snap.StateVersion != 1 {
		t.Fatalf("snapshot %+v, %v: want state version 1", snap, ok)
	}
	snap.StateVersion = 0 // as taken before snapshots had versions
	if err := snaps.Save(ctx, snap); err != nil {
		t.Fatal(err)
	}
	before := v1.SnapshotStats()
	if _, _, err := v1.Load(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if st := v1.SnapshotStats(); st.Hits != before.Hits+1 || st.StateVersionMismatches != 0 {
		t.Fatalf("an unversioned snapshot is not taken as version 1: %+v", st)
	}

	core, logs := observer.New(zap.WarnLevel)
	v2, err := aggregate.NewRepository[Account](s, registry(), scope,
		aggregate.WithSnapshots(snaps, 1), aggregate.WithStateVersion(2), aggregate.WithLogger(zap.New(core)))
	if err != nil {
		t.Fatal(err)
	}
	st, v, err := v2.Load(ctx, "a")
	if err != nil || v != 2 || st.Balance != 5 || st.Events != 2 {
		t.Fatalf("Load = %+v v%d, %v", st, v, err)
	}
	if got := v2.SnapshotStats(); got.Misses != 1 || got.StateVersionMismatches != 1 || got.Hits != 0 {
		t.Fatalf("stats after a version mismatch: %+v", got)
	}
	if logs.FilterMessageSnippet("state version").Len() != 1 {
		t.Fatalf("the mismatch was not logged: %v", logs.All())
	}
	mustExec(t, v2, "a", Deposit{Amount: 1}) // saves a version 2 snapshot
	if snap, _, _ := snaps.Load(ctx, co("a")); snap.StateVersion != 2 {
		t.Fatalf("the new snapshot has state version %d", snap.StateVersion)
	}
	if _, _, err := v2.Load(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := v2.SnapshotStats(); got.Hits < 1 || got.Saves != 1 {
		t.Fatalf("stats after the new snapshot: %+v", got)
	}
	// The old release now sees a snapshot of another version.
	if _, _, err := v1.Load(ctx, "a"); err != nil {
		t.Fatal(err)
	}
	if got := v1.SnapshotStats(); got.StateVersionMismatches != 1 {
		t.Fatalf("release 1 used a version 2 snapshot: %+v", got)
	}
}
