package memstore

import (
	"context"
	"iter"

	"github.com/batpak-go/batpak"
)

// cursor is the memory store's [batpak.Cursor]: it walks the log from its
// position and waits on the store's appended channel at the end.
type cursor struct {
	s    *Store
	r    batpak.Region
	next uint64 // the sequence examined next
}

// Cursor returns a guaranteed reader of the events in r from global
// sequence from (0 or 1: the beginning; the later of from and
// r.FromSequence).
func (s *Store) Cursor(r batpak.Region, from uint64) batpak.Cursor {
	return &cursor{s: s, r: r, next: max(from, r.FromSequence, 1)}
}

// Follow yields every event in region from global sequence from (0 or 1:
// the beginning), then waits for new ones, until ctx ends; the final error
// (ctx.Err() included) is yielded once. It is a cursor as an iterator, the
// tail of a projection runner.
func (s *Store) Follow(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error] {
	return s.Cursor(region, from).All(ctx)
}

func (c *cursor) Position() uint64 { return c.next }

func (c *cursor) Next(ctx context.Context) (batpak.Record, error) {
	for {
		rec, ok, appended, err := c.step(ctx)
		if ok || err != nil {
			return rec, err
		}
		if to := c.r.ToSequence; to != 0 && c.next > to {
			return batpak.Record{}, batpak.ErrEndOfRegion
		}
		select {
		case <-appended:
		case <-ctx.Done():
			return batpak.Record{}, ctx.Err()
		}
	}
}

func (c *cursor) TryNext(ctx context.Context) (rec batpak.Record, ok bool, err error) {
	rec, ok, _, err = c.step(ctx)
	return rec, ok, err
}

// step returns the next matching event if there is one; if not, it
// returns the channel that the next append (or Close) closes, taken under
// the same lock as the look, so no event can slip in between.
func (c *cursor) step(ctx context.Context) (rec batpak.Record, ok bool, appended <-chan struct{}, err error) {
	if err := c.s.checkRead(ctx); err != nil {
		return batpak.Record{}, false, nil, err
	}
	c.s.mu.RLock()
	defer c.s.mu.RUnlock()
	log := c.s.log
	for c.next <= uint64(len(log)) {
		seq := c.next
		c.next++
		if c.r.Match(&log[seq-1]) {
			rec, err := c.s.record(log, seq)
			return rec, err == nil, nil, err
		}
	}
	return batpak.Record{}, false, c.s.appended, nil
}

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
