package memstore

import (
	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/chain"
)

// sum returns the chain hash of r with r.PrevHash as the link, as every
// backend computes it (internal/chain), so chains built here verify
// anywhere. The memory store sets no flags.
func sum(h *chain.Hasher, r *batpak.Record) [32]byte {
	return h.Sum(&chain.Input{
		Entity: r.Coordinate.Entity, Scope: r.Coordinate.Scope, Version: r.Version, Kind: uint16(r.Kind),
		Timestamp: r.Timestamp.UnixMicro(), ID: r.ID, Correlation: r.CorrelationID, Causation: r.CausationID,
		PrevHash: r.PrevHash, Metadata: r.Metadata, Payload: r.Payload,
	})
}
