package storetest

import (
	"context"
	"encoding/binary"
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// checkConflict fails unless err is a version conflict on stream with the
// given expected and actual versions.
func checkConflict(t testing.TB, err error, stream batpak.Coordinate, expected batpak.ExpectedVersion, actual uint64) {
	t.Helper()
	if !errors.Is(err, batpak.ErrVersionConflict) {
		t.Fatalf("error %v, want a version conflict", err)
	}
	var vc *batpak.VersionConflictError
	if !errors.As(err, &vc) {
		t.Fatalf("error %v is not a *VersionConflictError", err)
	}
	if vc.Stream != stream || vc.Expected != expected || vc.Actual != actual {
		t.Fatalf("conflict %+v, want stream %v, expected %v, actual %d", *vc, stream, expected, actual)
	}
}

// testExpectedVersion: Any, NoStream, StreamExists and Exactly(n) against
// streams of 0, 1 and 2 events; conflicts carry the actual version and
// write nothing.
func testExpectedVersion(t *testing.T, e *env) {
	s := e.s
	tests := []struct {
		name     string
		pre      int // events in the stream before
		expected batpak.ExpectedVersion
		events   int
		ok       bool
	}{
		{"any on new", 0, batpak.Any, 1, true},
		{"any on existing", 2, batpak.Any, 1, true},
		{"nostream on new", 0, batpak.NoStream, 1, true},
		{"nostream on existing", 2, batpak.NoStream, 1, false},
		{"exists on new", 0, batpak.StreamExists, 1, false},
		{"exists on existing", 2, batpak.StreamExists, 1, true},
		{"exactly 0 on new", 0, batpak.Exactly(0), 1, true},
		{"exactly 0 on existing", 2, batpak.Exactly(0), 1, false},
		{"exactly 1 on new", 0, batpak.Exactly(1), 1, false}, // NoStream is not "exactly version 1"
		{"exactly 1 on 1", 1, batpak.Exactly(1), 1, true},
		{"exactly 2 on 2", 2, batpak.Exactly(2), 1, true},
		{"exactly 1 on 2", 2, batpak.Exactly(1), 1, false},
		{"exactly 3 on 2", 2, batpak.Exactly(3), 1, false},
		{"exactly 2 on 2, 3 events", 2, batpak.Exactly(2), 3, true},
		{"nostream on new, 3 events", 0, batpak.NoStream, 3, true},
		{"exactly 1 on 2, 3 events", 2, batpak.Exactly(1), 3, false},
		// A nil ExpectedVersion is Any, as in a BatchItem.
		{"nil on new", 0, nil, 1, true},
		{"nil on existing", 2, nil, 2, true},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			entity := "ev:" + tc.name
			if tc.pre > 0 {
				mustAppend(t, s, coord(entity), evs(kindOpened, tc.pre))
			}
			last := s.LastSequence()
			rs, err := s.Append(context.Background(), coord(entity), evs(kindDeposited, tc.events), batpak.ExpectVersion(tc.expected))
			if !tc.ok {
				checkConflict(t, err, coord(entity), tc.expected, uint64(tc.pre))
				checkUnchanged(t, s, last, map[string]uint64{entity: uint64(tc.pre)})
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			var vs []uint64
			for _, r := range rs {
				vs = append(vs, r.Version)
			}
			if want := span(uint64(tc.pre+1), uint64(tc.pre+tc.events)); !slices.Equal(vs, want) {
				t.Fatalf("versions %v, want %v", vs, want)
			}
		})
	}

	// A stale expectation conflicts with the version another writer made.
	mustAppend(t, s, coord("ev:stale"), evs(kindOpened, 1))
	v := s.StreamVersion(coord("ev:stale"))
	mustAppend(t, s, coord("ev:stale"), evs(kindDeposited, 2), batpak.ExpectVersion(batpak.Exactly(v)))
	_, err := s.Append(context.Background(), coord("ev:stale"), evs(kindDeposited, 1), batpak.ExpectVersion(batpak.Exactly(v)))
	checkConflict(t, err, coord("ev:stale"), batpak.Exactly(v), 3)
}

// testBatchExpectedVersion: batch items are checked in order, later items
// see the versions of earlier ones, and one conflict fails the batch.
func testBatchExpectedVersion(t *testing.T, e *env) {
	s := e.s
	rs := mustBatch(t, s, []batpak.BatchItem{
		{Coordinate: coord("bv:x"), Event: ev(kindOpened, 0), Expected: batpak.NoStream},
		{Coordinate: coord("bv:x"), Event: ev(kindDeposited, 1), Expected: batpak.Exactly(1)},
		{Coordinate: coord("bv:y"), Event: ev(kindOpened, 0), Expected: batpak.NoStream},
		{Coordinate: coord("bv:x"), Event: ev(kindDeposited, 2), Expected: batpak.Exactly(2)},
		{Coordinate: coord("bv:y"), Event: ev(kindDeposited, 1), Expected: batpak.StreamExists},
		{Coordinate: coord("bv:z"), Event: ev(kindOpened, 0)}, // zero Expected is Any
	})
	wantVersions := []uint64{1, 2, 1, 3, 2, 1}
	for i, r := range rs {
		if r.Version != wantVersions[i] {
			t.Fatalf("batch item %d: version %d, want %d", i, r.Version, wantVersions[i])
		}
		if r.Sequence != rs[0].Sequence+uint64(i) {
			t.Fatalf("batch receipts are not consecutive: %+v", rs)
		}
	}
	last := s.LastSequence()
	versions := map[string]uint64{"bv:x": 3, "bv:y": 2, "bv:z": 1}
	_, err := s.AppendBatch(context.Background(), []batpak.BatchItem{
		{Coordinate: coord("bv:x"), Event: ev(kindDeposited, 3), Expected: batpak.Exactly(3)},
		{Coordinate: coord("bv:z"), Event: ev(kindDeposited, 1), Expected: batpak.Exactly(1)},
		{Coordinate: coord("bv:y"), Event: ev(kindDeposited, 3), Expected: batpak.Exactly(5)},
	})
	checkConflict(t, err, coord("bv:y"), batpak.Exactly(5), 2)
	checkUnchanged(t, s, last, versions)

	// An item's expectation counts the batch's own earlier items.
	_, err = s.AppendBatch(context.Background(), []batpak.BatchItem{
		{Coordinate: coord("bv:x"), Event: ev(kindDeposited, 3), Expected: batpak.Exactly(3)},
		{Coordinate: coord("bv:x"), Event: ev(kindDeposited, 4), Expected: batpak.Exactly(3)},
	})
	checkConflict(t, err, coord("bv:x"), batpak.Exactly(3), 4)
	checkUnchanged(t, s, last, versions)
}

// testValidation: bad coordinates, empty appends, reserved kinds, bad
// idempotency keys and bad metadata are refused with typed errors and
// write nothing.
func testValidation(t *testing.T, e *env) {
	s := e.s
	ctx := context.Background()
	mustAppend(t, s, coord("val:ok"), evs(kindOpened, 1))
	last := s.LastSequence()
	versions := map[string]uint64{"val:ok": 1}
	good := evs(kindDeposited, 2)

	badCoords := []batpak.Coordinate{
		{Entity: "", Scope: "test"},
		{Entity: "val:ok", Scope: ""},
		{Entity: "val:\x01", Scope: "test"},
		{Entity: "val:ok", Scope: "te\nst"},
		{Entity: strings.Repeat("e", batpak.MaxCoordinateLen+1), Scope: "test"},
		{Entity: "val:\xff", Scope: "test"},
	}
	for _, c := range badCoords {
		_, err := s.Append(ctx, c, good)
		var ce *batpak.CoordinateError
		if !errors.Is(err, batpak.ErrInvalidCoordinate) || !errors.As(err, &ce) {
			t.Errorf("Append to %q/%q: error %v, want a *CoordinateError", c.Scope, c.Entity, err)
		}
		_, err = s.AppendBatch(ctx, []batpak.BatchItem{
			{Coordinate: coord("val:ok"), Event: ev(kindDeposited, 1)},
			{Coordinate: c, Event: ev(kindDeposited, 2)},
		})
		if !errors.Is(err, batpak.ErrInvalidCoordinate) || !errors.As(err, &ce) {
			t.Errorf("AppendBatch to %q/%q: error %v, want a *CoordinateError", c.Scope, c.Entity, err)
		}
	}
	if _, err := batpak.NewCoordinate(strings.Repeat("e", batpak.MaxCoordinateLen), "ünïcode scope"); err != nil {
		t.Errorf("a coordinate of the maximum length is refused: %v", err)
	}

	_, err := s.Append(ctx, coord("val:ok"), nil)
	wantErrIs(t, err, batpak.ErrEmptyAppend, "Append without events")
	_, err = s.AppendBatch(ctx, nil)
	wantErrIs(t, err, batpak.ErrEmptyAppend, "AppendBatch without items")

	reserved := batpak.Event{Kind: kind.Kind(0x0001), Payload: 1}
	_, err = s.Append(ctx, coord("val:ok"), []batpak.Event{ev(kindDeposited, 1), reserved})
	wantErrIs(t, err, batpak.ErrReservedKind, "Append of a system kind")
	_, err = s.AppendBatch(ctx, []batpak.BatchItem{
		{Coordinate: coord("val:ok"), Event: ev(kindDeposited, 1)},
		{Coordinate: coord("val:ok"), Event: reserved},
	})
	wantErrIs(t, err, batpak.ErrReservedKind, "AppendBatch of a system kind")

	for _, key := range []string{strings.Repeat("k", batpak.MaxIdempotencyKeyLen+1), "bad\xffkey"} {
		_, err = s.Append(ctx, coord("val:ok"), good, batpak.WithIdempotencyKey(key))
		wantErrIs(t, err, batpak.ErrInvalidIdempotencyKey, "Append with a bad idempotency key")
		_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: coord("val:ok"), Event: ev(kindDeposited, 1)}}, batpak.WithIdempotencyKey(key))
		wantErrIs(t, err, batpak.ErrInvalidIdempotencyKey, "AppendBatch with a bad idempotency key")
	}

	badMeta := batpak.Event{Kind: kindDeposited, Payload: 1, Metadata: map[string]string{"reason": "\xff"}}
	_, err = s.Append(ctx, coord("val:ok"), []batpak.Event{ev(kindDeposited, 1), badMeta})
	wantErrIs(t, err, batpak.ErrInvalidMetadata, "Append with non-UTF-8 metadata")
	checkUnchanged(t, s, last, versions)

	// Effects and the longest key are ordinary events.
	mustAppend(t, s, coord("val:ok"), []batpak.Event{{Kind: kindEffect, Payload: "sent"}},
		batpak.WithIdempotencyKey(strings.Repeat("k", batpak.MaxIdempotencyKeyLen)))
	if v := s.StreamVersion(coord("val:ok")); v != 2 {
		t.Fatalf("StreamVersion = %d, want 2", v)
	}
}

// rawBin returns a msgpack bin 32 value of exactly n bytes (n ≥ 5).
func rawBin(n int) batpak.RawPayload {
	b := make([]byte, n)
	b[0] = 0xc6
	binary.BigEndian.PutUint32(b[1:5], uint32(n-5))
	for i := 5; i < n; i++ {
		b[i] = byte(i)
	}
	return b
}

// testPayloadLimit: a payload of the limit is stored, one byte more is
// refused with ErrPayloadTooLarge, also inside a multi-event append or a
// batch, which then write nothing.
func testPayloadLimit(t *testing.T, e *env) {
	limit := e.h.MaxPayload
	if limit == 0 {
		t.Skip("Harness.MaxPayload is not set")
	}
	if limit < 5 {
		t.Fatalf("Harness.MaxPayload %d is too small to test", limit)
	}
	s := e.s
	ctx := context.Background()
	rs := mustAppend(t, s, coord("size:s"), []batpak.Event{{Kind: kindNoted, Payload: rawBin(limit)}})
	rec, err := s.Get(bgctx, rs[0].EventID)
	if err != nil {
		t.Fatal(err)
	}
	if len(rec.Payload) != limit {
		t.Fatalf("payload of %d bytes read back as %d", limit, len(rec.Payload))
	}
	var got []byte
	if err := rec.Decode(&got); err != nil || len(got) != limit-5 {
		t.Fatalf("decode the largest payload: %d bytes, %v", len(got), err)
	}
	last := s.LastSequence()
	big := batpak.Event{Kind: kindNoted, Payload: rawBin(limit + 1)}
	_, err = s.Append(ctx, coord("size:s"), []batpak.Event{big})
	wantErrIs(t, err, batpak.ErrPayloadTooLarge, "Append over the limit")
	_, err = s.Append(ctx, coord("size:s"), []batpak.Event{ev(kindNoted, 1), big})
	wantErrIs(t, err, batpak.ErrPayloadTooLarge, "multi-event Append over the limit")
	_, err = s.Append(ctx, coord("size:s"), []batpak.Event{{Kind: kindNoted, Payload: make([]byte, limit)}})
	wantErrIs(t, err, batpak.ErrPayloadTooLarge, "Append of a value encoding over the limit")
	_, err = s.AppendBatch(ctx, []batpak.BatchItem{
		{Coordinate: coord("size:t"), Event: ev(kindNoted, 1)},
		{Coordinate: coord("size:s"), Event: big},
	})
	wantErrIs(t, err, batpak.ErrPayloadTooLarge, "AppendBatch over the limit")
	checkUnchanged(t, s, last, map[string]uint64{"size:s": 1, "size:t": 0})
}

// testCanceledContext: an append whose context has ended fails with the
// context's error and writes nothing.
func testCanceledContext(t *testing.T, e *env) {
	s := e.s
	mustAppend(t, s, coord("ctx:s"), evs(kindOpened, 1))
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	last := s.LastSequence()
	for range 20 {
		_, err := s.Append(ctx, coord("ctx:s"), evs(kindDeposited, 1))
		wantErrIs(t, err, context.Canceled, "Append with a canceled context")
		_, err = s.AppendBatch(ctx, []batpak.BatchItem{{Coordinate: coord("ctx:s"), Event: ev(kindDeposited, 1)}})
		wantErrIs(t, err, context.Canceled, "AppendBatch with a canceled context")
	}
	checkUnchanged(t, s, last, map[string]uint64{"ctx:s": 1})
	rs := mustAppend(t, s, coord("ctx:s"), evs(kindDeposited, 1))
	if rs[0].Sequence != last+1 || rs[0].Version != 2 {
		t.Fatalf("append after canceled ones got sequence %d version %d, want %d and 2", rs[0].Sequence, rs[0].Version, last+1)
	}
}
