package memstore

import (
	"context"
	"fmt"
	"iter"
	"slices"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/chain"
)

// Get returns the event with id, or an error matching [batpak.ErrNotFound].
func (s *Store) Get(ctx context.Context, id uuid.UUID) (batpak.Record, error) {
	if err := s.checkRead(ctx); err != nil {
		return batpak.Record{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	seq, ok := s.byID[id]
	if !ok {
		return batpak.Record{}, fmt.Errorf("%w: event %s", batpak.ErrNotFound, id)
	}
	return s.record(s.log, seq)
}

// GetSequence returns the event at global sequence seq, or an error
// matching [batpak.ErrNotFound].
func (s *Store) GetSequence(ctx context.Context, seq uint64) (batpak.Record, error) {
	if err := s.checkRead(ctx); err != nil {
		return batpak.Record{}, err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	if seq == 0 || seq > uint64(len(s.log)) {
		return batpak.Record{}, fmt.Errorf("%w: sequence %d", batpak.ErrNotFound, seq)
	}
	return s.record(s.log, seq)
}

// StreamVersion returns the version of the stream coord: 0 if it has no
// events.
func (s *Store) StreamVersion(coord batpak.Coordinate) uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return s.tip(coord).version
}

// LastSequence returns the global sequence of the newest event.
func (s *Store) LastSequence() uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return uint64(len(s.log))
}

// ReadStream yields the events of the stream coord from version from (0 or
// 1: the first) in version order, or with [batpak.Backward] from version
// from (0: the newest) down to 1. It reads the stream as it was when the
// read began. An unknown stream yields nothing.
func (s *Store) ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error] {
	o := batpak.ResolveReadOptions(opts...)
	return func(yield func(batpak.Record, error) bool) {
		if err := s.checkRead(ctx); err != nil {
			yield(batpak.Record{}, err)
			return
		}
		s.mu.RLock()
		log := s.log[:len(s.log):len(s.log)]
		var seqs []uint64
		if st, ok := s.streams[coord]; ok {
			seqs = st.seqs[:len(st.seqs):len(st.seqs)]
		}
		s.mu.RUnlock()
		yielded := 0
		for i := range o.Positions(from, len(seqs)) {
			if o.Limit > 0 && yielded == o.Limit {
				return
			}
			if err := s.checkRead(ctx); err != nil {
				yield(batpak.Record{}, err)
				return
			}
			yielded++
			if rec, err := s.record(log, seqs[i]); !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// ReadAll yields every event from global sequence from (0 or 1: the first)
// on, in commit order, up to the newest when the read began.
func (s *Store) ReadAll(ctx context.Context, from uint64) iter.Seq2[batpak.Record, error] {
	return s.Query(ctx, batpak.Region{FromSequence: from})
}

// Query yields the events in r in commit order, up to the newest when the
// read began.
func (s *Store) Query(ctx context.Context, r batpak.Region) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		if err := s.checkRead(ctx); err != nil {
			yield(batpak.Record{}, err)
			return
		}
		log := s.snapshot()
		last := uint64(len(log))
		if r.ToSequence != 0 {
			last = min(last, r.ToSequence)
		}
		for seq := max(r.FromSequence, 1); seq <= last; seq++ {
			if err := s.checkRead(ctx); err != nil {
				yield(batpak.Record{}, err)
				return
			}
			if !r.Match(&log[seq-1]) {
				continue
			}
			if rec, err := s.record(log, seq); !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// Replay yields the events in region from global sequence from (0 or 1:
// the first), up to the newest when it was called: the catch-up read of a
// projection runner. In memory it is [Store.Query] from the later of from
// and the region's FromSequence.
func (s *Store) Replay(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error] {
	region.FromSequence = max(region.FromSequence, from)
	return s.Query(ctx, region)
}

// Correlated returns the sequences of the events whose correlation id is
// id, other than the root event id itself, in commit order.
func (s *Store) Correlated(id uuid.UUID) []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.correlated[id])
}

// CausedBy returns the sequences of the events whose causation id is id,
// in commit order.
func (s *Store) CausedBy(id uuid.UUID) []uint64 {
	s.mu.RLock()
	defer s.mu.RUnlock()
	return slices.Clone(s.causedBy[id])
}

// VerifyChain recomputes the hash of every event of the stream coord and
// checks each link to the previous event. It returns a
// [*batpak.ChainError] for the first event that does not verify. In memory
// nothing can damage a chain: this is for code written against a store
// where something can.
func (s *Store) VerifyChain(ctx context.Context, coord batpak.Coordinate) error {
	if err := s.checkRead(ctx); err != nil {
		return err
	}
	s.mu.RLock()
	defer s.mu.RUnlock()
	st, ok := s.streams[coord]
	if !ok {
		return nil
	}
	h := chain.New()
	var prev [32]byte
	for i, seq := range st.seqs {
		rec := &s.log[seq-1]
		want := uint64(i + 1)
		switch {
		case rec.Version != want:
			return chainBroken(coord, want, seq, "version out of order")
		case rec.PrevHash != prev:
			return chainBroken(coord, want, seq, "previous hash does not match the previous event")
		case sum(h, rec) != rec.Hash:
			return chainBroken(coord, want, seq, "hash does not match the event's content")
		}
		prev = rec.Hash
	}
	return nil
}

// chainBroken is the error for the event at version and sequence seq of
// the stream c, whose link does not verify.
func chainBroken(c batpak.Coordinate, version, seq uint64, reason string) error {
	return &batpak.ChainError{Stream: c, Version: version, Sequence: seq, Reason: reason}
}
