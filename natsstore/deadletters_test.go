package natsstore_test

import (
	"context"
	"errors"
	"slices"
	"testing"
	"time"

	"github.com/nats-io/nats.go"
	"github.com/nats-io/nats.go/jetstream"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/projection"
	"github.com/batpak-go/batpak/projection/deadletterstest"
)

func TestKVDeadLettersConformance(t *testing.T) {
	ns := startServer(t)
	deadletterstest.Run(t, func(t *testing.T) deadletterstest.Opener {
		stream := uniqueStream("PARKED")
		return func() projection.DeadLetters {
			dl, err := natsstore.NewKVDeadLetters(hangContext(t), openStore(t, ns, natsstore.WithStream(stream)))
			if err != nil {
				t.Fatal(err)
			}
			return dl
		}
	})
}

// A record that is not a dead letter fails the listing with
// ErrBadDeadLetters, and a Resolve of it, rather than being skipped.
func TestKVDeadLettersDamagedRecord(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("PARKED")
	dl, err := natsstore.NewKVDeadLetters(ctx, openStore(t, ns, natsstore.WithStream(stream)))
	if err != nil {
		t.Fatal(err)
	}
	if err := dl.Park(ctx, projection.DeadLetter{Projection: "p", Sequence: 3}); err != nil {
		t.Fatal(err)
	}
	nc, err := nats.Connect(ns.ClientURL())
	if err != nil {
		t.Fatal(err)
	}
	defer nc.Close()
	js, _ := jetstream.New(nc)
	kv, err := js.KeyValue(ctx, stream+"_deadletters")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := kv.Put(ctx, "p.3", []byte("{not json")); err != nil {
		t.Fatal(err)
	}
	if _, err := dl.Parked(ctx, "p"); !errors.Is(err, projection.ErrBadDeadLetters) {
		t.Fatalf("Parked with a damaged record = %v, want ErrBadDeadLetters", err)
	}
	if err := dl.Resolve(ctx, "p", 3, projection.ResolveSkip); !errors.Is(err, projection.ErrBadDeadLetters) {
		t.Fatalf("Resolve of a damaged record = %v, want ErrBadDeadLetters", err)
	}
}

// A runner over KV checkpoints parks a poisoned event in their bucket,
// where another process finds it, skips it, and the projection goes on.
func TestKVCheckpointsParkBesideThem(t *testing.T) {
	ctx := hangContext(t)
	ns := startServer(t)
	stream := uniqueStream("PARKED")
	s := openStore(t, ns, natsstore.WithStream(stream))
	for i := range 4 {
		if _, err := s.Append(ctx, batpak.Coordinate{Entity: "e", Scope: "s"}, []batpak.Event{{Kind: kind.Custom(1, 1), Payload: i}}); err != nil {
			t.Fatal(err)
		}
	}
	cps, err := natsstore.NewKVCheckpoints(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	policy := projection.Policy{Attempts: 2, MinBackoff: time.Millisecond, MaxBackoff: time.Millisecond, Then: projection.Stop}
	r := projection.NewRunner(s, cps, projection.WithPolicy(policy))
	poisoned := &poison{name: "p", bad: 3}
	if _, err := r.CatchUp(ctx, poisoned); err == nil {
		t.Fatal("CatchUp went past a poisoned event")
	}
	if next, err := cps.Load(ctx, "p"); err != nil || next != 3 {
		t.Fatalf("checkpoint after the poisoned event: %d, %v; want 3", next, err)
	}

	other, err := natsstore.NewKVCheckpoints(ctx, openStore(t, ns, natsstore.WithStream(stream)))
	if err != nil {
		t.Fatal(err)
	}
	list, err := other.DeadLetters().Parked(ctx, "p")
	if err != nil || len(list) != 1 || list[0].Sequence != 3 || !list[0].Stopped || list[0].Attempts != 2 {
		t.Fatalf("parked, seen from another client: %+v, %v", list, err)
	}
	if err := other.DeadLetters().Resolve(ctx, "p", 3, projection.ResolveSkip); err != nil {
		t.Fatal(err)
	}
	if next, err := r.CatchUp(ctx, poisoned); err != nil || next != 5 {
		t.Fatalf("CatchUp after the skip: next %d, %v; want 5", next, err)
	}
	if got := poisoned.applied; !slices.Equal(got, []uint64{1, 2, 4}) {
		t.Fatalf("applied %v, want [1 2 4]", got)
	}
}

// poison is a projection whose Apply always fails on one sequence.
type poison struct {
	name    string
	bad     uint64
	applied []uint64
}

func (p *poison) Name() string          { return p.name }
func (p *poison) Region() batpak.Region { return batpak.Region{Scope: "s"} }
func (p *poison) Apply(_ context.Context, rec batpak.Record) error {
	if rec.Sequence == p.bad {
		return errors.New("poisoned")
	}
	p.applied = append(p.applied, rec.Sequence)
	return nil
}
