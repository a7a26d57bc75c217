package storetest

import (
	"maps"
	"testing"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
)

// named returns an event of kind k with the type name name.
func named(k kind.Kind, name string, n int) batpak.Event {
	return batpak.Event{Kind: k, Type: name, Payload: n}
}

// testEventTypes: a named append puts its names in the store's catalog;
// every read shows a kind's name, also on events appended without one; a
// kind keeps its first name and a name its first kind (a conflicting
// append is refused and stores nothing); the catalog survives a reopen.
func testEventTypes(t *testing.T, e *env) {
	s := e.s
	c := coord("types:a")
	sub, err := s.Subscribe(batpak.Region{Entity: c.Entity}, 16)
	if err != nil {
		t.Fatal(err)
	}
	defer sub.Close()
	mustAppend(t, s, c, []batpak.Event{named(kindOpened, "test.Opened", 0), named(kindDeposited, "test.Deposited", 1)})
	mustBatch(t, s, []batpak.BatchItem{
		{Coordinate: c, Event: ev(kindDeposited, 2)}, // unnamed, of a named kind
		{Coordinate: coord("types:b"), Event: named(kindNoted, "test.Noted", 3)},
		{Coordinate: coord("types:b"), Event: ev(kindWithdrawn, 4)}, // a kind nobody named
	})
	want := map[kind.Kind]string{kindOpened: "test.Opened", kindDeposited: "test.Deposited", kindNoted: "test.Noted"}

	refused := []struct {
		what   string
		events []batpak.Event
		target error
	}{
		{"a kind renamed", []batpak.Event{named(kindOpened, "test.AccountOpened", 0)}, batpak.ErrTypeConflict},
		{"a name on another kind", []batpak.Event{named(kindWithdrawn, "test.Opened", 0)}, batpak.ErrTypeConflict},
		{"two names for one new kind", []batpak.Event{named(kindEffect, "test.E1", 0), named(kindEffect, "test.E2", 0)}, batpak.ErrTypeConflict},
		{"an invalid name", []batpak.Event{named(kindWithdrawn, "has space", 0)}, batpak.ErrInvalidTypeName},
	}
	for _, r := range refused {
		before := s.LastSequence()
		_, err := s.Append(bgctx, c, append([]batpak.Event{ev(kindDeposited, 9)}, r.events...))
		wantErrIs(t, err, r.target, r.what)
		items := []batpak.BatchItem{{Coordinate: c, Event: ev(kindDeposited, 9)}}
		for _, ev := range r.events {
			items = append(items, batpak.BatchItem{Coordinate: coord("types:c"), Event: ev})
		}
		_, err = s.AppendBatch(bgctx, items)
		wantErrIs(t, err, r.target, r.what+" (batch)")
		if s.LastSequence() != before {
			t.Fatalf("%s: the refused append stored events", r.what)
		}
	}

	check := func(s Store, when string) {
		t.Helper()
		got, err := s.EventTypes(bgctx)
		if err != nil {
			t.Fatal(err)
		}
		if !maps.Equal(got, want) {
			t.Fatalf("%s: EventTypes = %v, want %v", when, got, want)
		}
		recs := collect(t, s.ReadAll(bgctx, 0))
		if len(recs) != 5 {
			t.Fatalf("%s: %d events, want 5", when, len(recs))
		}
		for _, rec := range recs {
			if rec.Type != want[rec.Kind] {
				t.Fatalf("%s: ReadAll: event %d of kind %s has type %q, want %q", when, rec.Sequence, rec.Kind, rec.Type, want[rec.Kind])
			}
			got, err := s.Get(bgctx, rec.ID)
			if err != nil || got.Type != rec.Type {
				t.Fatalf("%s: Get of event %d: type %q, %v; want %q", when, rec.Sequence, got.Type, err, rec.Type)
			}
		}
		for _, rec := range collect(t, s.ReadStream(bgctx, c, 0)) {
			if rec.Type != want[rec.Kind] {
				t.Fatalf("%s: ReadStream: event %d has type %q", when, rec.Sequence, rec.Type)
			}
		}
		for _, rec := range drainCursor(t, s.Cursor(batpak.Region{Kinds: []kind.Kind{kindNoted}}, 0)) {
			if rec.Type != "test.Noted" {
				t.Fatalf("%s: cursor: event %d has type %q", when, rec.Sequence, rec.Type)
			}
		}
	}
	check(s, "before a reopen")
	for range 3 { // the subscription saw the events of c: 0, 1 and 2
		select {
		case rec := <-sub.Events():
			if rec.Type != want[rec.Kind] {
				t.Fatalf("subscription: event %d has type %q", rec.Sequence, rec.Type)
			}
		case <-hangTimer(t):
			t.Fatal("subscription: no event")
		}
	}
	check(e.reopen(), "after a reopen")
	// A reopened store still refuses a rename.
	_, err = e.s.Append(bgctx, c, []batpak.Event{named(kindDeposited, "test.Deposit", 0)})
	wantErrIs(t, err, batpak.ErrTypeConflict, "a rename after a reopen")
}
