package storetest

import (
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// receive reads n records from sub, failing at the suite's hang deadline.
func receive(t *testing.T, sub batpak.Subscription, n int) []batpak.Record {
	t.Helper()
	var out []batpak.Record
	deadline := hangTimer(t)
	for len(out) < n {
		select {
		case rec, ok := <-sub.Events():
			if !ok {
				t.Fatalf("subscription closed after %d of %d events", len(out), n)
			}
			out = append(out, rec)
		case <-deadline:
			t.Fatalf("received %d of %d events", len(out), n)
		}
	}
	return out
}

// receiveAsync reads n records from sub in a goroutine and sends what it
// got once it has them all, the subscription closed or the suite's hang
// deadline passed.
func receiveAsync(t *testing.T, sub batpak.Subscription, n int) <-chan []batpak.Record {
	out := make(chan []batpak.Record, 1)
	deadline := hangTimer(t)
	go func() {
		var recs []batpak.Record
		defer func() { out <- recs }()
		for len(recs) < n {
			select {
			case rec, ok := <-sub.Events():
				if !ok {
					return
				}
				recs = append(recs, rec)
			case <-deadline:
				return
			}
		}
	}()
	return out
}

// testSubscribeLossy: a subscriber that does not read never blocks appends;
// what it misses is counted, and other subscribers still get everything.
func testSubscribeLossy(t *testing.T, e *env) {
	s := e.s
	const n = 40
	slow, err := s.Subscribe(batpak.Region{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	reader, err := s.Subscribe(batpak.Region{}, n)
	if err != nil {
		t.Fatal(err)
	}
	ctx := testContext(t)
	for i := range n {
		if _, err := s.Append(ctx, coord("lossy:a"), []batpak.Event{ev(kindDeposited, i)}); err != nil {
			t.Fatalf("append %d with a stuck subscriber: %v", i, err)
		}
	}
	eventually(t, "the slow subscriber's losses to be counted", func() bool {
		return slow.Dropped()+uint64(len(slow.Events())) == n
	})
	if d := slow.Dropped(); d < n-1 {
		t.Fatalf("slow subscriber with a buffer of 1 dropped %d of %d events", d, n)
	}
	got := receive(t, reader, n)
	checkSameRecords(t, "reading subscriber", got, collect(t, s.ReadAll(bgctx, 0)))
	if d := reader.Dropped(); d != 0 {
		t.Fatalf("reading subscriber dropped %d events", d)
	}
	// What the slow one holds is in order and real.
	var held []batpak.Record
	for len(slow.Events()) > 0 {
		held = append(held, <-slow.Events())
	}
	for i := range held {
		if i > 0 && held[i].Sequence <= held[i-1].Sequence {
			t.Fatalf("slow subscriber holds sequences out of order")
		}
		want, err := s.GetSequence(bgctx, held[i].Sequence)
		if err != nil {
			t.Fatal(err)
		}
		if d := diffRecord(&held[i], &want); d != "" {
			t.Fatalf("slow subscriber's event: %s", d)
		}
	}
	slow.Close()
	if _, ok := <-slow.Events(); ok {
		t.Fatal("a closed subscription delivered an event")
	}
	mustAppend(t, s, coord("lossy:a"), evs(kindDeposited, 1))
	receive(t, reader, 1)
}

// testSubscribeDelivers: a subscriber that keeps up receives exactly the
// new events of its region, in commit order, as they are stored.
func testSubscribeDelivers(t *testing.T, e *env) {
	s := e.s
	mustAppend(t, s, coord("sub:x"), evs(kindOpened, 3)) // before subscribing: not delivered
	// Buffers hold every event of the test, so nothing may be dropped.
	byEntity, err := s.Subscribe(batpak.Region{Entity: "sub:x"}, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer byEntity.Close()
	byKind, err := s.Subscribe(batpak.Region{Kinds: []kind.Kind{kindWithdrawn}}, 64)
	if err != nil {
		t.Fatal(err)
	}
	defer byKind.Close()
	const rounds = 12
	entityRecs := receiveAsync(t, byEntity, rounds*2)
	kindRecs := receiveAsync(t, byKind, rounds*2)
	for i := range rounds {
		mustAppend(t, s, coord("sub:x"), []batpak.Event{ev(kindDeposited, i)})
		mustAppend(t, s, coord("sub:y"), []batpak.Event{ev(kindWithdrawn, i)})
		mustBatch(t, s, []batpak.BatchItem{
			{Coordinate: coord("sub:y"), Event: ev(kindNoted, i)},
			{Coordinate: coord("sub:x"), Event: ev(kindWithdrawn, i)},
		})
	}
	a, b := <-entityRecs, <-kindRecs
	all := collect(t, s.ReadAll(bgctx, 0))
	if byEntity.Dropped() != 0 || byKind.Dropped() != 0 {
		t.Fatalf("subscribers that keep up dropped %d and %d events", byEntity.Dropped(), byKind.Dropped())
	}
	checkSameRecords(t, "subscription by entity", a, filter(all, batpak.Region{Entity: "sub:x", FromSequence: 4}))
	checkSameRecords(t, "subscription by kind", b, filter(all, batpak.Region{Kinds: []kind.Kind{kindWithdrawn}}))
}

// testSubscribeNewOnly: a subscription receives the events appended after
// Subscribe returned, never one whose append had already returned.
func testSubscribeNewOnly(t *testing.T, e *env) {
	s := e.s
	for i := range 30 {
		mustAppend(t, s, coord("new:a"), evs(kindDeposited, 3))
		sub, err := s.Subscribe(batpak.Region{}, 8)
		if err != nil {
			t.Fatal(err)
		}
		rs := mustAppend(t, s, coord("new:a"), evs(kindNoted, 1))
		got := receive(t, sub, 1)[0]
		sub.Close()
		if got.Sequence != rs[0].Sequence {
			t.Fatalf("round %d: a subscription made after sequence %d was acknowledged received sequence %d first", i, rs[0].Sequence-1, got.Sequence)
		}
	}
}
