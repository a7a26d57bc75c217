package memstore_test

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"slices"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
)

// TestReadStream: from, Backward and Limit select the versions the
// contract says, on a stream of five events among others.
func TestReadStream(t *testing.T) {
	s := newStore(t)
	c := co("t", "rs")
	for i := range 5 {
		mustAppend(t, s, c, evs(kindA, 1))
		mustAppend(t, s, co("t", fmt.Sprint("other", i)), evs(kindB, 1))
	}
	tests := []struct {
		from uint64
		opts []batpak.ReadOption
		want []uint64
	}{
		{0, nil, []uint64{1, 2, 3, 4, 5}},
		{1, nil, []uint64{1, 2, 3, 4, 5}},
		{3, nil, []uint64{3, 4, 5}},
		{5, nil, []uint64{5}},
		{6, nil, nil},
		{1 << 62, nil, nil},
		{2, []batpak.ReadOption{batpak.Limit(2)}, []uint64{2, 3}},
		{0, []batpak.ReadOption{batpak.Backward()}, []uint64{5, 4, 3, 2, 1}},
		{3, []batpak.ReadOption{batpak.Backward()}, []uint64{3, 2, 1}},
		{9, []batpak.ReadOption{batpak.Backward()}, []uint64{5, 4, 3, 2, 1}},
		{0, []batpak.ReadOption{batpak.Backward(), batpak.Limit(2)}, []uint64{5, 4}},
		{0, []batpak.ReadOption{batpak.Limit(9)}, []uint64{1, 2, 3, 4, 5}},
	}
	for _, tc := range tests {
		got := collect(t, s.ReadStream(bg, c, tc.from, tc.opts...))
		if !slices.Equal(versionsOf(got), tc.want) {
			t.Errorf("ReadStream(from %d, %d options) = versions %v, want %v", tc.from, len(tc.opts), versionsOf(got), tc.want)
		}
		for _, rec := range got {
			if rec.Coordinate != c || rec.Sequence != 2*rec.Version-1 {
				t.Errorf("version %d is %v at sequence %d", rec.Version, rec.Coordinate, rec.Sequence)
			}
		}
	}
	if got := collect(t, s.ReadStream(bg, co("t", "unknown"), 0)); len(got) != 0 {
		t.Errorf("an unknown stream yielded %d events", len(got))
	}
}

// TestQuery: each field of a region narrows the selection, in global
// order; ReadAll and Replay are queries from a sequence.
func TestQuery(t *testing.T) {
	var now time.Time
	base := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	s := newStore(t, memstore.WithClock(func() time.Time { return now }))
	for i := range 12 {
		now = base.Add(time.Duration(i) * time.Second)
		scope := []string{"eu", "us"}[i%2]
		entity := []string{"acct:1", "acct:2", "user:1"}[i%3]
		k := []kind.Kind{kindA, kindB, kindC, kindB}[i%4]
		mustAppend(t, s, co(scope, entity), []batpak.Event{{Kind: k, Payload: i}})
	}
	tests := []struct {
		name string
		r    batpak.Region
		want []uint64
	}{
		{"everything", batpak.Region{}, span(1, 12)},
		{"entity in every scope", batpak.Region{Entity: "acct:1"}, []uint64{1, 4, 7, 10}},
		{"entity in one scope", batpak.Region{Entity: "acct:1", Scope: "eu"}, []uint64{1, 7}},
		{"prefix", batpak.Region{EntityPrefix: "acct:"}, []uint64{1, 2, 4, 5, 7, 8, 10, 11}},
		{"scope", batpak.Region{Scope: "us"}, []uint64{2, 4, 6, 8, 10, 12}},
		{"kinds", batpak.Region{Kinds: []kind.Kind{kindA, kindC}}, []uint64{1, 3, 5, 7, 9, 11}},
		{"sequence range", batpak.Region{FromSequence: 4, ToSequence: 6}, []uint64{4, 5, 6}},
		{"ToSequence past the end", batpak.Region{FromSequence: 11, ToSequence: 99}, []uint64{11, 12}},
		{"time range", batpak.Region{After: base.Add(2 * time.Second), Before: base.Add(5 * time.Second)}, []uint64{3, 4, 5}},
		{"everything at once", batpak.Region{EntityPrefix: "acct", Scope: "eu", Kinds: []kind.Kind{kindA}, FromSequence: 2}, []uint64{5}},
		{"nothing", batpak.Region{Entity: "nobody"}, nil},
	}
	for _, tc := range tests {
		if got := seqsOf(collect(t, s.Query(bg, tc.r))); !slices.Equal(got, tc.want) {
			t.Errorf("Query(%s) = %v, want %v", tc.name, got, tc.want)
		}
		from := uint64(3)
		want := slices.DeleteFunc(slices.Clone(tc.want), func(seq uint64) bool { return seq < from })
		if got := seqsOf(collect(t, s.Replay(bg, tc.r, from))); !slices.Equal(got, want) {
			t.Errorf("Replay(%s, 3) = %v, want %v", tc.name, got, want)
		}
	}
	if got := seqsOf(collect(t, s.ReadAll(bg, 10))); !slices.Equal(got, []uint64{10, 11, 12}) {
		t.Errorf("ReadAll(10) = %v", got)
	}
	recs := collect(t, s.ReadAll(bg, 0))
	for i, rec := range recs {
		if !rec.Timestamp.Equal(base.Add(time.Duration(i) * time.Second)) {
			t.Errorf("event %d stamped %v", rec.Sequence, rec.Timestamp)
		}
	}
}

// TestGet: every event is found by id and by sequence, the same record as
// the log holds; unknown ones are ErrNotFound.
func TestGet(t *testing.T) {
	s := newStore(t)
	var rs []batpak.Receipt
	for i := range 4 {
		rs = append(rs, mustAppend(t, s, co("t", fmt.Sprint("g", i%2)), evs(kindA, 1+i%2))...)
	}
	all := collect(t, s.ReadAll(bg, 0))
	seen := make(map[uuid.UUID]bool)
	for i, r := range rs {
		byID, err := s.Get(bg, r.EventID)
		if err != nil {
			t.Fatal(err)
		}
		bySeq, err := s.GetSequence(bg, r.Sequence)
		if err != nil {
			t.Fatal(err)
		}
		want := all[i]
		for _, got := range []batpak.Record{byID, bySeq} {
			if got.ID != r.EventID || got.Sequence != r.Sequence || got.Version != r.Version || got.Hash != r.Hash ||
				fmt.Sprint(got) != fmt.Sprint(want) || !slices.Equal(got.Payload, want.Payload) {
				t.Fatalf("event %d: got %+v, want %+v and receipt %+v", i, got, want, r)
			}
		}
		if byID.ID.Version() != 7 || seen[byID.ID] {
			t.Fatalf("event id %s is not a new UUIDv7", byID.ID)
		}
		seen[byID.ID] = true
		if i > 0 && byID.ID.String() <= rs[i-1].EventID.String() {
			t.Fatalf("event ids do not increase with sequences: %s after %s", byID.ID, rs[i-1].EventID)
		}
	}
	for _, id := range []uuid.UUID{uuid.Nil, uuid.New()} {
		if _, err := s.Get(bg, id); !errors.Is(err, batpak.ErrNotFound) {
			t.Errorf("Get(%s): %v, want ErrNotFound", id, err)
		}
	}
	for _, seq := range []uint64{0, uint64(len(rs)) + 1, 1 << 63} {
		if _, err := s.GetSequence(bg, seq); !errors.Is(err, batpak.ErrNotFound) {
			t.Errorf("GetSequence(%d): %v, want ErrNotFound", seq, err)
		}
	}
}

// TestRecordsAreCopies: neither the caller's event after Append nor a
// record after a read shares memory with what the store holds.
func TestRecordsAreCopies(t *testing.T) {
	s := newStore(t)
	c := co("t", "copy")
	raw := batpak.RawPayload{0x93, 1, 2, 3}
	meta := map[string]string{"who": "alice"}
	rs := mustAppend(t, s, c, []batpak.Event{{Kind: kindA, Payload: raw, Metadata: meta}, {Kind: kindA, Metadata: map[string]string{}}})
	raw[1], meta["who"] = 9, "mallory"

	sub, err := s.Subscribe(batpak.Region{}, 4)
	if err != nil {
		t.Fatal(err)
	}
	mustAppend(t, s, c, []batpak.Event{{Kind: kindB, Payload: "x", Metadata: map[string]string{"k": "v"}}})
	pushed := <-sub.Events()

	reads := map[string]func() batpak.Record{
		"Get": func() batpak.Record {
			rec, _ := s.Get(bg, rs[0].EventID)
			return rec
		},
		"ReadStream": func() batpak.Record { return collect(t, s.ReadStream(bg, c, 0))[0] },
		"Query":      func() batpak.Record { return collect(t, s.Query(bg, batpak.Region{}))[0] },
		"Cursor": func() batpak.Record {
			rec, _, _ := s.Cursor(batpak.Region{}, 0).TryNext(bg)
			return rec
		},
	}
	for name, read := range reads {
		rec := read()
		if !slices.Equal(rec.Payload, []byte{0x93, 1, 2, 3}) || rec.Metadata["who"] != "alice" {
			t.Fatalf("%s: payload %x metadata %v: the caller's later changes reached the store", name, rec.Payload, rec.Metadata)
		}
		rec.Payload[1], rec.Metadata["who"] = 7, "eve"
	}
	pushed.Payload[0], pushed.Metadata["k"] = 0, "changed"
	if err := s.VerifyChain(bg, c); err != nil {
		t.Fatalf("after changing records read: %v", err)
	}
	if rec, _ := s.GetSequence(bg, 2); rec.Metadata != nil {
		t.Fatalf("empty metadata read back as %#v, want none", rec.Metadata)
	}
	if rec, _ := s.GetSequence(bg, 3); rec.Metadata["k"] != "v" {
		t.Fatalf("a subscriber's change reached the store: %v", rec.Metadata)
	}
}

// TestReadsHonourContext: every read with a context that has ended yields
// that context's error and nothing else, and so does a read whose context
// ends part way.
func TestReadsHonourContext(t *testing.T) {
	s := newStore(t)
	c := co("t", "ctx")
	rs := mustAppend(t, s, c, evs(kindA, 5))
	ctx, cancel := context.WithCancel(bg)
	cancel()
	reads := map[string]func(context.Context) error{
		"ReadStream": func(ctx context.Context) error { return firstErr(s.ReadStream(ctx, c, 0)) },
		"ReadAll":    func(ctx context.Context) error { return firstErr(s.ReadAll(ctx, 0)) },
		"Query":      func(ctx context.Context) error { return firstErr(s.Query(ctx, batpak.Region{})) },
		"Replay":     func(ctx context.Context) error { return firstErr(s.Replay(ctx, batpak.Region{}, 0)) },
		"Follow":     func(ctx context.Context) error { return firstErr(s.Follow(ctx, batpak.Region{}, 0)) },
		"Get": func(ctx context.Context) error {
			_, err := s.Get(ctx, rs[0].EventID)
			return err
		},
		"GetSequence": func(ctx context.Context) error {
			_, err := s.GetSequence(ctx, 1)
			return err
		},
		"Cursor.TryNext": func(ctx context.Context) error {
			_, _, err := s.Cursor(batpak.Region{}, 0).TryNext(ctx)
			return err
		},
		"Cursor.Next": func(ctx context.Context) error {
			_, err := s.Cursor(batpak.Region{}, 0).Next(ctx)
			return err
		},
		"VerifyChain": func(ctx context.Context) error { return s.VerifyChain(ctx, c) },
		"Sync":        func(ctx context.Context) error { return s.Sync(ctx) },
	}
	for name, read := range reads {
		if err := read(ctx); !errors.Is(err, context.Canceled) {
			t.Errorf("%s with a canceled context: %v, want context.Canceled", name, err)
		}
	}

	// Cancelled after two events: the read stops with the error.
	for name, seq := range map[string]func(context.Context) iter.Seq2[batpak.Record, error]{
		"ReadStream": func(ctx context.Context) iter.Seq2[batpak.Record, error] { return s.ReadStream(ctx, c, 0) },
		"Query":      func(ctx context.Context) iter.Seq2[batpak.Record, error] { return s.Query(ctx, batpak.Region{}) },
	} {
		ctx, cancel := context.WithCancel(bg)
		defer cancel()
		var n int
		var errs []error
		for _, err := range seq(ctx) {
			if err != nil {
				errs = append(errs, err)
				continue
			}
			if n++; n == 2 {
				cancel()
			}
		}
		if n != 2 || len(errs) != 1 || !errors.Is(errs[0], context.Canceled) {
			t.Errorf("%s cancelled after 2 events yielded %d and errors %v", name, n, errs)
		}
	}
}

// firstErr returns the error seq yields first; a record first is an error.
func firstErr(seq iter.Seq2[batpak.Record, error]) error {
	for rec, err := range seq {
		if err == nil {
			return fmt.Errorf("yielded %v", rec)
		}
		return err
	}
	return errors.New("yielded nothing")
}
