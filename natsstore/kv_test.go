package natsstore_test

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"strings"
	"sync"
	"testing"

	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/projection"
)

// oddNames are entity, scope and projection names with every kind of byte
// that means something to NATS subjects or KV keys.
var oddNames = []string{
	"account:42", "a.b", "a..b", ".", "a*b", "a>b", "*", ">", "%41", "=41", "A", "a", "a b", "a\tb",
	"ünïcödé", "a/b", "a=b", "a-b_c", "\x00\xff", strings.Repeat("x.", 256),
}

func TestKVSnapshots(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("SNAP")
	s := openStore(t, ns, natsstore.WithStream(stream))
	snaps, err := natsstore.NewKVSnapshots(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if _, ok, err := snaps.Load(ctx, coord("none")); ok || err != nil {
		t.Fatalf("Load of a missing snapshot = %v, %v", ok, err)
	}
	// Every name as an entity and as a scope: each coordinate has a
	// snapshot of its own, the same entity in two scopes included.
	var coords []batpak.Coordinate
	for _, e := range oddNames {
		coords = append(coords, batpak.Coordinate{Entity: e, Scope: "s"}, batpak.Coordinate{Entity: "s", Scope: e})
	}
	for i, c := range coords {
		if err := snaps.Save(ctx, aggregate.Snapshot{Coordinate: c, Version: uint64(i + 1), Type: "T", Data: []byte(c.String())}); err != nil {
			t.Fatalf("Save %v: %v", c, err)
		}
	}
	// Another client of the store sees the same snapshots.
	other, err := natsstore.NewKVSnapshots(ctx, openStore(t, ns, natsstore.WithStream(stream)))
	if err != nil {
		t.Fatal(err)
	}
	for i, c := range coords {
		got, ok, err := other.Load(ctx, c)
		if err != nil || !ok || got.Coordinate != c || got.Version != uint64(i+1) || got.Type != "T" || string(got.Data) != c.String() {
			t.Fatalf("Load %v = %+v, %v, %v", c, got, ok, err)
		}
	}

	// An older snapshot never replaces a newer one.
	e := coord("account:42")
	save := func(v uint64) {
		t.Helper()
		if err := snaps.Save(ctx, aggregate.Snapshot{Coordinate: e, Version: v, Type: "T", Data: fmt.Appendf(nil, "v%d", v)}); err != nil {
			t.Fatal(err)
		}
	}
	version := func() uint64 {
		t.Helper()
		got, ok, err := snaps.Load(ctx, e)
		if err != nil || !ok || string(got.Data) != fmt.Sprintf("v%d", got.Version) {
			t.Fatalf("Load = %+v, %v, %v", got, ok, err)
		}
		return got.Version
	}
	save(10)
	save(5)
	if v := version(); v != 10 {
		t.Fatalf("version %d after saving 10 then 5", v)
	}
	save(11)
	if v := version(); v != 11 {
		t.Fatalf("version %d after saving 11", v)
	}

	// Two clients saving every version at once, in shuffled orders: the
	// last version stays.
	const n = 40
	var wg sync.WaitGroup
	for _, ss := range []*natsstore.KVSnapshots{snaps, other} {
		wg.Go(func() {
			for _, v := range rand.Perm(n) {
				if err := ss.Save(ctx, aggregate.Snapshot{Coordinate: coord("race"), Version: uint64(v + 1), Type: "T"}); err != nil {
					t.Error(err)
				}
			}
		})
	}
	wg.Wait()
	if got, ok, err := snaps.Load(ctx, coord("race")); err != nil || !ok || got.Version != n {
		t.Fatalf("after the race: %+v, %v, %v", got, ok, err)
	}
	if err := snaps.Save(ctx, aggregate.Snapshot{Coordinate: coord("")}); err == nil {
		t.Fatal("a snapshot of the empty entity was saved")
	}
	if err := snaps.Save(ctx, aggregate.Snapshot{Coordinate: batpak.Coordinate{Entity: "x"}}); err == nil {
		t.Fatal("a snapshot of the empty scope was saved")
	}
}

func TestKVCheckpoints(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("CKPT")
	s := openStore(t, ns, natsstore.WithStream(stream))
	cps, err := natsstore.NewKVCheckpoints(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	load := func(name string) uint64 {
		t.Helper()
		next, err := cps.Load(ctx, name)
		if err != nil {
			t.Fatal(err)
		}
		return next
	}
	save := func(name string, next uint64) {
		t.Helper()
		if err := cps.Save(ctx, name, next); err != nil {
			t.Fatal(err)
		}
	}
	if got := load("p"); got != 0 {
		t.Fatalf("missing checkpoint = %d", got)
	}
	for i, name := range oddNames {
		save(name, uint64(100+i))
	}
	for i, name := range oddNames {
		if got := load(name); got != uint64(100+i) {
			t.Fatalf("checkpoint of %q = %d, want %d", name, got, 100+i)
		}
	}
	// Never back, except to the start.
	for _, step := range []struct{ save, want uint64 }{{10, 10}, {7, 10}, {10, 10}, {12, 12}, {1, 1}, {5, 5}, {0, 0}} {
		save("p", step.save)
		if got := load("p"); got != step.want {
			t.Fatalf("after saving %d: %d, want %d", step.save, got, step.want)
		}
	}
	// A damaged value is reported, and replaced by the next save.
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	kv, err := js.KeyValue(ctx, stream+"_checkpoints")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "p", []byte("garbage")); err != nil {
		t.Fatal(err)
	}
	if _, err := cps.Load(ctx, "p"); !errors.Is(err, projection.ErrBadCheckpoint) {
		t.Fatalf("Load of a damaged checkpoint = %v", err)
	}
	save("p", 3)
	if got := load("p"); got != 3 {
		t.Fatalf("after replacing the damaged value: %d", got)
	}
	// The bucket name follows WithBucket; a stream name unfit for a bucket
	// needs it.
	if _, err := natsstore.NewKVCheckpoints(ctx, s, natsstore.WithBucket("bad.name")); err == nil {
		t.Fatal("a bucket name with a dot was accepted")
	}
	named, err := natsstore.NewKVCheckpoints(ctx, s, natsstore.WithBucket(stream+"_other"))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := named.Load(ctx, "p"); err != nil || got != 0 {
		t.Fatalf("checkpoint in another bucket = %d, %v", got, err)
	}
}

// TestKVBucketsFollowTheStream: the buckets get the replicas of the
// store's stream.
func TestKVBucketsFollowTheStream(t *testing.T) {
	if testing.Short() {
		t.Skip("starts a cluster")
	}
	ctx := hangContext(t)
	c := startCluster(t, 3)
	stream := uniqueStream("KVR3")
	s, err := natsstore.Open(ctx, c.urls(), patient(t, natsstore.WithStream(stream), natsstore.WithReplicas(3))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := natsstore.NewKVSnapshots(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := natsstore.NewKVCheckpoints(ctx, s); err != nil {
		t.Fatal(err)
	}
	if _, err := natsstore.NewKVLeases(ctx, s, leaseTTL); err != nil {
		t.Fatal(err)
	}
	js, err := jetstream.New(s.Conn())
	if err != nil {
		t.Fatal(err)
	}
	for _, suffix := range []string{"_snapshots", "_checkpoints", "_leases"} {
		kv, err := js.KeyValue(ctx, stream+suffix)
		if err != nil {
			t.Fatal(err)
		}
		st, err := kv.Status(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if cfg := st.Config(); cfg.Replicas != 3 || cfg.Storage != jetstream.FileStorage || st.History() != 1 {
			t.Fatalf("bucket %s: %d replicas, storage %v, history %d", stream+suffix, cfg.Replicas, cfg.Storage, st.History())
		}
	}
}
