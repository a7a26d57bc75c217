package eventstore

import (
	"github.com/batpak-go/batpak/internal/chain"
	"github.com/batpak-go/batpak/internal/codec"
	"github.com/batpak-go/batpak/internal/ids"
	"github.com/batpak-go/batpak/internal/subs"
	"github.com/batpak-go/batpak/segment"
)

// ChainHasher computes the chain hashes of segment records (package
// internal/chain holds the function every backend shares).
type ChainHasher struct{ h *chain.Hasher }

// NewChainHasher returns a hasher.
func NewChainHasher() *ChainHasher { return &ChainHasher{h: chain.New()} }

// Sum returns the hash of r with r.PrevHash as the chain link (r.Hash and
// r.Seq are not part of it).
func (c *ChainHasher) Sum(r *segment.Record) [32]byte {
	return c.h.Sum(&chain.Input{
		Entity: r.Entity, Scope: r.Scope, Version: r.Version, Kind: r.Kind, Flags: r.Flags,
		Timestamp: r.Timestamp, ID: r.ID, Correlation: r.Correlation, Causation: r.Causation,
		PrevHash: r.PrevHash, Metadata: r.Metadata, Payload: r.Payload,
	})
}

type (
	IDGenerator  = ids.Generator
	Subscribers  = subs.Set
	Subscription = subs.Subscription
)

// EncodeEvent checks an event and returns its stored payload and metadata.
var EncodeEvent = codec.Encode
