package natsstore_test

import (
	"fmt"
	"testing"
	"time"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/natsstore"
)

// TestClusterReadsFromReplicas: on a 3-node cluster, reads of uncached
// events are direct gets any replica answers, a replica just restarted
// and perhaps still catching up included, and they return every event;
// the index checkpoint lives in a replicated bucket.
func TestClusterReadsFromReplicas(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := startCluster(t, 3)
	stream := uniqueStream("REPLICAS")
	ctx := hangContext(t)
	open := func(urls string) *natsstore.Store {
		t.Helper()
		s, err := natsstore.Open(ctx, urls, patient(t, natsstore.WithStream(stream), natsstore.WithReplicas(3),
			natsstore.WithCacheBytes(0), natsstore.WithIndexCheckpoints(1))...)
		if err != nil {
			t.Fatal(err)
		}
		return s
	}
	a := open(c.urls())
	n := 0
	write := func(count int) {
		t.Helper()
		for range count {
			entity := fmt.Sprintf("r:%d", n%4)
			if _, err := a.Append(ctx, batpak.Coordinate{Entity: entity, Scope: "test"}, one(kOpened, n)); err != nil {
				t.Fatal(err)
			}
			n++
		}
	}
	write(120)
	// A follower misses some events, then comes back and catches up while
	// the reads run.
	leader := c.streamLeader(stream)
	f := (leader + 1) % 3
	c.stop(f)
	write(120)
	c.start(f)
	for deadline := hangDeadline(t); ; time.Sleep(10 * time.Millisecond) {
		if _, err := c.nodeState(f, stream); err == nil {
			break // f has the stream again, perhaps not all of it
		}
		if time.Now().After(deadline) {
			t.Fatal("the restarted node does not recover the stream")
		}
	}
	b := open(fmt.Sprintf("nats://127.0.0.1:%d", c.clientPorts[f]))
	defer b.Close()
	// The checkpoint is restored, or (if the restarted node cannot hand
	// it over yet) read past.
	if st := b.IndexStats(); st.Restored+st.Replayed != uint64(n) {
		t.Fatalf("open: %+v, want %d events", st, n)
	} else {
		t.Logf("open through the restarted node: %+v", st)
	}
	check := func(rec batpak.Record) {
		t.Helper()
		var i int
		if err := msgpack.Unmarshal(rec.Payload, &i); err != nil || rec.Coordinate.Entity != fmt.Sprintf("r:%d", i%4) {
			t.Fatalf("sequence %d: %s with payload %d (%v)", rec.Sequence, rec.Coordinate.Entity, i, err)
		}
	}
	for _, s := range []*natsstore.Store{a, b} {
		got := 0
		for rec, err := range s.ReadAll(ctx, 0) {
			if err != nil {
				t.Fatal(err)
			}
			check(rec)
			got++
		}
		if got != n {
			t.Fatalf("ReadAll: %d events, want %d", got, n)
		}
		for e := range 4 {
			v := uint64(0)
			for rec, err := range s.ReadStream(ctx, batpak.Coordinate{Entity: fmt.Sprintf("r:%d", e), Scope: "test"}, 1) {
				if err != nil {
					t.Fatal(err)
				}
				check(rec)
				if v++; rec.Version != v {
					t.Fatalf("r:%d: version %d after %d", e, rec.Version, v-1)
				}
			}
			if v != uint64(n/4) {
				t.Fatalf("r:%d: %d events, want %d", e, v, n/4)
			}
		}
	}
	if err := a.Close(); err != nil {
		t.Fatal(err)
	}
}
