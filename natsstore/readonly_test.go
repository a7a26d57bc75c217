package natsstore_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/nats-io/nats-server/v2/server"
	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/projection"
)

// originEvents appends single events, multi-event requests, a keyed
// request and a batch over several entities to s.
func originEvents(t *testing.T, s *natsstore.Store, round int) {
	t.Helper()
	ctx := hangContext(t)
	for i := range 5 {
		if _, err := s.Append(ctx, coord(fmt.Sprint("acct.", i%2)), one(kNoted, i)); err != nil {
			t.Fatal(err)
		}
	}
	evs := []batpak.Event{{Kind: kOpened, Payload: 1}, {Kind: kNoted, Payload: 2}, {Kind: kNoted, Payload: 3}}
	if _, err := s.Append(ctx, coord(fmt.Sprint("multi ", round)), evs, batpak.WithIdempotencyKey(fmt.Sprint("key-", round))); err != nil {
		t.Fatal(err)
	}
	items := []batpak.BatchItem{
		{Coordinate: coord("acct.0"), Event: batpak.Event{Kind: kNoted, Payload: "b0"}},
		{Coordinate: coord("acct.1"), Event: batpak.Event{Kind: kNoted, Payload: "b1"}},
	}
	if _, err := s.AppendBatch(ctx, items); err != nil {
		t.Fatal(err)
	}
}

// createCopy creates the stream name on ns as a mirror of origin, or as a
// stream with origin as its one source.
func createCopy(t *testing.T, ns *server.Server, name, origin string, mirror bool) {
	t.Helper()
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	cfg := jetstream.StreamConfig{Name: name, Storage: jetstream.FileStorage}
	if mirror {
		cfg.Mirror = &jetstream.StreamSource{Name: origin}
	} else {
		cfg.Sources = []*jetstream.StreamSource{{Name: origin}}
	}
	if _, err := js.CreateStream(hangContext(t), cfg); err != nil {
		t.Fatal(err)
	}
}

// waitCopied waits until ro has indexed seq events.
func waitCopied(t *testing.T, ro *natsstore.Store, seq uint64) {
	t.Helper()
	ctx := hangContext(t)
	cur := ro.Cursor(batpak.Region{}, seq)
	if _, err := cur.Next(ctx); err != nil {
		t.Fatalf("waiting for sequence %d in the copy (it has %d): %v", seq, ro.LastSequence(), err)
	}
}

// sameRecords checks that copy holds what origin holds, record by record.
func sameRecords(t *testing.T, origin, copy *natsstore.Store) {
	t.Helper()
	ctx := hangContext(t)
	var want, got []batpak.Record
	for rec, err := range origin.ReadAll(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		want = append(want, rec)
	}
	for rec, err := range copy.ReadAll(ctx, 1) {
		if err != nil {
			t.Fatal(err)
		}
		got = append(got, rec)
	}
	if len(got) != len(want) {
		t.Fatalf("the copy holds %d events, the origin %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.Sequence != w.Sequence || g.ID != w.ID || g.Coordinate != w.Coordinate || !g.Timestamp.Equal(w.Timestamp) ||
			g.Version != w.Version || g.Kind != w.Kind || g.Hash != w.Hash || g.PrevHash != w.PrevHash ||
			g.CorrelationID != w.CorrelationID || g.CausationID != w.CausationID || !bytes.Equal(g.Payload, w.Payload) {
			t.Fatalf("event %d: copy %+v, origin %+v", i+1, g, w)
		}
	}
	for info := range origin.Streams() {
		if v := copy.StreamVersion(info.Coordinate); v != info.Version {
			t.Fatalf("%v: version %d in the copy, %d in the origin", info.Coordinate, v, info.Version)
		}
		if err := copy.VerifyChain(ctx, info.Coordinate); err != nil {
			t.Fatal(err)
		}
	}
}

// TestReadOnlyCopies opens a mirror and a sourced copy of a store read
// only: they hold the origin's events (sequences included, for a copy of
// one whole store), follow new ones through cursors and subscriptions,
// run projections, and refuse appends.
func TestReadOnlyCopies(t *testing.T) {
	for _, mirror := range []bool{true, false} {
		name := map[bool]string{true: "mirror", false: "sourced"}[mirror]
		t.Run(name, func(t *testing.T) {
			ctx := hangContext(t)
			ns := startServer(t)
			origin := uniqueStream("ORIGIN")
			o := openStore(t, ns, natsstore.WithStream(origin))
			originEvents(t, o, 1)
			cp := uniqueStream("COPY")
			createCopy(t, ns, cp, origin, mirror)
			ro, err := natsstore.OpenReadOnly(ctx, ns.ClientURL(), patient(t, natsstore.WithStream(cp))...)
			if err != nil {
				t.Fatal(err)
			}
			defer ro.Close()
			waitCopied(t, ro, o.LastSequence())
			sameRecords(t, o, ro)

			// The copy reads its origin's catalog and keys: names show,
			// sealed payloads open, and a Forget at the origin holds.
			sealed, err := o.Append(ctx, coord("p"), []batpak.Event{{Kind: kNoted, Type: "test.Personal", Payload: "Ann", Subject: "ann"}})
			if err != nil {
				t.Fatal(err)
			}
			waitCopied(t, ro, o.LastSequence())
			if err := ro.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			if rec, err := ro.GetSequence(ctx, sealed[0].Sequence); err != nil || rec.Type != "test.Personal" || string(rec.Payload) != "\xa3Ann" {
				t.Fatalf("the copy reads the sealed event as %+v, %v", rec, err)
			}
			if err := o.Forget(ctx, batpak.Subject{Scope: "test", ID: "ann"}); err != nil {
				t.Fatal(err)
			}
			if err := ro.CatchUp(ctx); err != nil {
				t.Fatal(err)
			}
			if rec, err := ro.GetSequence(ctx, sealed[0].Sequence); err != nil || !rec.Erased {
				t.Fatalf("the copy after the origin's Forget: %+v, %v", rec, err)
			}
			if err := ro.Forget(ctx, batpak.Subject{Scope: "test", ID: "ann"}); !errors.Is(err, batpak.ErrReadOnly) {
				t.Fatalf("Forget on a read-only copy: %v", err)
			}

			// Appends fail, whatever their shape; nothing reaches the origin.
			last := o.LastSequence()
			if _, err := ro.Append(ctx, coord("x"), one(kNoted, 1)); !errors.Is(err, batpak.ErrReadOnly) {
				t.Fatalf("Append = %v, want ErrReadOnly", err)
			}
			if _, err := ro.Append(ctx, coord("x"), []batpak.Event{{Kind: kNoted}, {Kind: kNoted}}); !errors.Is(err, batpak.ErrReadOnly) {
				t.Fatalf("Append of two = %v, want ErrReadOnly", err)
			}
			if _, err := ro.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: coord("x"), Event: batpak.Event{Kind: kNoted}}}); !errors.Is(err, batpak.ErrReadOnly) {
				t.Fatalf("AppendBatch = %v, want ErrReadOnly", err)
			}
			if err := o.CatchUp(ctx); err != nil || o.LastSequence() != last {
				t.Fatalf("the origin moved to %d (%v)", o.LastSequence(), err)
			}

			// New events reach cursors, subscriptions and a projection.
			sub, err := ro.Subscribe(batpak.Region{}, 64)
			if err != nil {
				t.Fatal(err)
			}
			defer sub.Close()
			cps, err := natsstore.NewKVCheckpoints(ctx, ro)
			if err != nil {
				t.Fatal(err)
			}
			m := newSharedModel()
			pctx, stop := context.WithCancel(ctx)
			defer stop()
			wait := projection.NewRunner(ro, cps).Start(pctx, m.projection("copy"))
			cur := ro.Cursor(batpak.Region{}, last+1)
			originEvents(t, o, 2)
			for seq := last + 1; seq <= o.LastSequence(); seq++ {
				rec, err := cur.Next(ctx)
				if err != nil || rec.Sequence != seq {
					t.Fatalf("cursor: %d, %v, want sequence %d", rec.Sequence, err, seq)
				}
				select {
				case got := <-sub.Events():
					if got.Sequence != seq {
						t.Fatalf("subscription: sequence %d, want %d", got.Sequence, seq)
					}
				case <-ctx.Done():
					t.Fatal(ctx.Err())
				}
			}
			m.waitFor(t, ctx, int(o.LastSequence()))
			stop()
			if err := wait(); !errors.Is(err, context.Canceled) {
				t.Fatal(err)
			}
			checkHandover(t, m.snapshot(), o.LastSequence(), "copy")
			sameRecords(t, o, ro)
		})
	}
}

// TestReadOnlyOrigin opens a store's own stream read only: it reads, and
// refuses appends, and it changes nothing about the stream.
func TestReadOnlyOrigin(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("RO")
	if _, err := natsstore.OpenReadOnly(ctx, ns.ClientURL(), patient(t, natsstore.WithStream(stream))...); !errors.Is(err, jetstream.ErrStreamNotFound) {
		t.Fatalf("OpenReadOnly of a missing stream = %v, want ErrStreamNotFound", err)
	}
	o := openStore(t, ns, natsstore.WithStream(stream))
	originEvents(t, o, 1)
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	ro, err := natsstore.OpenConnReadOnly(ctx, nc, patient(t, natsstore.WithStream(stream))...)
	if err != nil {
		t.Fatal(err)
	}
	sameRecords(t, o, ro)
	if ro.AtomicBatches() {
		t.Fatal("a read-only store reports atomic batches")
	}
	if _, err := ro.Append(ctx, coord("x"), one(kNoted, 1)); !errors.Is(err, batpak.ErrReadOnly) {
		t.Fatalf("Append = %v, want ErrReadOnly", err)
	}
	if err := ro.Close(); err != nil {
		t.Fatal(err)
	}
	if nc.IsClosed() {
		t.Fatal("Close closed the caller's connection")
	}
}

// TestReadOnlyRefusesPartialCopies: a stream sourcing two stores is
// refused unless the prefix is named, and of a copy that starts after the
// first event the index shows no broken stream: it refuses the store, or
// the events that do not fit (versions would not start at 1).
func TestReadOnlyRefusesPartialCopies(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	a, b := uniqueStream("PARTA"), uniqueStream("PARTB")
	sa := openStore(t, ns, natsstore.WithStream(a))
	originEvents(t, sa, 1)
	openStore(t, ns, natsstore.WithStream(b))
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, err := jetstream.New(nc)
	if err != nil {
		t.Fatal(err)
	}
	mixed := uniqueStream("MIXED")
	if _, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: mixed, Sources: []*jetstream.StreamSource{{Name: a}, {Name: b}}}); err != nil {
		t.Fatal(err)
	}
	if _, err := natsstore.OpenConnReadOnly(ctx, nc, patient(t, natsstore.WithStream(mixed))...); err == nil {
		t.Fatal("a stream with two sources was opened without a subject prefix")
	}

	late := uniqueStream("LATE")
	str, err := js.CreateStream(ctx, jetstream.StreamConfig{Name: late, Sources: []*jetstream.StreamSource{{Name: a, OptStartSeq: 3}}})
	if err != nil {
		t.Fatal(err)
	}
	tick := time.NewTicker(10 * time.Millisecond)
	defer tick.Stop()
	for want := sa.LastSequence() - 2; ; <-tick.C {
		info, err := str.Info(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if info.State.Msgs == want {
			break
		}
	}
	ro, err := natsstore.OpenConnReadOnly(ctx, nc, patient(t, natsstore.WithStream(late))...)
	if errors.Is(err, natsstore.ErrInvalidMessage) {
		return // refused whole
	}
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	for info := range ro.Streams() {
		v := uint64(0)
		for rec, err := range ro.ReadStream(ctx, info.Coordinate, 1) {
			if err != nil {
				t.Fatal(err)
			}
			if v++; rec.Version != v {
				t.Fatalf("%v: version %d shown as the %d-th event of the stream", info.Coordinate, rec.Version, v)
			}
		}
		if err := ro.VerifyChain(ctx, info.Coordinate); err != nil {
			t.Fatal(err)
		}
	}
	if v := ro.StreamVersion(coord("acct.0")); v != 0 {
		t.Fatalf("acct.0, whose first event the copy lacks, shows version %d", v)
	}
}

// A read-only store's refused append leaves the shared catalog alone: the
// writer may still give the kind its own name (found by review: the name
// was bound before the append was refused).
func TestReadOnlyAppendWritesNoTypeName(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("ROCAT")
	w := openStore(t, ns, natsstore.WithStream(stream))
	if _, err := w.Append(ctx, batpak.Coordinate{Entity: "e", Scope: "s"}, []batpak.Event{{Kind: kind.Custom(2, 8), Type: "test.First", Payload: 1}}); err != nil {
		t.Fatal(err)
	}
	ro, err := natsstore.OpenReadOnly(ctx, ns.ClientURL(), patient(t, natsstore.WithStream(stream))...)
	if err != nil {
		t.Fatal(err)
	}
	defer ro.Close()
	if _, err := ro.Append(ctx, batpak.Coordinate{Entity: "e", Scope: "s"}, []batpak.Event{{Kind: kind.Custom(2, 9), Type: "test.FromReadOnly", Payload: 1}}); !errors.Is(err, batpak.ErrReadOnly) {
		t.Fatalf("read-only Append = %v, want ErrReadOnly", err)
	}
	if _, err := w.Append(ctx, batpak.Coordinate{Entity: "e", Scope: "s"}, []batpak.Event{{Kind: kind.Custom(2, 9), Type: "test.Real", Payload: 1}}); err != nil {
		t.Fatalf("the writer naming the kind after the read-only store's refused append: %v", err)
	}
}
