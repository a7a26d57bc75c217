package eventstore

import (
	"github.com/batpak-go/batpak/internal/chain"
	"github.com/batpak-go/batpak/segment"
)

// chainHasher computes the chain hashes of segment records with the
// function every backend shares (package internal/chain).
type chainHasher struct{ h *chain.Hasher }

// newChainHasher returns a hasher.
func newChainHasher() *chainHasher { return &chainHasher{h: chain.New()} }

// Sum returns the hash of r with r.PrevHash as the chain link (r.Hash and
// r.Seq are not part of it).
func (c *chainHasher) Sum(r *segment.Record) [32]byte {
	return c.h.Sum(&chain.Input{
		Entity: r.Entity, Scope: r.Scope, Version: r.Version, Kind: r.Kind, Flags: r.Flags,
		Timestamp: r.Timestamp, ID: r.ID, Correlation: r.Correlation, Causation: r.Causation,
		PrevHash: r.PrevHash, Metadata: r.Metadata, Payload: r.Payload,
	})
}
