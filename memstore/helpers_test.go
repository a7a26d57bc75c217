package memstore_test

import (
	"context"
	"errors"
	"iter"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/memstore"
)

var (
	kindA = kind.Custom(1, 1)
	kindB = kind.Custom(1, 2)
	kindC = kind.Custom(2, 1)
)

var bg = context.Background()

// newStore returns a store that is closed when the test ends.
func newStore(t testing.TB, opts ...memstore.Option) *memstore.Store {
	t.Helper()
	s := memstore.New(opts...)
	t.Cleanup(func() {
		if err := s.Close(); err != nil && !errors.Is(err, batpak.ErrClosed) {
			t.Errorf("close: %v", err)
		}
	})
	return s
}

func co(scope, entity string) batpak.Coordinate {
	return batpak.Coordinate{Entity: entity, Scope: scope}
}

// evs returns n events of kind k with payloads 0..n-1.
func evs(k kind.Kind, n int) []batpak.Event {
	out := make([]batpak.Event, n)
	for i := range out {
		out[i] = batpak.Event{Kind: k, Payload: i}
	}
	return out
}

func mustAppend(t testing.TB, s *memstore.Store, c batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) []batpak.Receipt {
	t.Helper()
	rs, err := s.Append(bg, c, events, opts...)
	if err != nil {
		t.Fatalf("append to %v: %v", c, err)
	}
	if len(rs) != len(events) {
		t.Fatalf("append to %v: %d receipts for %d events", c, len(rs), len(events))
	}
	return rs
}

// collect drains seq and fails the test on an error.
func collect(t testing.TB, seq iter.Seq2[batpak.Record, error]) []batpak.Record {
	t.Helper()
	var out []batpak.Record
	for rec, err := range seq {
		if err != nil {
			t.Fatalf("read after %d records: %v", len(out), err)
		}
		out = append(out, rec)
	}
	return out
}

func seqsOf(recs []batpak.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i := range recs {
		out[i] = recs[i].Sequence
	}
	return out
}

func versionsOf(recs []batpak.Record) []uint64 {
	out := make([]uint64, len(recs))
	for i := range recs {
		out[i] = recs[i].Version
	}
	return out
}

// span returns a, a+1, ..., b.
func span(a, b uint64) []uint64 {
	var out []uint64
	for v := a; v <= b; v++ {
		out = append(out, v)
	}
	return out
}

// checkConflict fails unless err is a version conflict on the stream c
// with the given expected and actual versions.
func checkConflict(t testing.TB, err error, c batpak.Coordinate, expected batpak.ExpectedVersion, actual uint64) {
	t.Helper()
	var vc *batpak.VersionConflictError
	if !errors.As(err, &vc) || !errors.Is(err, batpak.ErrVersionConflict) {
		t.Fatalf("error %v, want a *VersionConflictError", err)
	}
	if vc.Stream != c || vc.Expected != expected || vc.Actual != actual {
		t.Fatalf("conflict %+v, want stream %v, expected %v, actual %d", *vc, c, expected, actual)
	}
}

// checkUnchanged fails unless the store still holds last events and the
// streams are at the given versions.
func checkUnchanged(t testing.TB, s *memstore.Store, last uint64, versions map[batpak.Coordinate]uint64) {
	t.Helper()
	if got := s.LastSequence(); got != last {
		t.Fatalf("LastSequence = %d, want %d: a refused append wrote", got, last)
	}
	for c, v := range versions {
		if got := s.StreamVersion(c); got != v {
			t.Fatalf("StreamVersion(%v) = %d, want %d", c, got, v)
		}
	}
}
