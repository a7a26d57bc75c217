package natsstore_test

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
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
		var rs [2][]batpak.Receipt
		var errs [2]error
		for j, s := range []*natsstore.Store{a, b} {
			wg.Go(func() {
				<-start
				rs[j], errs[j] = s.Append(ctx, coord("cart"), one(kOpened, j), batpak.WithIdempotencyKey(key))
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
		rs  []batpak.Receipt
		err error
	}
	done := make(chan result, 1)
	go func() {
		rs, err := s.AppendBatch(ctx, []batpak.BatchItem{
			{Coordinate: coord("from"), Event: batpak.Event{Kind: kOpened, Payload: -5}},
			{Coordinate: coord("to"), Event: batpak.Event{Kind: kOpened, Payload: 5}},
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
		for rec, err := range setup.ReadStream(ctx, coord(e), 1) {
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

// TestPartitionOutcomes: writers append (keyed and unkeyed, single events
// and atomic batches) to a replicated stream while every route of the
// cluster is held, then released. Every append must end in receipts that
// the stream holds, in ErrUnavailable, or in a version conflict; never in
// another error. A keyed request that ended in ErrUnavailable, sent again,
// returns receipts, and the stream holds each keyed request once.
func TestPartitionOutcomes(t *testing.T) {
	if testing.Short() {
		t.Skip("short")
	}
	gc := startGatedCluster(t, 3)
	stream := uniqueStream("PARTITION")
	ctx := hangContext(t)
	// A short store timeout, so that appends under the partition end in
	// ErrUnavailable instead of waiting it out: the outcomes are checked,
	// not the time they take.
	s, err := natsstore.Open(ctx, gc.urls(), patient(t, natsstore.WithStream(stream), natsstore.WithReplicas(3),
		natsstore.WithTimeout(time.Second), natsstore.WithAckWait(250*time.Millisecond))...)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	type outcome struct {
		key   string
		items []batpak.BatchItem
		rs    []batpak.Receipt
		err   error
	}
	var (
		mu          sync.Mutex
		outcomes    []outcome
		acked       atomic.Int64
		unavailable atomic.Int64
		stop        = make(chan struct{})
		wg          sync.WaitGroup
	)
	for w := range 3 {
		wg.Go(func() {
			for i := 0; ; i++ {
				select {
				case <-stop:
					return
				default:
				}
				o := outcome{}
				if i%2 == 0 {
					o.key = fmt.Sprintf("w%d-%d", w, i)
				}
				e := fmt.Sprintf("w%d", w)
				o.items = []batpak.BatchItem{{Coordinate: coord(e), Event: batpak.Event{Kind: kOpened, Payload: i}}}
				if i%3 == 0 {
					o.items = append(o.items, batpak.BatchItem{Coordinate: coord("shared"), Event: batpak.Event{Kind: kNoted, Payload: i}})
				}
				var opts []batpak.AppendOption
				if o.key != "" {
					opts = append(opts, batpak.WithIdempotencyKey(o.key))
				}
				o.rs, o.err = s.AppendBatch(ctx, o.items, opts...)
				switch {
				case o.err == nil:
					acked.Add(1)
				case errors.Is(o.err, natsstore.ErrUnavailable):
					unavailable.Add(1)
				}
				mu.Lock()
				outcomes = append(outcomes, o)
				mu.Unlock()
			}
		})
	}
	waitFor := func(what string, cond func() bool) {
		t.Helper()
		deadline := hangDeadline(t)
		for !cond() {
			if time.Now().After(deadline) {
				t.Fatalf("%s: %d acknowledged, %d unavailable", what, acked.Load(), unavailable.Load())
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor("before the partition", func() bool { return acked.Load() >= 30 })
	gc.partition()
	waitFor("under the partition", func() bool { return unavailable.Load() >= 3 })
	gc.heal()
	after := acked.Load()
	waitFor("after the partition", func() bool { return acked.Load() >= after+30 })
	close(stop)
	wg.Wait()

	// Every append ended in receipts, ErrUnavailable or a conflict.
	var committed []outcome
	for _, o := range outcomes {
		switch {
		case o.err == nil:
			committed = append(committed, o)
		case errors.Is(o.err, natsstore.ErrUnavailable) && o.key != "":
			// The outcome is unknown: the key tells.
			rs, err := s.AppendBatch(ctx, o.items, batpak.WithIdempotencyKey(o.key))
			if err != nil {
				t.Fatalf("sending %s again: %v", o.key, err)
			}
			o.rs = rs
			committed = append(committed, o)
		case errors.Is(o.err, natsstore.ErrUnavailable), errors.Is(o.err, batpak.ErrVersionConflict):
		default:
			t.Errorf("append %q ended in %v: neither receipts nor ErrUnavailable", o.key, o.err)
		}
	}
	if err := s.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	// Each committed request is in the stream where its receipts say, and
	// each key is there once.
	byKey := map[string]int{}
	for _, o := range committed {
		for i, r := range o.rs {
			rec, err := s.GetSequence(ctx, r.Sequence)
			if err != nil || rec.ID != r.EventID || rec.Coordinate != o.items[i].Coordinate {
				t.Fatalf("receipt %+v of %q: the stream holds %+v, %v", r, o.key, rec, err)
			}
		}
		if o.key != "" {
			byKey[o.key]++
		}
	}
	seen := map[string]uint64{}
	for _, o := range committed {
		if o.key == "" {
			continue
		}
		if first, ok := seen[o.key]; ok && first != o.rs[0].Sequence {
			t.Fatalf("key %s committed twice: sequences %d and %d", o.key, first, o.rs[0].Sequence)
		}
		seen[o.key] = o.rs[0].Sequence
	}
	// The stream holds the committed requests and, at most, the unkeyed
	// requests whose outcome stayed unknown: nothing twice.
	var inStream, unknown uint64
	for _, o := range committed {
		inStream += uint64(len(o.rs))
	}
	for _, o := range outcomes {
		if o.key == "" && errors.Is(o.err, natsstore.ErrUnavailable) {
			unknown += uint64(len(o.items))
		}
	}
	if last := s.LastSequence(); last < inStream || last > inStream+unknown {
		t.Fatalf("the stream holds %d events; the committed requests %d, unknown outcomes up to %d more", last, inStream, unknown)
	}
	t.Logf("%d appends: %d acknowledged, %d unavailable; %d keyed requests in the stream; stream %d events (%d from unknown unkeyed outcomes); stats %+v",
		len(outcomes), acked.Load(), unavailable.Load(), len(byKey), s.LastSequence(), s.LastSequence()-inStream, s.Stats())
}
