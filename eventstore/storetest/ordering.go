package storetest

import (
	"fmt"
	"slices"
	"testing"

	"github.com/batpak-go/batpak"
)

// testOrdering: global sequences are dense from 1 in commit order, ReadAll
// yields commit order, every stream's versions are dense from 1, and every
// read agrees with the receipts.
func testOrdering(t *testing.T, e *env) {
	s := e.s
	type acked struct {
		entity string
		r      batpak.Receipt
	}
	var log []acked
	note := func(entity string, rs []batpak.Receipt) {
		for _, r := range rs {
			log = append(log, acked{entity, r})
		}
	}
	noteBatch := func(items []batpak.BatchItem, rs []batpak.Receipt) {
		for i, r := range rs {
			log = append(log, acked{items[i].Coordinate.Entity, r})
		}
	}
	streams := []string{"order:a", "order:b", "order:c"}
	for round := range 4 {
		for i, entity := range streams {
			note(entity, mustAppend(t, s, coord(entity), evs(kindDeposited, 1+(round+i)%3)))
		}
		items := []batpak.BatchItem{
			{Coordinate: coord("order:c"), Event: ev(kindNoted, round)},
			{Coordinate: coord("order:a"), Event: ev(kindNoted, round)},
			{Coordinate: coord("order:c"), Event: ev(kindNoted, round)},
		}
		noteBatch(items, mustBatch(t, s, items))
	}
	for i, a := range log {
		if a.r.Sequence != uint64(i+1) {
			t.Fatalf("receipt %d has sequence %d: sequences are not dense from 1 in commit order", i, a.r.Sequence)
		}
	}
	n := uint64(len(log))
	s = e.settle()

	if got := s.LastSequence(); got != n {
		t.Fatalf("LastSequence = %d, want %d", got, n)
	}
	all := collect(t, s.ReadAll(bgctx, 0))
	if got := seqsOf(all); !slices.Equal(got, span(1, n)) {
		t.Fatalf("ReadAll(0) sequences %v, want 1..%d", got, n)
	}
	for i := range all {
		checkReceipt(t, &all[i], &log[i].r)
		if all[i].Coordinate.Entity != log[i].entity {
			t.Fatalf("sequence %d is on %q, appended to %q", all[i].Sequence, all[i].Coordinate.Entity, log[i].entity)
		}
	}
	checkSameRecords(t, "ReadAll(1)", collect(t, s.ReadAll(bgctx, 1)), all)
	for _, from := range []uint64{2, n / 2, n} {
		checkSameRecords(t, fmt.Sprintf("ReadAll(%d)", from), collect(t, s.ReadAll(bgctx, from)), all[from-1:])
	}
	if got := collect(t, s.ReadAll(bgctx, n+1)); len(got) != 0 {
		t.Fatalf("ReadAll past the end yields %v", seqsOf(got))
	}
	for seq := uint64(1); seq <= n; seq++ {
		rec, err := s.GetSequence(bgctx, seq)
		if err != nil {
			t.Fatalf("GetSequence(%d): %v", seq, err)
		}
		if d := diffRecord(&rec, &all[seq-1]); d != "" {
			t.Fatalf("GetSequence(%d): %s", seq, d)
		}
	}
	for _, entity := range streams {
		var want []batpak.Record
		for _, rec := range all {
			if rec.Coordinate.Entity == entity {
				want = append(want, rec)
			}
		}
		got := collect(t, s.ReadStream(bgctx, coord(entity), 0))
		if v := versionsOf(got); !slices.Equal(v, span(1, uint64(len(want)))) {
			t.Fatalf("ReadStream(%q) versions %v, want 1..%d", entity, v, len(want))
		}
		checkSameRecords(t, "ReadStream("+entity+")", got, want)
		if v := s.StreamVersion(coord(entity)); v != uint64(len(want)) {
			t.Fatalf("StreamVersion(%q) = %d, want %d", entity, v, len(want))
		}
	}
	if got := collect(t, s.ReadStream(bgctx, coord("order:none"), 0)); len(got) != 0 {
		t.Fatalf("ReadStream of an unknown stream yields %v", seqsOf(got))
	}
	if v := s.StreamVersion(coord("order:none")); v != 0 {
		t.Fatalf("StreamVersion of an unknown stream = %d", v)
	}
}

// testReadStreamOptions: from-version, Backward and Limit.
func testReadStreamOptions(t *testing.T, e *env) {
	s := e.s
	const n = 10
	for i := range n {
		mustAppend(t, s, coord("opts:s"), []batpak.Event{ev(kindDeposited, i)})
		mustAppend(t, s, coord("opts:other"), []batpak.Event{ev(kindNoted, i)})
	}
	s = e.settle()
	forward := collect(t, s.ReadStream(bgctx, coord("opts:s"), 0))
	if len(forward) != n {
		t.Fatalf("ReadStream yields %d events, want %d", len(forward), n)
	}
	tests := []struct {
		name string
		from uint64
		opts []batpak.ReadOption
		want []uint64 // versions
	}{
		{"from 0", 0, nil, span(1, n)},
		{"from 1", 1, nil, span(1, n)},
		{"from 4", 4, nil, span(4, n)},
		{"from last", n, nil, []uint64{n}},
		{"past the end", n + 1, nil, nil},
		{"limit", 0, []batpak.ReadOption{batpak.Limit(3)}, []uint64{1, 2, 3}},
		{"from and limit", 5, []batpak.ReadOption{batpak.Limit(3)}, []uint64{5, 6, 7}},
		{"limit past the end", 9, []batpak.ReadOption{batpak.Limit(5)}, []uint64{9, 10}},
		{"limit 0 is no limit", 0, []batpak.ReadOption{batpak.Limit(0)}, span(1, n)},
		{"backward from 0", 0, []batpak.ReadOption{batpak.Backward()}, reversed(span(1, n))},
		{"backward from 4", 4, []batpak.ReadOption{batpak.Backward()}, []uint64{4, 3, 2, 1}},
		{"backward from 1", 1, []batpak.ReadOption{batpak.Backward()}, []uint64{1}},
		{"backward from last", n, []batpak.ReadOption{batpak.Backward()}, reversed(span(1, n))},
		{"backward past the end", n + 5, []batpak.ReadOption{batpak.Backward()}, reversed(span(1, n))},
		{"backward limit", 0, []batpak.ReadOption{batpak.Backward(), batpak.Limit(3)}, []uint64{10, 9, 8}},
		{"backward from and limit", 6, []batpak.ReadOption{batpak.Limit(2), batpak.Backward()}, []uint64{6, 5}},
	}
	for _, tc := range tests {
		got := collect(t, s.ReadStream(bgctx, coord("opts:s"), tc.from, tc.opts...))
		if v := versionsOf(got); !slices.Equal(v, tc.want) {
			t.Errorf("%s: versions %v, want %v", tc.name, v, tc.want)
			continue
		}
		for i := range got {
			if d := diffRecord(&got[i], &forward[got[i].Version-1]); d != "" {
				t.Errorf("%s: version %d: %s", tc.name, got[i].Version, d)
			}
		}
	}
	if got := collect(t, s.ReadStream(bgctx, coord("opts:none"), 0, batpak.Backward())); len(got) != 0 {
		t.Errorf("backward read of an unknown stream yields %v", seqsOf(got))
	}
	// Stopping early is allowed and ends the read.
	var seen []uint64
	for rec, err := range s.ReadStream(bgctx, coord("opts:s"), 0) {
		if err != nil {
			t.Fatal(err)
		}
		seen = append(seen, rec.Version)
		if len(seen) == 2 {
			break
		}
	}
	if !slices.Equal(seen, []uint64{1, 2}) {
		t.Errorf("early break saw versions %v", seen)
	}
}

// testHashChain: each event links to the hash of the previous event of its
// stream, the first to the zero hash.
func testHashChain(t *testing.T, e *env) {
	s := e.s
	var rs []batpak.Receipt
	rs = append(rs, mustAppend(t, s, coord("chain:a"), evs(kindDeposited, 3))...)
	mustAppend(t, s, coord("chain:b"), evs(kindDeposited, 2))
	rs = append(rs, mustBatch(t, s, []batpak.BatchItem{
		{Coordinate: coord("chain:b"), Event: ev(kindNoted, 1)},
		{Coordinate: coord("chain:a"), Event: ev(kindNoted, 2)},
	})[1])
	rs = append(rs, mustAppend(t, s, coord("chain:a"), evs(kindWithdrawn, 1))...)
	s = e.settle()
	seen := make(map[[32]byte]bool)
	for _, entity := range []string{"chain:a", "chain:b"} {
		var prev [32]byte
		for _, rec := range collect(t, s.ReadStream(bgctx, coord(entity), 0)) {
			if rec.PrevHash != prev {
				t.Fatalf("%s v%d: PrevHash %x, want %x", entity, rec.Version, rec.PrevHash[:4], prev[:4])
			}
			if rec.Hash == ([32]byte{}) || seen[rec.Hash] {
				t.Fatalf("%s v%d: zero or repeated hash %x", entity, rec.Version, rec.Hash[:4])
			}
			seen[rec.Hash] = true
			prev = rec.Hash
		}
		if v, ok := s.(ChainVerifier); ok {
			if err := v.VerifyChain(bgctx, coord(entity)); err != nil {
				t.Fatalf("VerifyChain(%q): %v", entity, err)
			}
		}
	}
	for i, rec := range collect(t, s.ReadStream(bgctx, coord("chain:a"), 0)) {
		checkReceipt(t, &rec, &rs[i])
	}
}
