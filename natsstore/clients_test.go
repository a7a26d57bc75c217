package natsstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/projection"
)

// The upper packages take the JetStream store as it is.
var (
	_ aggregate.Store   = (*natsstore.Store)(nil)
	_ projection.Source = (*natsstore.Store)(nil)
	_ causal.Source     = (*natsstore.Store)(nil)
)

var (
	kOpened = kind.Custom(1, 1)
	kNoted  = kind.Custom(2, 1)
)

func coord(e string) batpak.Coordinate { return batpak.Coordinate{Entity: e, Scope: "test"} }

func one(k kind.Kind, p any) []batpak.Event { return []batpak.Event{{Kind: k, Payload: p}} }

// TestTwoClients: two stores on one stream (two processes, as far as the
// server can tell) keep one log: versions, expected versions, idempotency
// keys, causation and subscriptions work across them.
func TestTwoClients(t *testing.T) {
	ns := startServer(t)
	stream := uniqueStream("TWO")
	a := openStore(t, ns, natsstore.WithStream(stream))
	b := openStore(t, ns, natsstore.WithStream(stream))
	ctx := context.Background()
	sub, err := b.Subscribe(batpak.Region{}, 64)
	if err != nil {
		t.Fatal(err)
	}

	ra, err := a.Append(ctx, coord("x"), one(kOpened, 1), batpak.ExpectVersion(batpak.NoStream))
	if err != nil {
		t.Fatal(err)
	}
	// b may not have indexed a's event yet: the server refuses b's stale
	// expectation, b catches up and appends at version 2.
	rb, err := b.Append(ctx, coord("x"), one(kNoted, 2))
	if err != nil {
		t.Fatal(err)
	}
	if rb[0].Version != 2 || rb[0].Sequence != 2 {
		t.Fatalf("b's append: %+v, want version 2 at sequence 2", rb[0])
	}
	// A stale expectation is a conflict with the actual version.
	_, err = a.Append(ctx, coord("x"), one(kNoted, 3), batpak.ExpectVersion(batpak.Exactly(1)))
	var vc *batpak.VersionConflictError
	if !errors.As(err, &vc) || vc.Actual != 2 {
		t.Fatalf("stale expectation: %v, want a conflict at version 2", err)
	}
	// An idempotency key used by a is honoured by b.
	k1, err := a.Append(ctx, coord("y"), one(kOpened, 1), batpak.WithIdempotencyKey("k1"))
	if err != nil {
		t.Fatal(err)
	}
	again, err := b.Append(ctx, coord("z"), one(kOpened, 9), batpak.WithIdempotencyKey("k1"))
	if err != nil || !slices.Equal(again, k1) {
		t.Fatalf("b replays k1: %+v, %v; want %+v", again, err, k1)
	}
	// A cause appended by a gives b's event its correlation.
	rc, err := b.Append(ctx, coord("w"), one(kNoted, 1), batpak.WithCausation(ra[0].EventID))
	if err != nil {
		t.Fatal(err)
	}
	rec, err := b.Get(ctx, rc[0].EventID)
	if err != nil || rec.CorrelationID != ra[0].EventID {
		t.Fatalf("correlation across clients: %v %v", rec.CorrelationID, err)
	}
	if err := a.CatchUp(ctx); err != nil {
		t.Fatal(err)
	}
	if a.LastSequence() != b.LastSequence() || a.LastSequence() != 4 {
		t.Fatalf("LastSequence: a %d, b %d, want 4", a.LastSequence(), b.LastSequence())
	}
	if got := a.CausedBy(ra[0].EventID); !slices.Equal(got, []uint64{rc[0].Sequence}) {
		t.Fatalf("a.CausedBy = %v", got)
	}
	var streams []batpak.Coordinate
	for info := range a.Streams() {
		streams = append(streams, info.Coordinate)
		if info.Coordinate == coord("x") && (info.Version != 2 || info.LastSequence != 2) {
			t.Fatalf("Streams: %+v", info)
		}
	}
	if !slices.Equal(streams, []batpak.Coordinate{coord("x"), coord("y"), coord("w")}) {
		t.Fatalf("Streams yields %v", streams)
	}
	// b's subscription saw every event, a's included, in order.
	for want := uint64(1); want <= 4; want++ {
		select {
		case rec := <-sub.Events():
			if rec.Sequence != want {
				t.Fatalf("subscription: sequence %d, want %d", rec.Sequence, want)
			}
		case <-time.After(hangTimeout(t)):
			t.Fatalf("subscription: no sequence %d", want)
		}
	}
}

// TestKeysOutliveDuplicateWindow: the server forgets a Nats-Msg-Id after
// the stream's duplicate window, the store's keys do not.
func TestKeysOutliveDuplicateWindow(t *testing.T) {
	ns := startServer(t)
	stream := uniqueStream("DUP")
	a := openStore(t, ns, natsstore.WithStream(stream), natsstore.WithDuplicateWindow(200*time.Millisecond))
	ctx := context.Background()
	first, err := a.Append(ctx, coord("x"), one(kOpened, 1), batpak.WithIdempotencyKey("once"))
	if err != nil {
		t.Fatal(err)
	}
	time.Sleep(600 * time.Millisecond)
	for _, s := range []*natsstore.Store{a, openStore(t, ns, natsstore.WithStream(stream))} {
		rs, err := s.Append(ctx, coord("x"), one(kOpened, 2), batpak.WithIdempotencyKey("once"))
		if err != nil || !slices.Equal(rs, first) {
			t.Fatalf("replay after the window: %+v, %v; want %+v", rs, err, first)
		}
	}
	if v := a.StreamVersion(coord("x")); v != 1 {
		t.Fatalf("version %d after replays, want 1", v)
	}
}

// TestBatchUnsupported: without atomic batch publish, requests of more
// than one event are refused whole; single events still append.
func TestBatchUnsupported(t *testing.T) {
	ns := startServer(t)
	s := openStore(t, ns, natsstore.WithStream(uniqueStream("NOBATCH")), natsstore.WithAtomicBatches(false))
	if s.AtomicBatches() {
		t.Fatal("AtomicBatches() with WithAtomicBatches(false)")
	}
	ctx := context.Background()
	_, err := s.Append(ctx, coord("x"), []batpak.Event{{Kind: kOpened, Payload: 1}, {Kind: kNoted, Payload: 2}})
	if !errors.Is(err, natsstore.ErrBatchUnsupported) {
		t.Fatalf("multi-event append: %v", err)
	}
	_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: coord("x"), Event: batpak.Event{Kind: kOpened}}, {Coordinate: coord("y"), Event: batpak.Event{Kind: kOpened}}})
	if !errors.Is(err, natsstore.ErrBatchUnsupported) {
		t.Fatalf("batch: %v", err)
	}
	if _, err := s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: coord("x"), Event: batpak.Event{Kind: kOpened}}}); err != nil {
		t.Fatal(err)
	}
	if s.LastSequence() != 1 {
		t.Fatalf("LastSequence = %d", s.LastSequence())
	}
}
