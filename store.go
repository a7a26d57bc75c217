package batpak

import (
	"context"
	"iter"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak/kind"
)

// Store is the contract every backend implements: the embedded segment
// store (package eventstore), NATS JetStream (package natsstore) and the
// in-memory reference (package memstore). Package storetest checks it.
//
// Every method is safe for concurrent use. Every call that may block, on a
// disk or a network, takes a context; a cancelled context ends a read with
// its error (the iterators yield ctx.Err() and stop).
type Store interface {
	// Append appends events to the stream coord, atomically: all of them
	// or none. It returns one receipt per event once they are durable (as
	// the backend defines it) and visible to every reader.
	Append(ctx context.Context, coord Coordinate, events []Event, opts ...AppendOption) ([]Receipt, error)
	// AppendBatch appends events to several streams atomically, checking
	// each item's expected version in item order.
	AppendBatch(ctx context.Context, items []BatchItem, opts ...AppendOption) ([]Receipt, error)

	// Get returns the event with the given id, or an error matching
	// [ErrNotFound].
	Get(ctx context.Context, id uuid.UUID) (Record, error)
	// GetSequence returns the event at global sequence seq, or an error
	// matching [ErrNotFound].
	GetSequence(ctx context.Context, seq uint64) (Record, error)
	// ReadStream yields the events of the stream coord from version from
	// (0 or 1: the first) in version order, or with [Backward] from
	// version from (0: the newest) down to 1. An unknown stream yields
	// nothing.
	ReadStream(ctx context.Context, coord Coordinate, from uint64, opts ...ReadOption) iter.Seq2[Record, error]
	// ReadAll yields every event from global sequence from on, in order.
	ReadAll(ctx context.Context, from uint64) iter.Seq2[Record, error]
	// Query yields the events in r, in global order.
	Query(ctx context.Context, r Region) iter.Seq2[Record, error]
	// StreamVersion returns the version of the stream coord: 0 if it has
	// no events.
	StreamVersion(coord Coordinate) uint64
	// LastSequence returns the global sequence of the newest visible event.
	LastSequence() uint64
	// EventTypes returns the store's catalog: the type name of every kind
	// an append named ([Event.Type]). A name, once in the catalog, stays
	// bound to its kind: it survives a crash and a reopen, and records of
	// the kind carry it ([Record.Type]).
	EventTypes(ctx context.Context) (map[kind.Kind]string, error)
	// Forget destroys the key of subject, durably: afterwards every read
	// of the subject's events returns them erased ([Record.Erased], nil
	// payload), also after a crash or a reopen, and an append of an event
	// for the subject fails with [ErrForgotten]. The events stay, with
	// their hashes, so hash chains still verify. Forgetting a subject
	// twice, or one without events, succeeds.
	Forget(ctx context.Context, subject Subject) error

	// Cursor returns a guaranteed reader of the events in r from global
	// sequence from (0 or 1: the beginning).
	Cursor(r Region, from uint64) Cursor
	// Subscribe returns a lossy push feed of new events in r, with a
	// channel buffer of buffer events (at least 1).
	Subscribe(r Region, buffer int) (Subscription, error)

	// Close releases the store. Calls after Close return [ErrClosed].
	Close() error
}

// StreamInfo describes one stream, for backends that list their streams.
type StreamInfo struct {
	Coordinate Coordinate
	Version    uint64
	// LastSequence is the global sequence of the stream's newest event.
	LastSequence uint64
}

// Cursor is a guaranteed, pull-based reader of the events in a region: it
// yields every matching event exactly once, in commit order, and waits at
// the end of the log until the next one is visible. A cursor is used by
// one goroutine at a time.
type Cursor interface {
	// Next returns the next matching event, waiting for one until ctx
	// ends. Past a region's ToSequence it returns [ErrEndOfRegion]; after
	// the store closes, [ErrClosed].
	Next(ctx context.Context) (Record, error)
	// TryNext returns the next matching event if one is visible now.
	TryNext(ctx context.Context) (rec Record, ok bool, err error)
	// Position returns the global sequence the cursor examines next; a
	// projection persists it to resume later.
	Position() uint64
	// All yields the events Next returns, until ctx ends or an error.
	All(ctx context.Context) iter.Seq2[Record, error]
}

// Subscription is a lossy push feed of new events: each matching event is
// offered to a bounded channel and dropped (and counted) if the channel is
// full, so a slow subscriber never slows the writer. Use a [Cursor] when
// every event matters.
type Subscription interface {
	// Events delivers matching events in commit order. It is closed by
	// Close and when the store closes.
	Events() <-chan Record
	// Dropped returns how many events this subscription lost to a full
	// channel.
	Dropped() uint64
	// Close ends the subscription and closes Events.
	Close()
}
