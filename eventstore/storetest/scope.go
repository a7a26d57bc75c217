package storetest

import (
	"context"
	"errors"
	"fmt"
	"testing"

	"github.com/batpak-go/batpak"
)

// testScopeIsolation: a stream is its whole coordinate. The same entity
// in two scopes is two streams, with their own versions, expected-version
// checks, reads and idempotency keys.
func testScopeIsolation(t *testing.T, e *env) {
	s := e.s
	ctx := context.Background()
	a := batpak.Coordinate{Entity: "user:7", Scope: "tenantA"}
	b := batpak.Coordinate{Entity: "user:7", Scope: "tenantB"}

	ra := mustAppend(t, s, a, evs(kindOpened, 1), batpak.ExpectVersion(batpak.NoStream))
	rb := mustAppend(t, s, b, evs(kindOpened, 1), batpak.ExpectVersion(batpak.NoStream))
	if ra[0].Version != 1 || rb[0].Version != 1 {
		t.Fatalf("first events of user:7 in two scopes got versions %d and %d, want 1 and 1", ra[0].Version, rb[0].Version)
	}
	mustAppend(t, s, a, evs(kindDeposited, 2), batpak.ExpectVersion(batpak.Exactly(1)))
	_, err := s.Append(ctx, b, evs(kindDeposited, 1), batpak.ExpectVersion(batpak.Exactly(3)))
	checkConflict(t, err, b, batpak.Exactly(3), 1)

	// Idempotency keys belong to a scope: the same key in the other scope
	// is a new request, and a retry in the same scope returns the original.
	ka := mustAppend(t, s, a, evs(kindNoted, 1), batpak.WithIdempotencyKey("req-1"))
	kb := mustAppend(t, s, b, evs(kindNoted, 1), batpak.WithIdempotencyKey("req-1"))
	if kb[0].Sequence == ka[0].Sequence {
		t.Fatalf("key req-1 in tenantB returned tenantA's receipt %+v", ka[0])
	}
	again := mustAppend(t, s, a, evs(kindNoted, 1), batpak.WithIdempotencyKey("req-1"))
	if again[0] != ka[0] {
		t.Fatalf("retry of req-1 in tenantA got %+v, want the original %+v", again[0], ka[0])
	}

	s = e.settle()
	for _, tc := range []struct {
		c    batpak.Coordinate
		want uint64
	}{{a, 4}, {b, 2}} {
		if v := s.StreamVersion(tc.c); v != tc.want {
			t.Errorf("StreamVersion(%v) = %d, want %d", tc.c, v, tc.want)
		}
		recs := collect(t, s.ReadStream(ctx, tc.c, 0))
		if uint64(len(recs)) != tc.want {
			t.Fatalf("ReadStream(%v) returned %d events, want %d", tc.c, len(recs), tc.want)
		}
		for i, r := range recs {
			if r.Coordinate != tc.c || r.Version != uint64(i+1) {
				t.Fatalf("ReadStream(%v) event %d is %v version %d", tc.c, i, r.Coordinate, r.Version)
			}
		}
		if q := collect(t, s.Query(ctx, batpak.Region{Entity: tc.c.Entity, Scope: tc.c.Scope})); len(q) != int(tc.want) {
			t.Errorf("Query of %v returned %d events, want %d", tc.c, len(q), tc.want)
		}
	}
	if q := collect(t, s.Query(ctx, batpak.Region{Entity: "user:7"})); len(q) != 6 {
		t.Errorf("Query of user:7 in every scope returned %d events, want 6", len(q))
	}
	if cv, ok := s.(ChainVerifier); ok {
		for _, c := range []batpak.Coordinate{a, b} {
			if err := cv.VerifyChain(ctx, c); err != nil {
				t.Errorf("VerifyChain(%v): %v", c, err)
			}
		}
	}
}

// testReadsHonourContext: every read given a context that has ended
// yields that context's error and nothing else.
func testReadsHonourContext(t *testing.T, e *env) {
	s := e.s
	rs := mustAppend(t, s, coord("rctx:a"), evs(kindOpened, 3))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	reads := map[string]func() error{
		"ReadStream": func() error { return firstErr(s.ReadStream(ctx, coord("rctx:a"), 0)) },
		"ReadAll":    func() error { return firstErr(s.ReadAll(ctx, 0)) },
		"Query":      func() error { return firstErr(s.Query(ctx, batpak.Region{Entity: "rctx:a"})) },
		"Get": func() error {
			_, err := s.Get(ctx, rs[0].EventID)
			return err
		},
		"GetSequence": func() error {
			_, err := s.GetSequence(ctx, rs[0].Sequence)
			return err
		},
		"Cursor.TryNext": func() error {
			_, _, err := s.Cursor(batpak.Region{}, 0).TryNext(ctx)
			return err
		},
		"Cursor.Next": func() error {
			_, err := s.Cursor(batpak.Region{}, 0).Next(ctx)
			return err
		},
	}
	for name, read := range reads {
		if err := read(); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}
}

// firstErr returns the error seq yields first; a record first is an error.
func firstErr(seq func(func(batpak.Record, error) bool)) error {
	for rec, err := range seq {
		if err == nil {
			return fmt.Errorf("yielded %v", rec)
		}
		return err
	}
	return errors.New("yielded nothing")
}

// testScopedView: a view made by batpak.Scoped sees and writes only its
// scope, on every backend.
func testScopedView(t *testing.T, e *env) {
	s := e.s
	ctx := context.Background()
	if _, err := batpak.Scoped(s, ""); !errors.Is(err, batpak.ErrInvalidCoordinate) {
		t.Fatalf("Scoped with an empty scope: %v, want ErrInvalidCoordinate", err)
	}
	a, err := batpak.Scoped(s, "viewA")
	if err != nil {
		t.Fatal(err)
	}
	b, _ := batpak.Scoped(s, "viewB")
	user := batpak.Coordinate{Entity: "user:1"} // the view fills in its scope

	ra := mustAppend(t, a, user, evs(kindOpened, 2))
	rb := mustAppend(t, b, user, evs(kindOpened, 1))
	if _, err := a.Append(ctx, batpak.Coordinate{Entity: "user:1", Scope: "viewB"}, evs(kindNoted, 1)); !errors.Is(err, batpak.ErrOutOfScope) {
		t.Fatalf("view A appending to scope viewB: %v, want ErrOutOfScope", err)
	}
	_, err = a.AppendBatch(ctx, []batpak.BatchItem{
		{Coordinate: user, Event: ev(kindNoted, 1)},
		{Coordinate: batpak.Coordinate{Entity: "x", Scope: "viewB"}, Event: ev(kindNoted, 2)},
	})
	if !errors.Is(err, batpak.ErrOutOfScope) {
		t.Fatalf("view A batch touching scope viewB: %v, want ErrOutOfScope", err)
	}
	if v := s.StreamVersion(batpak.Coordinate{Entity: "user:1", Scope: "viewB"}); v != 1 {
		t.Fatalf("a refused append changed viewB's stream: version %d", v)
	}

	if v := a.StreamVersion(user); v != 2 {
		t.Errorf("view A: StreamVersion = %d, want 2", v)
	}
	if v := a.StreamVersion(batpak.Coordinate{Entity: "user:1", Scope: "viewB"}); v != 0 {
		t.Errorf("view A sees viewB's stream at version %d", v)
	}
	if _, err := a.Get(ctx, rb[0].EventID); !errors.Is(err, batpak.ErrNotFound) {
		t.Errorf("view A Get of viewB's event: %v, want ErrNotFound", err)
	}
	if _, err := a.GetSequence(ctx, rb[0].Sequence); !errors.Is(err, batpak.ErrNotFound) {
		t.Errorf("view A GetSequence of viewB's event: %v, want ErrNotFound", err)
	}
	if _, err := a.Get(ctx, ra[0].EventID); err != nil {
		t.Errorf("view A Get of its own event: %v", err)
	}
	for name, seq := range map[string]func(func(batpak.Record, error) bool){
		"ReadAll": a.ReadAll(ctx, 0),
		"Query":   a.Query(ctx, batpak.Region{Entity: "user:1", Scope: "viewB"}),
	} {
		for _, rec := range collect(t, seq) {
			if rec.Coordinate.Scope != "viewA" {
				t.Fatalf("view A %s yielded %v", name, rec)
			}
		}
	}
	if got := collect(t, a.ReadStream(ctx, user, 0)); len(got) != 2 {
		t.Errorf("view A ReadStream: %d events, want 2", len(got))
	}
	if rec, ok, err := a.Cursor(batpak.Region{}, rb[0].Sequence).TryNext(ctx); ok || err != nil {
		t.Errorf("view A cursor from viewB's event: %v %v %v, want nothing", rec, ok, err)
	}
}
