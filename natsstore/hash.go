package natsstore

import (
	"sync"

	"github.com/batpak-go/batpak/internal/chain"
)

// hashers pools chain hashers. Every backend chains events with the same
// function (package internal/chain), so a hash computed by one verifies in
// another (see TestHashMatchesEmbedded).
var hashers = sync.Pool{New: func() any { return chain.New() }}

// eventHash returns the chain hash of ev, linked to ev.prev (flags are
// always 0 on this backend).
func eventHash(ev *event) [32]byte {
	h := hashers.Get().(*chain.Hasher)
	defer hashers.Put(h)
	return h.Sum(&chain.Input{
		Entity: ev.entity, Scope: ev.scope, Version: ev.version, Kind: ev.kind, Timestamp: ev.ts,
		ID: ev.id, Correlation: ev.corr, Causation: ev.cause, PrevHash: ev.prev, Metadata: ev.meta, Payload: ev.payload,
	})
}
