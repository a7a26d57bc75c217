package memstore_test

import (
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
)

// TestScopeIsolation: a stream is its whole coordinate. The same entity in
// two scopes is two streams, with their own versions, expected-version
// checks, reads, hash chains and idempotency keys.
func TestScopeIsolation(t *testing.T) {
	s := newStore(t)
	a, b := co("tenantA", "user:7"), co("tenantB", "user:7")

	ra := mustAppend(t, s, a, evs(kindA, 1), batpak.ExpectVersion(batpak.NoStream))
	rb := mustAppend(t, s, b, evs(kindA, 1), batpak.ExpectVersion(batpak.NoStream))
	if ra[0].Version != 1 || rb[0].Version != 1 {
		t.Fatalf("first events of user:7 in two scopes got versions %d and %d, want 1 and 1", ra[0].Version, rb[0].Version)
	}
	if rb[0].Hash == ra[0].Hash {
		t.Fatal("the two streams' first events hash alike")
	}
	mustAppend(t, s, a, evs(kindB, 2), batpak.ExpectVersion(batpak.Exactly(1)))
	_, err := s.Append(bg, b, evs(kindB, 1), batpak.ExpectVersion(batpak.Exactly(3)))
	checkConflict(t, err, b, batpak.Exactly(3), 1)
	_, err = s.AppendBatch(bg, []batpak.BatchItem{
		{Coordinate: b, Event: evs(kindB, 1)[0], Expected: batpak.Exactly(1)},
		{Coordinate: a, Event: evs(kindB, 1)[0], Expected: batpak.Exactly(1)},
	})
	checkConflict(t, err, a, batpak.Exactly(1), 3)

	// Keys belong to a scope: the same key in the other scope is a new
	// request, and a retry in the same scope returns the original.
	ka := mustAppend(t, s, a, evs(kindC, 1), batpak.WithIdempotencyKey("req-1"))
	kb := mustAppend(t, s, b, evs(kindC, 1), batpak.WithIdempotencyKey("req-1"))
	if kb[0].Sequence == ka[0].Sequence {
		t.Fatalf("key req-1 in tenantB returned tenantA's receipt %+v", ka[0])
	}
	if again := mustAppend(t, s, a, evs(kindC, 1), batpak.WithIdempotencyKey("req-1")); again[0] != ka[0] {
		t.Fatalf("retry of req-1 in tenantA got %+v, want %+v", again[0], ka[0])
	}

	for _, tc := range []struct {
		c    batpak.Coordinate
		want []uint64 // sequences
	}{{a, []uint64{1, 3, 4, 5}}, {b, []uint64{2, 6}}} {
		if v := s.StreamVersion(tc.c); v != uint64(len(tc.want)) {
			t.Errorf("StreamVersion(%v) = %d, want %d", tc.c, v, len(tc.want))
		}
		recs := collect(t, s.ReadStream(bg, tc.c, 0))
		if !slices.Equal(seqsOf(recs), tc.want) || !slices.Equal(versionsOf(recs), span(1, uint64(len(tc.want)))) {
			t.Errorf("ReadStream(%v): sequences %v versions %v, want sequences %v", tc.c, seqsOf(recs), versionsOf(recs), tc.want)
		}
		for i := range recs {
			if recs[i].Coordinate != tc.c || i > 0 && recs[i].PrevHash != recs[i-1].Hash {
				t.Errorf("ReadStream(%v) event %d: %v, or its link is to another stream", tc.c, i, recs[i].Coordinate)
			}
		}
		back := collect(t, s.ReadStream(bg, tc.c, 0, batpak.Backward()))
		rev := slices.Clone(tc.want)
		slices.Reverse(rev)
		if got := seqsOf(back); !slices.Equal(got, rev) {
			t.Errorf("ReadStream(%v, Backward) = %v", tc.c, got)
		}
		if q := seqsOf(collect(t, s.Query(bg, batpak.Region{Entity: tc.c.Entity, Scope: tc.c.Scope}))); !slices.Equal(q, tc.want) {
			t.Errorf("Query of %v = %v, want %v", tc.c, q, tc.want)
		}
		if err := s.VerifyChain(bg, tc.c); err != nil {
			t.Errorf("VerifyChain(%v): %v", tc.c, err)
		}
	}
	if q := collect(t, s.Query(bg, batpak.Region{Entity: "user:7"})); len(q) != 6 {
		t.Errorf("Query of user:7 in every scope returned %d events, want 6", len(q))
	}
}
