package memstore

import (
	"sync/atomic"

	"github.com/batpak-go/batpak"
)

// subscription is the memory store's [batpak.Subscription]. Its channel is
// sent to and closed only under the store's write lock, so a send never
// meets a closed channel.
type subscription struct {
	s       *Store
	r       batpak.Region
	c       chan batpak.Record
	dropped atomic.Uint64
	closed  bool // guarded by s.mu
}

// Subscribe returns a lossy push feed of the events in r appended after it
// returns, with a channel buffer of buffer events (at least 1). An event
// that finds the buffer full is dropped and counted, never waited for.
func (s *Store) Subscribe(r batpak.Region, buffer int) (batpak.Subscription, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.closed.Load() {
		return nil, batpak.ErrClosed
	}
	sub := &subscription{s: s, r: r, c: make(chan batpak.Record, max(buffer, 1))}
	s.subs[sub] = struct{}{}
	return sub, nil
}

// offer delivers new events to every subscription they match, without
// blocking. mu is held for writing, so subscriptions see events in commit
// order and none that was appended before they were made.
func (s *Store) offer(recs []batpak.Record) {
	for sub := range s.subs {
		for i := range recs {
			if !sub.r.Match(&recs[i]) {
				continue
			}
			rec, err := s.clone(&recs[i])
			if err != nil { // lossy: a cursor reports it
				sub.dropped.Add(1)
				continue
			}
			select {
			case sub.c <- rec:
			default:
				sub.dropped.Add(1)
			}
		}
	}
}

func (sub *subscription) Events() <-chan batpak.Record { return sub.c }

func (sub *subscription) Dropped() uint64 { return sub.dropped.Load() }

func (sub *subscription) Close() {
	sub.s.mu.Lock()
	defer sub.s.mu.Unlock()
	sub.closeLocked()
}

// closeLocked closes the subscription once. mu is held for writing.
func (sub *subscription) closeLocked() {
	if !sub.closed {
		sub.closed = true
		delete(sub.s.subs, sub)
		close(sub.c)
	}
}
