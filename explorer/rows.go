package explorer

import (
	"encoding/json"
	"errors"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
)

// timeLayout is RFC 3339 in UTC with the store's microsecond precision.
const timeLayout = "2006-01-02T15:04:05.000000Z07:00"

// EventRow is one event in a list (and the head of an event's page).
type EventRow struct {
	Sequence    uint64          `json:"sequence"`
	ID          string          `json:"id"`
	Entity      string          `json:"entity"`
	Scope       string          `json:"scope"`
	Version     uint64          `json:"version"`
	Kind        string          `json:"kind"`
	KindName    string          `json:"kind_name,omitempty"`
	Timestamp   string          `json:"timestamp"`
	Correlation string          `json:"correlation"`
	Causation   string          `json:"causation,omitempty"` // empty for a root
	Payload     json.RawMessage `json:"payload"`
	// Linked says the event has a cause or effects: it has a causal graph.
	Linked bool `json:"linked"`
	// Summary is the payload as one line of JSON, cut for a list.
	Summary string `json:"-"`
}

func (e *Explorer) row(s Store, rec *batpak.Record) EventRow {
	r := EventRow{
		Sequence:    rec.Sequence,
		ID:          rec.ID.String(),
		Entity:      rec.Coordinate.Entity,
		Scope:       rec.Coordinate.Scope,
		Version:     rec.Version,
		Kind:        rec.Kind.String(),
		KindName:    e.names.name(rec),
		Timestamp:   rec.Timestamp.UTC().Format(timeLayout),
		Correlation: rec.CorrelationID.String(),
		Payload:     RecordPayloadJSON(rec),
	}
	if rec.CausationID != uuid.Nil {
		r.Causation = rec.CausationID.String()
	}
	r.Linked = r.Causation != "" || rec.CorrelationID != rec.ID || len(s.CausedBy(rec.ID)) > 0
	r.Summary = summary(string(r.Payload), 160)
	return r
}

func isNotFound(err error) bool { return errors.Is(err, batpak.ErrNotFound) }
