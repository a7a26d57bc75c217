package tracing

import (
	"go.opentelemetry.io/otel/attribute"

	"github.com/batpak-go/batpak"
)

// The attributes of batpak's spans. docs/observability.md lists which
// span has which.
const (
	Scope         = attribute.Key("batpak.scope")          // the stream's scope
	Entity        = attribute.Key("batpak.entity")         // the stream's entity
	Command       = attribute.Key("batpak.command")        // the Go type of an aggregate's command
	Version       = attribute.Key("batpak.version")        // a stream's version: loaded, expected, or of the event
	Events        = attribute.Key("batpak.events")         // how many events were appended, loaded or proposed
	Attempts      = attribute.Key("batpak.attempts")       // load-handle-save cycles, or Apply calls
	Outcome       = attribute.Key("batpak.outcome")        // how an execution or an apply ended
	EventID       = attribute.Key("batpak.event.id")       // the event's id (the first of an append)
	Sequence      = attribute.Key("batpak.event.sequence") // its global sequence (the first of an append)
	Kind          = attribute.Key("batpak.event.kind")     // its kind
	CorrelationID = attribute.Key("batpak.correlation_id") // the causal group of the event, as package causal walks it
	CausationID   = attribute.Key("batpak.causation_id")   // the event that caused it
	Projection    = attribute.Key("batpak.projection")     // the projection's name
	Gates         = attribute.Key("batpak.policy.gates")   // the gates that passed
	Denied        = attribute.Key("batpak.policy.denied")  // the gates that denied
	BypassActor   = attribute.Key("batpak.policy.bypass.actor")
)

// CoordinateAttributes returns the attributes of the stream c.
func CoordinateAttributes(c batpak.Coordinate) []attribute.KeyValue {
	return []attribute.KeyValue{Scope.String(c.Scope), Entity.String(c.Entity)}
}

// RecordAttributes returns the attributes naming the event rec.
func RecordAttributes(rec *batpak.Record) []attribute.KeyValue {
	attrs := []attribute.KeyValue{
		Scope.String(rec.Coordinate.Scope), Entity.String(rec.Coordinate.Entity),
		EventID.String(rec.ID.String()), Sequence.Int64(int64(rec.Sequence)), Version.Int64(int64(rec.Version)),
		Kind.String(rec.Kind.String()), CorrelationID.String(rec.CorrelationID.String()),
	}
	if rec.CausationID != [16]byte{} {
		attrs = append(attrs, CausationID.String(rec.CausationID.String()))
	}
	return attrs
}

// ReceiptAttributes returns the attributes naming the first of the events
// rs acknowledge, and how many there are.
func ReceiptAttributes(rs []batpak.Receipt) []attribute.KeyValue {
	if len(rs) == 0 {
		return nil
	}
	return []attribute.KeyValue{Events.Int(len(rs)), EventID.String(rs[0].EventID.String()), Sequence.Int64(int64(rs[0].Sequence))}
}
