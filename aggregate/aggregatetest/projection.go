package aggregatetest

import (
	"context"
	"fmt"
	"maps"
	"reflect"

	"github.com/batpak-go/batpak"
)

// Event is a payload on a stream, for [GivenEvents].
type Event struct {
	Coordinate batpak.Coordinate
	Payload    any // a value of a registered type, or a pointer to one
	Metadata   map[string]string
}

// On returns payloads as events on the stream coord, in order.
func On(coord batpak.Coordinate, payloads ...any) []Event {
	out := make([]Event, len(payloads))
	for i, p := range payloads {
		out[i] = Event{Coordinate: coord, Payload: p}
	}
	return out
}

// History is a log of events on any number of streams, for projections.
type History struct {
	reg    *batpak.Registry
	events []Event
}

// GivenEvents starts a projection scenario: the log holds events, in the
// order given, across groups ([On]) as within them.
func GivenEvents(reg *batpak.Registry, events ...[]Event) *History {
	h := &History{reg: reg}
	for _, group := range events {
		h.events = append(h.events, group...)
	}
	return h
}

// Projection is what [History.Project] feeds: the part of a
// projection.Projection it uses.
type Projection interface {
	Region() batpak.Region
	Apply(ctx context.Context, rec batpak.Record) error
}

// Project appends the history to a new in-memory store and feeds p the
// records of its region, in global order, as the projection runner
// delivers them. A failure (of an Apply, or of the history) is reported
// to t. It returns the number of records p applied.
func (h *History) Project(t TestingT, p Projection) int {
	t.Helper()
	n, err := h.project(p)
	if err != nil {
		t.Errorf("given %d events, projecting them into %T: %v", len(h.events), p, err)
	}
	return n
}

func (h *History) project(p Projection) (int, error) {
	ctx := context.Background()
	store := newStore()
	defer store.Close()
	for i, e := range h.events {
		ev, err := toEvent(h.reg, e.Payload)
		if err != nil {
			return 0, fmt.Errorf("event %d: %w", i, err)
		}
		// The given metadata beside the registry's (schema version, codec).
		if len(e.Metadata) > 0 {
			meta := maps.Clone(e.Metadata)
			maps.Copy(meta, ev.Metadata)
			ev.Metadata = meta
		}
		if _, err := store.Append(ctx, e.Coordinate, []batpak.Event{ev}); err != nil {
			return 0, fmt.Errorf("event %d: %w", i, err)
		}
	}
	n := 0
	for rec, err := range store.Query(ctx, p.Region()) {
		if err != nil {
			return n, err
		}
		if err := p.Apply(ctx, rec); err != nil {
			return n, fmt.Errorf("Apply(%s): %w", rec.String(), err)
		}
		n++
	}
	return n, nil
}

// ThenModel checks that a read model equals want (reflect.DeepEqual).
func ThenModel[M any](t TestingT, got, want M) bool {
	t.Helper()
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got read model:  %+v\nwant read model: %+v", got, want)
		return false
	}
	return true
}
