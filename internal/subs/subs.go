// Package subs is the push side of every backend: the set of lossy
// subscriptions new events are offered to, never blocking the writer.
package subs

import (
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak"
)

// Subscription is a lossy push feed of new events: each matching event is
// offered to a bounded channel and dropped (and counted) if the channel is
// full, so a slow subscriber never slows the writer. Use a [batpak.Cursor] when
// every event matters. Records received share their byte slices with other
// subscribers: treat them as read-only.
type Subscription struct {
	c       chan batpak.Record
	region  batpak.Region
	from    uint64 // first sequence offered to it
	set     *Set
	dropped atomic.Uint64
	once    sync.Once
}

var _ batpak.Subscription = (*Subscription)(nil)

// Events delivers matching events in commit order; it is closed by Close
// and when the store closes.
func (sub *Subscription) Events() <-chan batpak.Record { return sub.c }

// Dropped returns how many events this subscription lost to a full channel.
func (sub *Subscription) Dropped() uint64 { return sub.dropped.Load() }

// Close ends the subscription and closes its channel.
func (sub *Subscription) Close() {
	sub.set.mu.Lock()
	defer sub.set.mu.Unlock()
	sub.closeLocked()
}

func (sub *Subscription) closeLocked() {
	sub.once.Do(func() {
		delete(sub.set.subs, sub)
		close(sub.c)
	})
}

// Set is the set of a store's subscriptions that new events are offered
// to, never blocking. Every backend uses it, so subscriptions behave the
// same on each. The zero value is ready to use.
type Set struct {
	mu      sync.RWMutex
	subs    map[*Subscription]struct{}
	closed  bool
	dropped atomic.Uint64
}

// Add returns a new subscription to the events in region with sequences
// from next() on, with a channel buffer of size buffer (at least 1). next
// is called under the set's lock, so an event offered concurrently is
// either below it or delivered. After CloseAll, Add returns [batpak.ErrClosed].
func (set *Set) Add(region batpak.Region, buffer int, next func() uint64) (*Subscription, error) {
	c := make(chan batpak.Record, max(buffer, 1))
	sub := &Subscription{c: c, region: region, set: set}
	set.mu.Lock()
	defer set.mu.Unlock()
	if set.closed {
		return nil, batpak.ErrClosed
	}
	if set.subs == nil {
		set.subs = make(map[*Subscription]struct{})
	}
	sub.from = next()
	set.subs[sub] = struct{}{}
	return sub, nil
}

// Offer delivers new events to every subscription they match, dropping
// (and counting) what a full channel cannot take. records is called only
// when there are subscribers.
func (set *Set) Offer(records func() []batpak.Record) {
	set.mu.RLock()
	defer set.mu.RUnlock()
	if len(set.subs) == 0 {
		return
	}
	recs := records()
	for sub := range set.subs {
		for i := range recs {
			if recs[i].Sequence < sub.from || !sub.region.Match(&recs[i]) {
				continue
			}
			select {
			case sub.c <- recs[i]:
			default:
				sub.dropped.Add(1)
				set.dropped.Add(1)
			}
		}
	}
}

// CloseAll closes every subscription; later Adds fail.
func (set *Set) CloseAll() {
	set.mu.Lock()
	defer set.mu.Unlock()
	set.closed = true
	for sub := range set.subs {
		sub.closeLocked()
	}
}

// Len returns the number of open subscriptions.
func (set *Set) Len() int {
	set.mu.RLock()
	defer set.mu.RUnlock()
	return len(set.subs)
}

// Dropped returns how many events all subscriptions together lost.
func (set *Set) Dropped() uint64 { return set.dropped.Load() }
