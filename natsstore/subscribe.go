package natsstore

import (
	"context"
	"iter"

	"github.com/batpak-go/batpak"
)

// Subscribe returns a subscription to the events indexed after it, in
// region, with a channel buffer of size buffer (at least 1). Events of
// every client of the stream are delivered, as this client indexes them.
func (s *Store) Subscribe(region batpak.Region, buffer int) (batpak.Subscription, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	// Events are indexed before they are offered: those already indexed
	// (their appends may have returned) are not new to it.
	sub, err := s.subs.Add(region, buffer, func() uint64 { return s.LastSequence() + 1 })
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// fanOut offers freshly indexed events to the subscribers, never blocking.
func (s *Store) fanOut(evs []event) {
	s.subs.Offer(func() []batpak.Record {
		recs := make([]batpak.Record, 0, len(evs))
		for i := range evs {
			// A record that does not open is left out: a subscription
			// is lossy, and a cursor reports the error.
			if rec, err := s.readable(recordOf(&evs[i])); err == nil {
				recs = append(recs, rec)
			}
		}
		return recs
	})
}

// cursor is the store's [batpak.Cursor]: it walks this client's index,
// reads the bodies of matching events (from the cache or the server), and
// waits at the end of the index until the next event arrives.
type cursor struct {
	s    *Store
	r    batpak.Region
	next uint64
}

// Cursor returns a cursor over region starting at global sequence from
// (0 or 1: the beginning). It yields the events of every client of the
// stream, in stream order, as this client indexes them.
func (s *Store) Cursor(region batpak.Region, from uint64) batpak.Cursor {
	return &cursor{s: s, r: region, next: max(from, region.FromSequence, 1)}
}

// Position returns the global sequence the cursor will examine next.
func (c *cursor) Position() uint64 { return c.next }

// Next returns the next matching event, waiting for one until ctx ends.
func (c *cursor) Next(ctx context.Context) (batpak.Record, error) {
	for {
		wait := c.s.ix.changed()
		rec, ok, err := c.TryNext(ctx)
		if ok || err != nil {
			return rec, err
		}
		if to := c.r.ToSequence; to != 0 && c.next > to {
			return batpak.Record{}, batpak.ErrEndOfRegion
		}
		select {
		case <-wait:
		case <-c.s.done:
			return batpak.Record{}, batpak.ErrClosed
		case <-ctx.Done():
			return batpak.Record{}, ctx.Err()
		}
	}
}

// TryNext returns the next matching event that is already indexed, without
// waiting; ok is false at the end of the index. ctx bounds a read of the
// event's body from the server.
func (c *cursor) TryNext(ctx context.Context) (rec batpak.Record, ok bool, err error) {
	if err := c.s.checkRead(ctx); err != nil {
		return batpak.Record{}, false, err
	}
	log := c.s.ix.snapshot()
	for c.next <= log.len() {
		seq := c.next
		c.s.yieldToAppends(seq)
		e := log.at(seq)
		if !matchEntry(&c.r, seq, e) {
			c.next++
			continue
		}
		rec, err := c.s.read(ctx, e, seq)
		if err != nil {
			return batpak.Record{}, false, err
		}
		c.next++
		return rec, true, nil
	}
	return batpak.Record{}, false, nil
}

// All yields matching events as they arrive until ctx ends or a read
// fails; the final error (ctx.Err() included) is yielded once.
func (c *cursor) All(ctx context.Context) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		for {
			rec, err := c.Next(ctx)
			if !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// Follow yields every event in region from global sequence from (0 or 1:
// the beginning), then waits for new ones, until ctx ends; the final error
// (ctx.Err() included) is yielded once.
func (s *Store) Follow(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error] {
	return s.Cursor(region, from).All(ctx)
}
