package natsstore

import (
	"sync"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// hashers pools the embedded store's chain hashers: both backends chain
// events with the same function, so a hash computed by one verifies in the
// other (see TestHashMatchesEmbedded).
var hashers = sync.Pool{New: func() any { return eventstore.NewChainHasher() }}

// eventHash returns the chain hash of r (flags are always 0 on this backend).
func eventHash(r *segment.Record) [32]byte {
	h := hashers.Get().(*eventstore.ChainHasher)
	defer hashers.Put(h)
	return h.Sum(r)
}
