package memstore_test

import (
	"context"
	"errors"
	"math"
	"slices"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
)

// TestAppendRefused: every argument no caller can mean, on Append and on
// AppendBatch, fails with its sentinel error and writes nothing.
func TestAppendRefused(t *testing.T) {
	const limit = 64
	s := newStore(t, memstore.WithMaxPayload(limit))
	ok := co("t", "ok")
	mustAppend(t, s, ok, evs(kindA, 1))
	last := s.LastSequence()
	versions := map[batpak.Coordinate]uint64{ok: 1, co("t", "new"): 0}

	good := batpak.Event{Kind: kindB, Payload: 1}
	reserved := batpak.Event{Kind: kind.Kind(0x0001), Payload: 1}
	badMeta := batpak.Event{Kind: kindB, Metadata: map[string]string{"reason": "bad\xff"}}
	badKeyMeta := batpak.Event{Kind: kindB, Metadata: map[string]string{"bad\xffkey": "ok"}}
	big := batpak.Event{Kind: kindB, Payload: batpak.RawPayload(make([]byte, limit+1))}
	bigValue := batpak.Event{Kind: kindB, Payload: strings.Repeat("x", limit)}
	unencodable := batpak.Event{Kind: kindB, Payload: make(chan int)}
	canceled, cancel := context.WithCancel(bg)
	cancel()

	tests := []struct {
		name   string
		ctx    context.Context
		coord  batpak.Coordinate
		events []batpak.Event
		opts   []batpak.AppendOption
		want   error
	}{
		{"empty entity", bg, co("t", ""), []batpak.Event{good}, nil, batpak.ErrInvalidCoordinate},
		{"empty scope", bg, co("", "x"), []batpak.Event{good}, nil, batpak.ErrInvalidCoordinate},
		{"control character", bg, co("t", "a\nb"), []batpak.Event{good}, nil, batpak.ErrInvalidCoordinate},
		{"entity not UTF-8", bg, co("t", "a\xff"), []batpak.Event{good}, nil, batpak.ErrInvalidCoordinate},
		{"entity too long", bg, co("t", strings.Repeat("e", batpak.MaxCoordinateLen+1)), []batpak.Event{good}, nil, batpak.ErrInvalidCoordinate},
		{"no events", bg, ok, nil, nil, batpak.ErrEmptyAppend},
		{"reserved kind", bg, ok, []batpak.Event{good, reserved}, nil, batpak.ErrReservedKind},
		{"metadata value not UTF-8", bg, ok, []batpak.Event{good, badMeta}, nil, batpak.ErrInvalidMetadata},
		{"metadata key not UTF-8", bg, ok, []batpak.Event{badKeyMeta}, nil, batpak.ErrInvalidMetadata},
		{"raw payload over the limit", bg, ok, []batpak.Event{good, big}, nil, batpak.ErrPayloadTooLarge},
		{"value encoding over the limit", bg, ok, []batpak.Event{bigValue}, nil, batpak.ErrPayloadTooLarge},
		{"empty idempotency key", bg, ok, []batpak.Event{good}, []batpak.AppendOption{batpak.WithIdempotencyKey("")}, batpak.ErrInvalidIdempotencyKey},
		{"idempotency key too long", bg, ok, []batpak.Event{good}, []batpak.AppendOption{batpak.WithIdempotencyKey(strings.Repeat("k", batpak.MaxIdempotencyKeyLen+1))}, batpak.ErrInvalidIdempotencyKey},
		{"expected version underflow", bg, ok, []batpak.Event{good}, []batpak.AppendOption{batpak.ExpectVersion(batpak.Exactly(math.MaxUint64))}, batpak.ErrInvalidExpectedVersion},
		{"canceled context", canceled, ok, []batpak.Event{good}, nil, context.Canceled},
		{"conflict", bg, ok, []batpak.Event{good}, []batpak.AppendOption{batpak.ExpectVersion(batpak.NoStream)}, batpak.ErrVersionConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := s.Append(tc.ctx, tc.coord, tc.events, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("Append: error %v, want %v", err, tc.want)
			}
			// The same request as a batch, after an item that is fine.
			items := []batpak.BatchItem{{Coordinate: co("t", "new"), Event: good}}
			for _, ev := range tc.events {
				items = append(items, batpak.BatchItem{Coordinate: tc.coord, Event: ev})
			}
			if len(tc.events) == 0 {
				items = nil
			}
			if tc.want == batpak.ErrVersionConflict {
				items[1].Expected = batpak.NoStream
			}
			_, err = s.AppendBatch(tc.ctx, items, tc.opts...)
			if !errors.Is(err, tc.want) {
				t.Fatalf("AppendBatch: error %v, want %v", err, tc.want)
			}
			checkUnchanged(t, s, last, versions)
		})
	}
	_, err := s.Append(bg, ok, []batpak.Event{unencodable})
	if err == nil || s.LastSequence() != last {
		t.Fatalf("a payload msgpack cannot encode: error %v, last sequence %d", err, s.LastSequence())
	}

	// A payload of exactly the limit is stored; the refused appends used
	// no sequence.
	rs := mustAppend(t, s, ok, []batpak.Event{{Kind: kindB, Payload: batpak.RawPayload(make([]byte, limit))}})
	if rs[0].Sequence != last+1 || rs[0].Version != 2 {
		t.Fatalf("append after the refused ones: sequence %d version %d, want %d and 2", rs[0].Sequence, rs[0].Version, last+1)
	}
}

// TestExpectedVersion: every expectation against streams of 0, 1 and 2
// events; a conflict carries the actual version and writes nothing.
func TestExpectedVersion(t *testing.T) {
	tests := []struct {
		name     string
		pre      int
		expected batpak.ExpectedVersion
		events   int
		ok       bool
	}{
		{"any on new", 0, batpak.Any, 1, true},
		{"any on existing", 2, batpak.Any, 1, true},
		{"nil on existing", 2, nil, 2, true},
		{"nostream on new", 0, batpak.NoStream, 3, true},
		{"nostream on existing", 2, batpak.NoStream, 1, false},
		{"exists on new", 0, batpak.StreamExists, 1, false},
		{"exists on existing", 1, batpak.StreamExists, 1, true},
		{"exactly 0 on new", 0, batpak.Exactly(0), 1, true},
		{"exactly 1 on new", 0, batpak.Exactly(1), 1, false},
		{"exactly 1 on 1", 1, batpak.Exactly(1), 2, true},
		{"exactly 1 on 2", 2, batpak.Exactly(1), 1, false},
		{"exactly 3 on 2", 2, batpak.Exactly(3), 1, false},
		{"largest exactly", 2, batpak.Exactly(math.MaxInt64), 1, false},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			c := co("t", "s")
			if tc.pre > 0 {
				mustAppend(t, s, c, evs(kindA, tc.pre))
			}
			rs, err := s.Append(bg, c, evs(kindB, tc.events), batpak.ExpectVersion(tc.expected))
			if !tc.ok {
				checkConflict(t, err, c, tc.expected, uint64(tc.pre))
				checkUnchanged(t, s, uint64(tc.pre), map[batpak.Coordinate]uint64{c: uint64(tc.pre)})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var vs, seqs []uint64
			for _, r := range rs {
				vs, seqs = append(vs, r.Version), append(seqs, r.Sequence)
			}
			want := span(uint64(tc.pre+1), uint64(tc.pre+tc.events))
			if !slices.Equal(vs, want) || !slices.Equal(seqs, want) {
				t.Fatalf("versions %v, sequences %v, want %v", vs, seqs, want)
			}
		})
	}
}

// TestBatchExpectedVersion: items are checked in order, a later item sees
// the versions of the earlier ones, and one conflict fails the batch.
func TestBatchExpectedVersion(t *testing.T) {
	x, y := co("t", "x"), co("t", "y")
	ev := batpak.Event{Kind: kindA, Payload: 0}
	tests := []struct {
		name     string
		items    []batpak.BatchItem
		versions []uint64 // of the receipts; nil: a conflict
		conflict batpak.Coordinate
		actual   uint64
	}{
		{"in order", []batpak.BatchItem{
			{Coordinate: x, Event: ev, Expected: batpak.NoStream},
			{Coordinate: x, Event: ev, Expected: batpak.Exactly(1)},
			{Coordinate: y, Event: ev, Expected: batpak.NoStream},
			{Coordinate: x, Event: ev, Expected: batpak.Exactly(2)},
			{Coordinate: y, Event: ev, Expected: batpak.StreamExists},
			{Coordinate: co("t", "z"), Event: ev},
		}, []uint64{1, 2, 1, 3, 2, 1}, batpak.Coordinate{}, 0},
		{"the earlier item moved the stream", []batpak.BatchItem{
			{Coordinate: x, Event: ev, Expected: batpak.NoStream},
			{Coordinate: x, Event: ev, Expected: batpak.NoStream},
		}, nil, x, 1},
		{"last item conflicts", []batpak.BatchItem{
			{Coordinate: x, Event: ev},
			{Coordinate: y, Event: ev},
			{Coordinate: y, Event: ev, Expected: batpak.Exactly(5)},
		}, nil, y, 1},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			s := newStore(t)
			rs, err := s.AppendBatch(bg, tc.items)
			if tc.versions == nil {
				checkConflict(t, err, tc.conflict, tc.items[len(tc.items)-1].Expected, tc.actual)
				checkUnchanged(t, s, 0, map[batpak.Coordinate]uint64{x: 0, y: 0})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			for i, r := range rs {
				if r.Version != tc.versions[i] || r.Sequence != uint64(i+1) {
					t.Fatalf("item %d: sequence %d version %d, want %d and %d", i, r.Sequence, r.Version, i+1, tc.versions[i])
				}
			}
		})
	}
}

// TestIdempotency: a committed key answers with the original receipts
// whatever the retry carries, across Append and AppendBatch, in its own
// scope only; a refused append does not use its key up.
func TestIdempotency(t *testing.T) {
	s := newStore(t)
	key := batpak.WithIdempotencyKey
	a, b := co("s1", "a"), co("s1", "b")
	r1 := mustAppend(t, s, a, evs(kindA, 2), key("k1"), batpak.ExpectVersion(batpak.NoStream))
	b1, err := s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: a, Event: evs(kindB, 1)[0]}, {Coordinate: b, Event: evs(kindB, 1)[0]}}, key("b1"))
	if err != nil {
		t.Fatal(err)
	}
	last := s.LastSequence()

	retries := []struct {
		name string
		do   func() ([]batpak.Receipt, error)
		want []batpak.Receipt
	}{
		{"same request, stale expectation", func() ([]batpak.Receipt, error) {
			return s.Append(bg, a, evs(kindA, 2), key("k1"), batpak.ExpectVersion(batpak.NoStream))
		}, r1},
		{"other stream, same scope", func() ([]batpak.Receipt, error) {
			return s.Append(bg, b, evs(kindC, 5), key("k1"))
		}, r1},
		{"batch key through Append", func() ([]batpak.Receipt, error) {
			return s.Append(bg, a, evs(kindA, 1), key("b1"))
		}, b1},
		{"append key through AppendBatch", func() ([]batpak.Receipt, error) {
			return s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: b, Event: evs(kindA, 1)[0]}}, key("k1"))
		}, r1},
		{"batch whose first item is in the key's scope", func() ([]batpak.Receipt, error) {
			return s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: a, Event: evs(kindA, 1)[0]}, {Coordinate: co("s2", "a"), Event: evs(kindA, 1)[0]}}, key("b1"))
		}, b1},
	}
	for _, r := range retries {
		rs, err := r.do()
		if err != nil || !slices.Equal(rs, r.want) {
			t.Fatalf("%s: %v %v, want the original receipts %v", r.name, rs, err, r.want)
		}
	}
	checkUnchanged(t, s, last, map[batpak.Coordinate]uint64{a: 3, b: 1})

	// The key in another scope is another key, also as a batch's first item.
	other := mustAppend(t, s, co("s2", "a"), evs(kindA, 1), key("k1"))
	if other[0].Sequence != last+1 {
		t.Fatalf("k1 in scope s2 got sequence %d, want %d", other[0].Sequence, last+1)
	}
	ob, err := s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: co("s3", "a"), Event: evs(kindA, 1)[0]}, {Coordinate: a, Event: evs(kindA, 1)[0]}}, key("b1"))
	if err != nil || ob[0].Sequence != last+2 {
		t.Fatalf("b1 in scope s3: %v %v", ob, err)
	}

	// A refused append leaves its key unused.
	_, err = s.Append(bg, a, evs(kindA, 1), key("k2"), batpak.ExpectVersion(batpak.Exactly(99)))
	checkConflict(t, err, a, batpak.Exactly(99), 4)
	r2 := mustAppend(t, s, a, evs(kindA, 1), key("k2"))
	if r2[0].Version != 5 {
		t.Fatalf("append with the key of a refused one: version %d, want 5", r2[0].Version)
	}
	// Receipts handed out are copies.
	r2[0].Sequence = 999
	again := mustAppend(t, s, a, evs(kindA, 1), key("k2"))
	if again[0].Sequence == 999 {
		t.Fatal("changing a receipt changed the store's copy")
	}
}

// TestCorrelation: the first event of an append is the root of a new
// group unless the append names a correlation or a committed cause, whose
// group it joins; Correlated and CausedBy index the links.
func TestCorrelation(t *testing.T) {
	s := newStore(t)
	c := func(e string) batpak.Coordinate { return co("t", e) }
	a := mustAppend(t, s, c("x"), evs(kindA, 2))
	b := mustAppend(t, s, c("y"), evs(kindB, 1), batpak.WithCausation(a[1].EventID))
	custom := batpak.Receipt{}.EventID
	custom[0], custom[15] = 0x01, 0x02
	d := mustAppend(t, s, c("x"), evs(kindC, 1), batpak.WithCorrelation(custom), batpak.WithCausation(a[0].EventID))
	unknown := custom
	unknown[1] = 0x03
	u := mustAppend(t, s, c("w"), evs(kindC, 2), batpak.WithCausation(unknown))
	f, err := s.AppendBatch(bg, []batpak.BatchItem{
		{Coordinate: c("p"), Event: evs(kindC, 1)[0]},
		{Coordinate: c("q"), Event: evs(kindC, 1)[0], CausationID: u[0].EventID},
		{Coordinate: c("r"), Event: evs(kindC, 1)[0], CorrelationID: custom},
	}, batpak.WithCausation(b[0].EventID))
	if err != nil {
		t.Fatal(err)
	}
	g, err := s.AppendBatch(bg, []batpak.BatchItem{{Coordinate: c("p"), Event: evs(kindC, 1)[0]}, {Coordinate: c("q"), Event: evs(kindC, 1)[0]}})
	if err != nil {
		t.Fatal(err)
	}

	root := a[0].EventID
	var none batpak.Receipt
	tests := []struct {
		name              string
		r                 batpak.Receipt
		correlation, caus batpak.Receipt // their EventIDs are wanted
	}{
		{"root", a[0], a[0], none},
		{"second event of the root's append", a[1], a[0], none},
		{"caused by the root's group", b[0], a[0], a[1]},
		{"batch item with the default cause", f[0], a[0], b[0]},
		{"batch item with its own cause", f[1], u[0], u[0]},
		{"batch root without options", g[0], g[0], none},
		{"batch second without options", g[1], g[0], none},
	}
	for _, tc := range tests {
		rec, err := s.Get(bg, tc.r.EventID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.CorrelationID != tc.correlation.EventID || rec.CausationID != tc.caus.EventID {
			t.Errorf("%s: correlation %s causation %s, want %s and %s", tc.name, rec.CorrelationID, rec.CausationID, tc.correlation.EventID, tc.caus.EventID)
		}
	}
	for _, r := range []batpak.Receipt{d[0], f[2]} {
		if rec, _ := s.Get(bg, r.EventID); rec.CorrelationID != custom {
			t.Errorf("event %d: correlation %s, want the explicit %s", r.Sequence, rec.CorrelationID, custom)
		}
	}
	for _, r := range u {
		if rec, _ := s.Get(bg, r.EventID); rec.CorrelationID != u[0].EventID || rec.CausationID != unknown {
			t.Errorf("event %d of an append with an unknown cause: correlation %s causation %s", r.Sequence, rec.CorrelationID, rec.CausationID)
		}
	}

	seqs := func(rs ...batpak.Receipt) []uint64 {
		var out []uint64
		for _, r := range rs {
			out = append(out, r.Sequence)
		}
		return out
	}
	links := []struct {
		name      string
		got, want []uint64
	}{
		{"Correlated(root)", s.Correlated(root), seqs(a[1], b[0], f[0])},
		{"Correlated(custom)", s.Correlated(custom), seqs(d[0], f[2])},
		{"Correlated(u)", s.Correlated(u[0].EventID), seqs(u[1], f[1])},
		{"Correlated(g)", s.Correlated(g[0].EventID), seqs(g[1])},
		{"CausedBy(root)", s.CausedBy(root), seqs(d[0])},
		{"CausedBy(a1)", s.CausedBy(a[1].EventID), seqs(b[0])},
		{"CausedBy(b)", s.CausedBy(b[0].EventID), seqs(f[0], f[2])},
		{"CausedBy(unknown)", s.CausedBy(unknown), seqs(u[0], u[1])},
		{"CausedBy(leaf)", s.CausedBy(g[1].EventID), nil},
	}
	for _, l := range links {
		if !slices.Equal(l.got, l.want) {
			t.Errorf("%s = %v, want %v", l.name, l.got, l.want)
		}
	}
}
