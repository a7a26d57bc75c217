package natsstore

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"slices"
	"sort"
	"strings"
	"time"

	"github.com/google/uuid"
	"github.com/nats-io/nats.go/jetstream"
	"github.com/nats-io/nuid"

	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/segment"
)

// Get returns the event with id, or [eventstore.ErrNotFound].
func (s *Store) Get(id uuid.UUID) (eventstore.Record, error) {
	if err := s.checkOpen(); err != nil {
		return eventstore.Record{}, err
	}
	seq := s.ix.lookupID(id)
	if seq == 0 {
		return eventstore.Record{}, fmt.Errorf("%w: event %s", eventstore.ErrNotFound, id)
	}
	return s.read(s.ix.snapshot().at(seq), seq)
}

// GetSequence returns the event with global sequence seq, or
// [eventstore.ErrNotFound].
func (s *Store) GetSequence(seq uint64) (eventstore.Record, error) {
	if err := s.checkOpen(); err != nil {
		return eventstore.Record{}, err
	}
	log := s.ix.snapshot()
	if seq == 0 || seq > log.len() || log.at(seq).skipped() {
		return eventstore.Record{}, fmt.Errorf("%w: sequence %d", eventstore.ErrNotFound, seq)
	}
	return s.read(log.at(seq), seq)
}

// read returns the record of entry e at seq, from the cache or the server.
func (s *Store) read(e *entry, seq uint64) (eventstore.Record, error) {
	if err := s.checkOpen(); err != nil {
		return eventstore.Record{}, err
	}
	if rec, ok := e.record(seq); ok {
		return rec, nil
	}
	ctx, cancel := context.WithTimeout(context.Background(), s.cfg.timeout)
	defer cancel()
	m, err := s.stream.GetMsg(ctx, seq)
	if err != nil {
		if s.closed.Load() {
			return eventstore.Record{}, eventstore.ErrClosed
		}
		return eventstore.Record{}, fmt.Errorf("natsstore: read sequence %d: %w", seq, err)
	}
	ev, err := decodeMessage(s.prefix, m.Subject, m.Header, m.Data, m.Sequence)
	if err != nil {
		return eventstore.Record{}, err
	}
	if ev.id != e.id {
		return eventstore.Record{}, fmt.Errorf("%w: sequence %d holds event %s, the index %s", ErrInvalidMessage, seq, ev.id, e.id)
	}
	return e.recordWith(seq, ev.meta, ev.payload), nil
}

// yieldToAppends lets other goroutines run every 32 events of a read
// while an append of this client waits for the server: reads of cached
// bodies never block, and when they keep every processor busy the
// goroutines that complete the append (the connection's reader, the
// index) would otherwise wait for the scheduler's next preemption.
func (s *Store) yieldToAppends(i uint64) {
	if i%32 == 31 && s.appending.Load() > 0 {
		runtime.Gosched()
	}
}

// LastSequence returns the global sequence of the newest event this client
// has indexed (see [Store.CatchUp] for other clients' appends).
func (s *Store) LastSequence() uint64 { return s.ix.lastSeq() }

// StreamVersion returns the version of entity's stream as this client has
// indexed it: 0 if it has no events.
func (s *Store) StreamVersion(entity string) uint64 { return s.ix.streamVersion(entity) }

// ReadStream yields entity's events from version from (1 or 0: the first)
// in version order, or with [eventstore.Backward] from version from down to
// 1. An unknown entity yields nothing.
func (s *Store) ReadStream(entity string, from uint64, opts ...eventstore.ReadOption) iter.Seq2[eventstore.Record, error] {
	o := eventstore.ResolveReadOptions(opts...)
	return func(yield func(eventstore.Record, error) bool) {
		if err := s.checkOpen(); err != nil {
			yield(eventstore.Record{}, err)
			return
		}
		seqs := s.ix.streamSeqs(entity)
		log := s.ix.snapshot()
		n := 0
		for i := range o.Positions(from, len(seqs)) {
			if o.Limit > 0 && n == o.Limit {
				return
			}
			seq := seqs[i]
			s.yieldToAppends(uint64(n))
			n++
			rec, err := s.read(log.at(seq), seq)
			if !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// ReadAll yields every event from global sequence from (0 or 1: the first)
// in commit order, up to the newest indexed when the read reaches it.
func (s *Store) ReadAll(from uint64) iter.Seq2[eventstore.Record, error] {
	return s.Query(eventstore.Region{FromSequence: from})
}

// matchEntry evaluates region r against an index entry.
func matchEntry(r *eventstore.Region, seq uint64, e *entry) bool {
	return !e.skipped() && (r.Entity == "" || r.Entity == e.entity) && strings.HasPrefix(e.entity, r.EntityPrefix) &&
		(r.Scope == "" || r.Scope == e.scope) &&
		(len(r.Kinds) == 0 || slices.Contains(r.Kinds, kindOf(e))) &&
		seq >= r.FromSequence && (r.ToSequence == 0 || seq <= r.ToSequence) &&
		(r.After.IsZero() || e.ts >= r.After.UnixMicro()) && (r.Before.IsZero() || e.ts < r.Before.UnixMicro())
}

// Query yields the events in region r in commit order.
func (s *Store) Query(r eventstore.Region) iter.Seq2[eventstore.Record, error] {
	return func(yield func(eventstore.Record, error) bool) {
		if err := s.checkOpen(); err != nil {
			yield(eventstore.Record{}, err)
			return
		}
		log := s.ix.snapshot()
		if r.Entity != "" {
			seqs := s.ix.streamSeqs(r.Entity)
			i := sort.Search(len(seqs), func(i int) bool { return seqs[i] >= r.FromSequence })
			for j, seq := range seqs[i:] {
				if seq > log.len() || r.ToSequence != 0 && seq > r.ToSequence {
					return
				}
				s.yieldToAppends(uint64(j))
				if e := log.at(seq); matchEntry(&r, seq, e) {
					rec, err := s.read(e, seq)
					if !yield(rec, err) || err != nil {
						return
					}
				}
			}
			return
		}
		for seq := max(r.FromSequence, 1); seq <= log.len(); seq++ {
			if r.ToSequence != 0 && seq > r.ToSequence {
				return
			}
			s.yieldToAppends(seq)
			if e := log.at(seq); matchEntry(&r, seq, e) {
				rec, err := s.read(e, seq)
				if !yield(rec, err) || err != nil {
					return
				}
			}
		}
	}
}

// Replay yields the events in region from global sequence from (0 or 1:
// the first), like Query, up to the newest indexed when it was called: the
// path for projections catching up on a long history. Events whose bodies
// are no longer cached are streamed from the server with one ordered
// consumer (filtered by subject when the region names an entity) instead
// of one request per event.
func (s *Store) Replay(region eventstore.Region, from uint64) iter.Seq2[eventstore.Record, error] {
	return func(yield func(eventstore.Record, error) bool) {
		if err := s.checkOpen(); err != nil {
			yield(eventstore.Record{}, err)
			return
		}
		log := s.ix.snapshot()
		last := log.len()
		from = max(from, region.FromSequence, 1)
		if region.ToSequence != 0 {
			last = min(last, region.ToSequence)
		}
		if from > last {
			return
		}
		s.ix.mu.RLock()
		cold := min(s.ix.evictNext-1, last) // sequences below evictNext have no cached body
		s.ix.mu.RUnlock()
		if cold >= from {
			if !s.replayCold(region, from, cold, log, yield) {
				return
			}
			from = cold + 1
		}
		for seq := from; seq <= last; seq++ {
			s.yieldToAppends(seq)
			if e := log.at(seq); matchEntry(&region, seq, e) {
				rec, err := s.read(e, seq)
				if !yield(rec, err) || err != nil {
					return
				}
			}
		}
	}
}

// replayCold streams sequences from..to from the server; it reports
// whether the caller should go on.
func (s *Store) replayCold(region eventstore.Region, from, to uint64, log entryLog, yield func(eventstore.Record, error) bool) bool {
	fail := func(err error) bool {
		if s.closed.Load() {
			err = eventstore.ErrClosed
		}
		yield(eventstore.Record{}, err)
		return false
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	go func() {
		select {
		case <-s.done:
			cancel()
		case <-ctx.Done():
		}
	}()
	filter := s.cfg.prefix + ".>"
	if region.Entity != "" {
		filter = s.prefix + escapeToken(region.Entity)
	}
	cons, err := s.js.OrderedConsumer(ctx, s.cfg.stream, jetstream.OrderedConsumerConfig{
		FilterSubjects: []string{filter},
		DeliverPolicy:  jetstream.DeliverByStartSequencePolicy,
		// Removed by the server a minute after the store stops using it.
		InactiveThreshold: time.Minute,
		OptStartSeq:       from,
		NamePrefix:        "batpak_replay_" + nuid.Next(),
	})
	if err != nil {
		return fail(fmt.Errorf("natsstore: replay consumer: %w", err))
	}
	deadline := time.Now().Add(s.cfg.timeout)
	for {
		batch, err := cons.FetchNoWait(256)
		if err != nil {
			return fail(fmt.Errorf("natsstore: replay: %w", err))
		}
		got := 0
		for m := range batch.Messages() {
			got++
			meta, err := m.Metadata()
			if err != nil {
				return fail(err)
			}
			seq := meta.Sequence.Stream
			if seq > to {
				return true
			}
			if e := log.at(seq); matchEntry(&region, seq, e) {
				ev, err := decodeMessage(s.prefix, m.Subject(), m.Headers(), m.Data(), seq)
				if err != nil {
					return fail(err)
				}
				if !yield(e.recordWith(seq, ev.meta, ev.payload), nil) {
					return false
				}
			}
			if s.closed.Load() {
				yield(eventstore.Record{}, eventstore.ErrClosed)
				return false
			}
			if seq == to || meta.NumPending == 0 {
				return true
			}
		}
		if err := batch.Error(); err != nil && !errors.Is(err, jetstream.ErrNoMessages) {
			return fail(fmt.Errorf("natsstore: replay: %w", err))
		}
		if got == 0 {
			if time.Now().After(deadline) {
				return fail(fmt.Errorf("natsstore: replay: no message after sequence %d", from))
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// Streams yields every stream this client has indexed, in the order they
// began.
func (s *Store) Streams() iter.Seq[eventstore.StreamInfo] {
	return func(yield func(eventstore.StreamInfo) bool) {
		s.ix.mu.RLock()
		order := s.ix.order
		s.ix.mu.RUnlock()
		for _, entity := range order {
			s.ix.mu.RLock()
			st := s.ix.streams[entity]
			info := eventstore.StreamInfo{Entity: entity, Version: st.version, LastSequence: st.lastSeq()}
			s.ix.mu.RUnlock()
			if !yield(info) {
				return
			}
		}
	}
}

// Correlated returns the sequences of the events whose correlation id is
// id, other than the root itself, in commit order.
func (s *Store) Correlated(id uuid.UUID) []uint64 { return s.ix.related(s.ix.corr, id) }

// CausedBy returns the sequences of the events whose causation id is id, in
// commit order.
func (s *Store) CausedBy(id uuid.UUID) []uint64 { return s.ix.related(s.ix.cause, id) }

// VerifyChain recomputes the hash of every event of entity's stream and
// checks each link to the previous event. It returns an
// [*eventstore.ChainError] for the first event that does not verify.
func (s *Store) VerifyChain(entity string) error {
	var prev [32]byte
	var want uint64 = 1
	for rec, err := range s.ReadStream(entity, 1) {
		if err != nil {
			return err
		}
		broken := func(reason string) error {
			return &eventstore.ChainError{Entity: entity, Version: rec.Version, Sequence: rec.Sequence, Reason: reason}
		}
		if rec.Version != want {
			return broken("version out of order")
		}
		if rec.PrevHash != prev {
			return broken("previous hash does not match the previous event")
		}
		h := eventHash(&segment.Record{
			Entity: entity, Scope: rec.Coordinate.Scope, Version: rec.Version, Kind: uint16(rec.Kind),
			Timestamp: rec.Timestamp.UnixMicro(), ID: rec.ID, Correlation: rec.CorrelationID, Causation: rec.CausationID,
			PrevHash: rec.PrevHash, Metadata: rec.Metadata, Payload: rec.Payload,
		})
		if h != rec.Hash {
			return broken("hash does not match the event's content")
		}
		prev = rec.Hash
		want++
	}
	return nil
}
