package eventstore

import (
	"context"
	"iter"

	"github.com/batpak-go/batpak"
)

// Subscribe returns a subscription to new events in region with a channel
// buffer of size buffer (at least 1).
func (s *Store) Subscribe(region batpak.Region, buffer int) (batpak.Subscription, error) {
	if err := s.checkOpen(); err != nil {
		return nil, err
	}
	// Events are published before they are offered: those already
	// visible (their appends may have returned) are not new to it.
	sub, err := s.subs.Add(region, buffer, func() uint64 { return s.LastSequence() + 1 })
	if err != nil {
		return nil, err
	}
	return sub, nil
}

// fanOut offers freshly published events to the subscribers, never blocking.
func (s *Store) fanOut(events []stagedEvent) {
	s.subs.Offer(func() []batpak.Record {
		recs := make([]batpak.Record, 0, len(events))
		for i := range events {
			// A record that does not open is left out: a subscription
			// is lossy, and a cursor reports the error.
			if rec, err := s.readable(s.record(&events[i].rec, events[i].pos)); err == nil {
				recs = append(recs, rec)
			}
		}
		return recs
	})
}

// cursor is the embedded store's [batpak.Cursor]: it walks the index,
// reads only the frames of matching events, and waits at the end of the
// log for the next publish.
type cursor struct {
	s    *Store
	m    *entryMatcher
	next uint64
}

// Cursor returns a cursor over region starting at global sequence from
// (0 or 1: the beginning).
func (s *Store) Cursor(region batpak.Region, from uint64) batpak.Cursor {
	return &cursor{s: s, m: newEntryMatcher(region, s.ix), next: max(from, region.FromSequence, 1)}
}

// Position returns the global sequence the cursor will examine next; a
// projection persists it to resume later.
func (c *cursor) Position() uint64 { return c.next }

// Next returns the next matching event, waiting for one until ctx ends.
func (c *cursor) Next(ctx context.Context) (batpak.Record, error) {
	for {
		wait := c.s.waitForEvent()
		if err := c.s.checkOpen(); err != nil {
			return batpak.Record{}, err
		}
		rec, ok, err := c.TryNext(ctx)
		if ok || err != nil {
			return rec, err
		}
		if to := c.m.r.ToSequence; to != 0 && c.next > to {
			return batpak.Record{}, batpak.ErrEndOfRegion
		}
		select {
		case <-wait:
		case <-ctx.Done():
			return batpak.Record{}, ctx.Err()
		}
	}
}

// TryNext returns the next matching event that is already visible, without
// waiting; ok is false at the end of the log.
func (c *cursor) TryNext(ctx context.Context) (rec batpak.Record, ok bool, err error) {
	if err := c.s.checkRead(ctx); err != nil {
		return batpak.Record{}, false, err
	}
	entries := c.s.ix.snapshot()
	for c.next <= entries.len() {
		seq := c.next
		e := entries.at(seq)
		if !entries.visible(e) || !c.m.match(seq, e) {
			c.next++
			continue
		}
		rec, err := c.s.readOpen(&entries, seq, e)
		if err != nil {
			return batpak.Record{}, false, err
		}
		c.next++
		if !c.m.r.MatchTime(rec.Timestamp.UnixMicro()) {
			continue
		}
		return rec, true, nil
	}
	return batpak.Record{}, false, nil
}

// All yields matching events as they arrive until ctx ends or a read fails;
// the final error (ctx.Err() included) is yielded once.
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
// (ctx.Err() included) is yielded once. It is a cursor as an iterator.
func (s *Store) Follow(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error] {
	return s.Cursor(region, from).All(ctx)
}
