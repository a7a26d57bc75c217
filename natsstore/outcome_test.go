package natsstore_test

import (
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/natsstore"
)

// TestSameKeyRace: two clients (two connections to different nodes of a
// replicated stream) send the same request with the same idempotency key
// at the same moment. The server stages the key's Nats-Msg-Id until the
// first publish is applied and answers the other "duplicate message id is
// in process" (10158) meanwhile. Each append must end with the receipts of
// the one request the stream holds, never with an error.
func TestSameKeyRace(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	c := startCluster(t, 3)
	stream := uniqueStream("SAMEKEY")
	ctx := hangContext(t)
	open := func(node int) *natsstore.Store {
		s, err := natsstore.Open(ctx, c.url(node), patient(t, natsstore.WithStream(stream), natsstore.WithReplicas(3))...)
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = s.Close() })
		return s
	}
	a, b := open(0), open(1)
	const rounds = 60
	for i := range rounds {
		key := fmt.Sprintf("order-%d", i)
		start := make(chan struct{})
		var wg sync.WaitGroup
		var rs [2][]eventstore.Receipt
		var errs [2]error
		for j, s := range []*natsstore.Store{a, b} {
			wg.Go(func() {
				<-start
				rs[j], errs[j] = s.Append(ctx, coord("cart"), one(kOpened, j), eventstore.WithIdempotencyKey(key))
			})
		}
		close(start)
		wg.Wait()
		for j, err := range errs {
			if err != nil {
				t.Fatalf("round %d: client %d: %v (stats a %+v, b %+v)", i, j, err, a.Stats(), b.Stats())
			}
		}
		if !slices.Equal(rs[0], rs[1]) {
			t.Fatalf("round %d: the clients got %+v and %+v", i, rs[0], rs[1])
		}
	}
	if err := a.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := a.LastSequence(); got != rounds {
		t.Fatalf("the stream holds %d events after %d keyed requests", got, rounds)
	}
	t.Logf("stats a %+v, b %+v", a.Stats(), b.Stats())
}

// TestRetryWhileReplicating: the publish of an unkeyed AppendBatch reaches
// the stream leader, which cannot replicate it (the routes are held, as in
// a pause or a partition). The client's retry of the same Nats-Msg-Id is
// answered "in process" (10158). Once the routes carry traffic again the
// first publish commits; the append must return its receipts, and the
// stream must hold the batch once.
func TestRetryWhileReplicating(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	gc := startGatedCluster(t, 3)
	stream := uniqueStream("STALLED")
	ctx := hangContext(t)
	setup, err := natsstore.Open(ctx, gc.urls(), patient(t, natsstore.WithStream(stream), natsstore.WithReplicas(3))...)
	if err != nil {
		t.Fatal(err)
	}
	defer setup.Close()
	leader := -1
	for deadline := hangDeadline(t); leader < 0; leader = gc.streamLeader(stream) {
		if time.Now().After(deadline) {
			t.Fatal("no stream leader")
		}
		time.Sleep(10 * time.Millisecond)
	}
	// The client talks to the leader only, so the partition cuts the
	// leader's replication, not the client's requests.
	s, err := natsstore.Open(ctx, gc.url(leader), patient(t, natsstore.WithStream(stream), natsstore.WithAckWait(300*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Append(ctx, coord("warm"), one(kOpened, 0)); err != nil {
		t.Fatal(err)
	}

	gc.partition()
	healed := false
	defer func() {
		if !healed {
			gc.heal()
		}
	}()
	type result struct {
		rs  []eventstore.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		rs, err := s.AppendBatch(ctx, []eventstore.BatchItem{
			{Coordinate: coord("from"), Event: eventstore.Event{Kind: kOpened, Payload: -5}},
			{Coordinate: coord("to"), Event: eventstore.Event{Kind: kOpened, Payload: 5}},
		})
		done <- result{rs, err}
	}()
	// Wait until a retry has met the first publish still in process.
	deadline := hangDeadline(t)
	for s.Stats().InProcess == 0 {
		select {
		case r := <-done:
			t.Fatalf("the append ended while its first publish was still being replicated: %+v, %v (stats %+v)", r.rs, r.err, s.Stats())
		default:
		}
		if time.Now().After(deadline) {
			t.Fatalf("no retry met the first publish in process (stats %+v)", s.Stats())
		}
		time.Sleep(5 * time.Millisecond)
	}
	gc.heal()
	healed = true
	r := <-done
	if r.err != nil {
		t.Fatalf("append: %v (stats %+v)", r.err, s.Stats())
	}
	if len(r.rs) != 2 || r.rs[0].Sequence != 2 || r.rs[1].Sequence != 3 {
		t.Fatalf("receipts %+v, want sequences 2 and 3", r.rs)
	}
	if err := setup.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if got := setup.LastSequence(); got != 3 {
		t.Fatalf("the stream holds %d events, want 3 (the batch once)", got)
	}
	for i, e := range []string{"from", "to"} {
		var ids []string
		for rec, err := range setup.ReadStream(e, 1) {
			if err != nil {
				t.Fatal(err)
			}
			ids = append(ids, rec.ID.String())
		}
		if len(ids) != 1 || ids[0] != r.rs[i].EventID.String() {
			t.Fatalf("stream %s holds %v, want the batch's event %s once", e, ids, r.rs[i].EventID)
		}
	}
	t.Logf("stats %+v", s.Stats())
}
