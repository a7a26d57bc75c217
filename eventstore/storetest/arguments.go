package storetest

import (
	"context"
	"errors"
	"math"
	"testing"

	"github.com/batpak-go/batpak"
)

// testBadArguments: an append with an argument no caller can mean fails
// with that argument's sentinel error and writes nothing, on a new stream
// as on one with events. An expected version that is none of Any,
// NoStream, StreamExists or Exactly(n) with n below 2^63 (an unsigned
// underflow, a negative value) is ErrInvalidExpectedVersion: never taken
// for another expectation, never reported as a version conflict. An
// idempotency key given empty is ErrInvalidIdempotencyKey, not an append
// without a key; metadata that is not UTF-8 is ErrInvalidMetadata.
func testBadArguments(t *testing.T, e *env) {
	s := e.s
	ctx := context.Background()
	mustAppend(t, s, coord("arg:one"), evs(kindOpened, 1))
	last := s.LastSequence()
	versions := map[string]uint64{"arg:one": 1, "arg:new": 0}

	var v uint64 // a stream version read as 0, then decremented
	badVersions := []struct {
		name     string
		expected batpak.ExpectedVersion
	}{
		{"Exactly(v-1) at v=0", batpak.Exactly(v - 1)},
		{"Exactly(2^64-1)", batpak.Exactly(math.MaxUint64)},     // the bits of Any
		{"Exactly(2^64-2)", batpak.Exactly(math.MaxUint64 - 1)}, // the bits of NoStream
		{"Exactly(2^64-3)", batpak.Exactly(math.MaxUint64 - 2)}, // the bits of StreamExists
		{"Exactly(2^63)", batpak.Exactly(1 << 63)},
	}

	type call struct {
		name string
		do   func() error
		want error
	}
	var calls []call
	appendCall := func(name, entity string, events []batpak.Event, want error, opts ...batpak.AppendOption) {
		calls = append(calls, call{name, func() error {
			_, err := s.Append(ctx, coord(entity), events, opts...)
			return err
		}, want})
	}
	batchCall := func(name string, want error, items []batpak.BatchItem, opts ...batpak.AppendOption) {
		calls = append(calls, call{name, func() error {
			_, err := s.AppendBatch(ctx, items, opts...)
			return err
		}, want})
	}

	for _, bv := range badVersions {
		want := batpak.ErrInvalidExpectedVersion
		opt := batpak.ExpectVersion(bv.expected)
		appendCall(bv.name+"/Append to a new stream", "arg:new", evs(kindDeposited, 1), want, opt)
		appendCall(bv.name+"/Append to a stream of one", "arg:one", evs(kindDeposited, 1), want, opt)
		appendCall(bv.name+"/Append of three events", "arg:one", evs(kindDeposited, 3), want, opt)
		batchCall(bv.name+"/AppendBatch item", want, []batpak.BatchItem{
			{Coordinate: coord("arg:one"), Event: ev(kindDeposited, 1), Expected: batpak.Exactly(1)},
			{Coordinate: coord("arg:new"), Event: ev(kindOpened, 0), Expected: bv.expected},
		})
		batchCall(bv.name+"/AppendBatch option", want, []batpak.BatchItem{
			{Coordinate: coord("arg:new"), Event: ev(kindOpened, 0)},
		}, opt)
	}

	emptyKeys := []struct {
		name string
		opts []batpak.AppendOption
	}{
		{"empty key", []batpak.AppendOption{batpak.WithIdempotencyKey("")}},
		{"key set, then empty", []batpak.AppendOption{batpak.WithIdempotencyKey("arg-k"), batpak.WithIdempotencyKey("")}},
		{"empty key, NoStream", []batpak.AppendOption{batpak.WithIdempotencyKey(""), batpak.ExpectVersion(batpak.NoStream)}},
	}
	for _, k := range emptyKeys {
		want := batpak.ErrInvalidIdempotencyKey
		appendCall(k.name+"/Append to a new stream", "arg:new", evs(kindDeposited, 1), want, k.opts...)
		appendCall(k.name+"/Append to a stream of one", "arg:one", evs(kindDeposited, 2), want, k.opts...)
		batchCall(k.name+"/AppendBatch", want, []batpak.BatchItem{
			{Coordinate: coord("arg:new"), Event: ev(kindOpened, 0)},
			{Coordinate: coord("arg:one"), Event: ev(kindDeposited, 1)},
		}, k.opts...)
	}

	badMeta := []struct {
		name string
		meta map[string]string
	}{
		{"value not UTF-8", map[string]string{"reason": "bad\xffvalue"}},
		{"key not UTF-8", map[string]string{"bad\xffkey": "fine"}},
		{"truncated rune", map[string]string{"note": "caf\xc3"}},
		{"one bad among good", map[string]string{"a": "ok", "b": "ünïcode", "c": "\xc0\xaf"}},
	}
	for _, m := range badMeta {
		want := batpak.ErrInvalidMetadata
		bad := batpak.Event{Kind: kindDeposited, Payload: 1, Metadata: m.meta}
		appendCall(m.name+"/Append", "arg:new", []batpak.Event{bad}, want)
		appendCall(m.name+"/Append, second event", "arg:one", []batpak.Event{ev(kindDeposited, 1), bad}, want)
		batchCall(m.name+"/AppendBatch", want, []batpak.BatchItem{
			{Coordinate: coord("arg:one"), Event: ev(kindDeposited, 1)},
			{Coordinate: coord("arg:new"), Event: bad},
		})
	}

	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			err := c.do()
			if !errors.Is(err, c.want) {
				t.Fatalf("error %v, want %v", err, c.want)
			}
			if errors.Is(err, batpak.ErrVersionConflict) {
				t.Fatalf("error %v is also a version conflict", err)
			}
		})
	}
	checkUnchanged(t, s, last, versions)

	// The largest valid Exactly is an ordinary expectation: a conflict.
	_, err := s.Append(ctx, coord("arg:one"), evs(kindDeposited, 1), batpak.ExpectVersion(batpak.Exactly(math.MaxInt64)))
	checkConflict(t, err, coord("arg:one"), batpak.Exactly(math.MaxInt64), 1)

	// The refused calls took nothing: the next append continues the
	// sequence and the stream, and the key it carries is still unused.
	rs := mustAppend(t, s, coord("arg:one"), evs(kindDeposited, 1),
		batpak.ExpectVersion(batpak.Exactly(1)), batpak.WithIdempotencyKey("arg-k"))
	if rs[0].Sequence != last+1 || rs[0].Version != 2 {
		t.Fatalf("append after the refused ones: sequence %d version %d, want %d and 2", rs[0].Sequence, rs[0].Version, last+1)
	}
	recs := collect(t, s.ReadStream(bgctx, coord("arg:one"), 0))
	if len(recs) != 2 {
		t.Fatalf("stream holds %d events, want 2: %v", len(recs), recs)
	}
}
