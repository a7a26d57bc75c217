package eventstore

import (
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

// record returns the Record of sr, with its type name from the catalog.
func (s *Store) record(sr *segment.Record, pos segment.Position) batpak.Record {
	r := recordFromSegment(sr, pos)
	r.Type = s.typeName(r.Kind)
	return r
}

func recordFromSegment(sr *segment.Record, pos segment.Position) batpak.Record {
	return batpak.Record{
		Coordinate:    batpak.Coordinate{Entity: sr.Entity, Scope: sr.Scope},
		ID:            sr.ID,
		CorrelationID: sr.Correlation,
		CausationID:   sr.Causation,
		Kind:          kind.Kind(sr.Kind),
		Timestamp:     time.UnixMicro(sr.Timestamp),
		Sequence:      sr.Seq,
		Version:       sr.Version,
		Metadata:      sr.Metadata,
		Payload:       sr.Payload,
		PrevHash:      sr.PrevHash,
		Hash:          sr.Hash,
	}
}
