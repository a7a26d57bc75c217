package storetest

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"iter"
	"maps"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// Kinds used by the suite.
var (
	kindOpened    = kind.Custom(1, 1)
	kindDeposited = kind.Custom(1, 2)
	kindWithdrawn = kind.Custom(1, 3)
	kindNoted     = kind.Custom(2, 1)
	kindEffect    = kind.Effect(7)
)

func coord(entity string) batpak.Coordinate {
	return batpak.Coordinate{Entity: entity, Scope: "test"}
}

// ev returns an event of kind k whose payload is n.
func ev(k kind.Kind, n int) batpak.Event {
	return batpak.Event{Kind: k, Payload: n}
}

// evs returns n events of kind k with payloads 0..n-1.
func evs(k kind.Kind, n int) []batpak.Event {
	out := make([]batpak.Event, n)
	for i := range out {
		out[i] = ev(k, i)
	}
	return out
}

func mustAppend(t testing.TB, s Store, c batpak.Coordinate, events []batpak.Event, opts ...batpak.AppendOption) []batpak.Receipt {
	t.Helper()
	rs, err := s.Append(context.Background(), c, events, opts...)
	if err != nil {
		t.Fatalf("append to %s: %v", c.Entity, err)
	}
	if len(rs) != len(events) {
		t.Fatalf("append to %s: %d receipts for %d events", c.Entity, len(rs), len(events))
	}
	return rs
}

func mustBatch(t testing.TB, s Store, items []batpak.BatchItem, opts ...batpak.AppendOption) []batpak.Receipt {
	t.Helper()
	rs, err := s.AppendBatch(context.Background(), items, opts...)
	if err != nil {
		t.Fatalf("append batch: %v", err)
	}
	if len(rs) != len(items) {
		t.Fatalf("append batch: %d receipts for %d items", len(rs), len(items))
	}
	return rs
}

// collect drains seq and fails the test on the first error.
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

// drainCursor returns what c yields without waiting.
func drainCursor(t testing.TB, c batpak.Cursor) []batpak.Record {
	t.Helper()
	var out []batpak.Record
	for {
		rec, ok, err := c.TryNext(bgctx)
		if err != nil {
			t.Fatalf("cursor TryNext after %d records: %v", len(out), err)
		}
		if !ok {
			return out
		}
		out = append(out, rec)
	}
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

func span(from, to uint64) []uint64 {
	var out []uint64
	for v := from; v <= to; v++ {
		out = append(out, v)
	}
	return out
}

func reversed(in []uint64) []uint64 {
	out := make([]uint64, len(in))
	for i, v := range in {
		out[len(in)-1-i] = v
	}
	return out
}

// checkUnchanged fails if the store holds more events than last, or if
// stream versions moved.
func checkUnchanged(t testing.TB, s Store, last uint64, versions map[string]uint64) {
	t.Helper()
	if got := s.LastSequence(); got != last {
		t.Errorf("LastSequence = %d after a failed append, want %d", got, last)
	}
	if n := len(collect(t, s.ReadAll(bgctx, 0))); uint64(n) != last {
		t.Errorf("ReadAll yields %d events after a failed append, want %d", n, last)
	}
	for entity, v := range versions {
		if got := s.StreamVersion(coord(entity)); got != v {
			t.Errorf("StreamVersion(%q) = %d after a failed append, want %d", entity, got, v)
		}
	}
}

// sameMeta treats nil and empty metadata alike.
func sameMeta(a, b map[string]string) bool {
	return len(a) == len(b) && maps.Equal(a, b)
}

// diffRecord describes how got differs from want, or returns "".
func diffRecord(got, want *batpak.Record) string {
	var d []string
	add := func(field string, g, w any) { d = append(d, fmt.Sprintf("%s = %v, want %v", field, g, w)) }
	if got.Coordinate != want.Coordinate {
		add("Coordinate", got.Coordinate, want.Coordinate)
	}
	if got.ID != want.ID {
		add("ID", got.ID, want.ID)
	}
	if got.CorrelationID != want.CorrelationID {
		add("CorrelationID", got.CorrelationID, want.CorrelationID)
	}
	if got.CausationID != want.CausationID {
		add("CausationID", got.CausationID, want.CausationID)
	}
	if got.Kind != want.Kind {
		add("Kind", got.Kind, want.Kind)
	}
	if !got.Timestamp.Equal(want.Timestamp) {
		add("Timestamp", got.Timestamp, want.Timestamp)
	}
	if got.Sequence != want.Sequence {
		add("Sequence", got.Sequence, want.Sequence)
	}
	if got.Version != want.Version {
		add("Version", got.Version, want.Version)
	}
	if !sameMeta(got.Metadata, want.Metadata) {
		add("Metadata", got.Metadata, want.Metadata)
	}
	if !bytes.Equal(got.Payload, want.Payload) {
		add("Payload", got.Payload, want.Payload)
	}
	if got.PrevHash != want.PrevHash {
		add("PrevHash", got.PrevHash, want.PrevHash)
	}
	if got.Hash != want.Hash {
		add("Hash", got.Hash, want.Hash)
	}
	if len(d) == 0 {
		return ""
	}
	return fmt.Sprint(d)
}

func checkSameRecords(t testing.TB, what string, got, want []batpak.Record) {
	t.Helper()
	if len(got) != len(want) {
		t.Fatalf("%s: %d records (sequences %v), want %d (%v)", what, len(got), seqsOf(got), len(want), seqsOf(want))
	}
	for i := range got {
		if d := diffRecord(&got[i], &want[i]); d != "" {
			t.Fatalf("%s: record %d (sequence %d): %s", what, i, want[i].Sequence, d)
		}
	}
}

// checkReceipt fails if rec is not the event r acknowledged.
func checkReceipt(t testing.TB, rec *batpak.Record, r *batpak.Receipt) {
	t.Helper()
	if rec.ID != r.EventID || rec.Sequence != r.Sequence || rec.Version != r.Version || rec.Hash != r.Hash {
		t.Fatalf("record %v (id %s, hash %x) does not match receipt %+v", rec, rec.ID, rec.Hash[:4], *r)
	}
}

func wantErrIs(t testing.TB, err, target error, what string) {
	t.Helper()
	if !errors.Is(err, target) {
		t.Fatalf("%s: error %v, want %v", what, err, target)
	}
}

// eventually polls cond until it holds, failing at the suite's hang
// deadline.
func eventually(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := hangDeadline(t)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(time.Millisecond)
	}
}
