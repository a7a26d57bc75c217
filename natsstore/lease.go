package natsstore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/batpak-go/batpak/projection"
)

// KVLeases are [projection.Leases] in a JetStream key-value bucket beside
// the store ("<stream>_leases" unless [WithBucket] names another), for
// runners of one projection in processes on any machines: one of them
// applies events at a time, and when it dies or is cut off another takes
// over within about the TTL.
//
// A lease is one key (the projection's name escaped as a key token). A
// holder writes it with compare and set — Create when it is free, Update
// with the revision it read otherwise — and renews it every quarter of
// the TTL with an Update of its own revision; Release deletes it (with
// that revision). A waiting runner polls the key every eighth of the TTL
// and takes the lease when the key is free, or when its revision has not
// changed for a whole TTL as measured on its own clock from when it first
// saw that revision: the holder has stopped renewing. Holders and waiters
// compare durations on their own clocks only, never timestamps, so clock
// offsets between machines do not matter (clock rates must agree to well
// within a third of the TTL).
//
// A holder that cannot renew (server unreachable, connection closed, or
// the lease taken over) reports the lease lost two thirds of the TTL after
// it sent its last successful renewal, or at once when the lease is gone:
// its runner stops applying then. Since a waiter saw that renewal after it
// was sent and waits a whole TTL more, the holder has a third of the TTL
// to finish the Apply under way and save its checkpoint before anyone
// else can start: the TTL must exceed the longest Apply with room to
// spare. A process paused (stopped, swapping) for longer than that can
// still apply one event late; a read model that must exclude even that
// needs a fencing check of its own.
//
// Takeover: at once after a Release (within one poll), and within the TTL
// and one poll after the holder's last renewal when it dies or is cut off.
type KVLeases struct {
	kv  jetstream.KeyValue
	ttl time.Duration
}

var _ projection.Leases = (*KVLeases)(nil)

// leaseValue is the value of a held lease key.
type leaseValue struct {
	Holder string `json:"holder"`
	TTL    int64  `json:"ttl_ms"` // waiters wait at least this long, whatever their own TTL
}

// NewKVLeases binds to the lease bucket of s, creating it if needed with
// file storage and the replicas of s's stream. ttl bounds the takeover
// after a holder dies; every runner sharing a lease should use the same.
func NewKVLeases(ctx context.Context, s *Store, ttl time.Duration, opts ...KVOption) (*KVLeases, error) {
	if ttl < 10*time.Millisecond {
		return nil, fmt.Errorf("natsstore: lease TTL %v is below 10 ms", ttl)
	}
	kv, err := s.openBucket(ctx, "_leases", "projection leases", opts)
	if err != nil {
		return nil, err
	}
	return &KVLeases{kv: kv, ttl: ttl}, nil
}

// Acquire waits until it holds the lease named name, or ctx ends.
func (l *KVLeases) Acquire(ctx context.Context, name string) (projection.Lease, error) {
	key, err := escapeKey(name)
	if err != nil {
		return nil, err
	}
	val, err := json.Marshal(leaseValue{Holder: nuid.Next(), TTL: l.ttl.Milliseconds()})
	if err != nil {
		return nil, err
	}
	poll := l.ttl / 8
	var (
		seen   uint64        // the revision of the holder being watched
		seenAt time.Time     // when this waiter first saw it
		wait   time.Duration // how long it must stay unchanged
	)
	t := time.NewTimer(0)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-t.C:
		}
		var rev uint64
		sent := time.Now()
		e, err := l.kv.Get(ctx, key)
		switch {
		case errors.Is(err, jetstream.ErrKeyNotFound):
			seen = 0
			sent = time.Now()
			rev, err = l.kv.Create(ctx, key, val)
		case err != nil:
		case e.Revision() != seen:
			seen, seenAt, wait = e.Revision(), time.Now(), l.ttl
			var v leaseValue
			if json.Unmarshal(e.Value(), &v) == nil {
				wait = max(wait, time.Duration(v.TTL)*time.Millisecond)
			}
		case time.Since(seenAt) >= wait:
			// Not renewed for a whole TTL: the holder is gone.
			sent = time.Now()
			rev, err = l.kv.Update(ctx, key, val, seen)
		}
		if err == nil && rev != 0 {
			return l.hold(key, val, rev, sent), nil
		}
		if err != nil && !kvConflict(err) && !retryable(err) {
			if ctx.Err() != nil {
				return nil, ctx.Err()
			}
			return nil, fmt.Errorf("natsstore: lease %s: %w", name, err)
		}
		d := poll
		if seen != 0 {
			d = min(d, max(time.Until(seenAt.Add(wait)), 0))
		}
		t.Reset(d)
	}
}

// kvLease is a held lease and its renewals.
type kvLease struct {
	kv     jetstream.KeyValue
	key    string
	val    []byte
	ttl    time.Duration
	rev    uint64 // written by renew until done is closed, then by Release
	lost   chan struct{}
	stop   context.CancelFunc // ends the renewals
	done   chan struct{}      // closed when the renewals have ended
	once   sync.Once
	relErr error
}

// hold starts renewing the lease written at revision rev, whose write was
// sent at sent.
func (l *KVLeases) hold(key string, val []byte, rev uint64, sent time.Time) *kvLease {
	ctx, stop := context.WithCancel(context.Background())
	h := &kvLease{kv: l.kv, key: key, val: val, ttl: l.ttl, rev: rev,
		lost: make(chan struct{}), stop: stop, done: make(chan struct{})}
	go h.renew(ctx, sent)
	return h
}

// renew renews the lease every quarter TTL and closes lost when it must be
// given up: two thirds of the TTL after the last successful renewal was
// sent, or at once when the lease was taken or cannot be renewed at all.
func (h *kvLease) renew(ctx context.Context, sent time.Time) {
	defer close(h.done)
	every, retry := h.ttl/4, max(h.ttl/20, time.Millisecond)
	giveUp := sent.Add(h.ttl - h.ttl/3)
	t := time.NewTimer(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		if !time.Now().Before(giveUp) {
			close(h.lost)
			return
		}
		rctx, cancel := context.WithDeadline(ctx, giveUp)
		at := time.Now()
		rev, err := h.kv.Update(rctx, h.key, h.val, h.rev)
		cancel()
		switch {
		case err == nil:
			h.rev, giveUp = rev, at.Add(h.ttl-h.ttl/3)
			t.Reset(every)
		case ctx.Err() != nil:
			return
		case kvConflict(err) || !retryable(err):
			close(h.lost)
			return
		default:
			t.Reset(min(retry, time.Until(giveUp)))
		}
	}
}

func (h *kvLease) Lost() <-chan struct{} { return h.lost }

// Release stops the renewals and deletes the lease key if it is still at
// this holder's revision, waiting at most the TTL (then the lease lapses
// by itself). A second Release does nothing.
func (h *kvLease) Release(ctx context.Context) error {
	h.once.Do(func() {
		h.stop()
		<-h.done
		ctx, cancel := context.WithTimeout(ctx, h.ttl)
		defer cancel()
		err := h.kv.Delete(ctx, h.key, jetstream.LastRevision(h.rev))
		if err != nil && !kvConflict(err) {
			h.relErr = fmt.Errorf("natsstore: release lease: %w", err)
		}
	})
	return h.relErr
}
