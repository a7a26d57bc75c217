package explorer

import (
	"context"
	"iter"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// Store is what the explorer reads. *eventstore.Store and *natsstore.Store
// both provide it as they are.
//
// Every method is a read; the explorer calls nothing else, so it cannot
// write, repair or forget. The explorer relies on these costs, which make
// its pages independent of the size of the store:
//   - Get, GetSequence: one event, through the index.
//   - ReadStream with [batpak.Limit]: proportional to the events yielded
//     (the explorer always passes a limit), from any version, either way.
//   - Query with FromSequence set: starts at that sequence (the explorer
//     stops it after a page).
//   - Streams: yields streams in creation order without reading events.
//   - Correlated, CausedBy: the sequences of one group or one cause.
//   - Follow: the events of a region from a sequence, then new ones as they
//     are committed, until ctx ends.
//   - VerifyChain reads a whole stream; the explorer runs it only when
//     asked, one at a time.
type Store interface {
	causal.Source // Get, GetSequence, Correlated, CausedBy
	LastSequence() uint64
	StreamVersion(coord batpak.Coordinate) uint64
	Streams() iter.Seq[batpak.StreamInfo]
	ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error]
	Query(ctx context.Context, r batpak.Region) iter.Seq2[batpak.Record, error]
	Follow(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error]
	VerifyChain(ctx context.Context, coord batpak.Coordinate) error
}

var _ Store = (*eventstore.Store)(nil)

// statser is implemented by *eventstore.Store: its counters fill the
// health page.
type statser interface {
	Stats() eventstore.Stats
}

// locator is implemented by *eventstore.Store: the event page shows the
// segment file and offset of the event.
type locator interface {
	Position(seq uint64) (segment.Position, bool)
}
