package eventstore

import (
	"context"
	"errors"
	"fmt"
	"iter"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/ctxerr"
	"github.com/batpak-go/batpak/segment"
)

var _ batpak.Store = (*Store)(nil)

// Get returns the event with id, or [batpak.ErrNotFound].
func (s *Store) Get(ctx context.Context, id uuid.UUID) (batpak.Record, error) {
	if err := s.checkRead(ctx); err != nil {
		return batpak.Record{}, err
	}
	seq, err := s.lookupID(id)
	if err != nil {
		return batpak.Record{}, s.readFailed(err)
	}
	if seq == 0 {
		return batpak.Record{}, fmt.Errorf("%w: event %s", batpak.ErrNotFound, id)
	}
	return s.readSeq(seq)
}

// GetSequence returns the event with global sequence seq, or
// [batpak.ErrNotFound].
func (s *Store) GetSequence(ctx context.Context, seq uint64) (batpak.Record, error) {
	if err := s.checkRead(ctx); err != nil {
		return batpak.Record{}, err
	}
	if seq == 0 || seq > s.LastSequence() {
		return batpak.Record{}, fmt.Errorf("%w: sequence %d", batpak.ErrNotFound, seq)
	}
	return s.readSeq(seq)
}

// Position returns where the event at global sequence seq is stored: its
// segment, offset and frame length. ok is false for a sequence the store
// does not hold. The place changes when compaction rewrites the segment.
func (s *Store) Position(seq uint64) (pos segment.Position, ok bool) {
	if seq == 0 || seq > s.LastSequence() {
		return pos, false
	}
	v := s.ix.snapshot()
	return v.at(seq).Pos, true
}

func (s *Store) readSeq(seq uint64) (batpak.Record, error) {
	v := s.ix.snapshot()
	e := v.at(seq)
	if v.visible(e) {
		return s.readOpen(&v, seq, e)
	}
	return batpak.Record{}, notVisible(seq, e)
}

// notVisible is the error for reading event seq, whose entry e is not
// visible: deleted, or lost to damage and replaced by a repair.
func notVisible(seq uint64, e entry) error {
	if e.Flags&segment.EntryLost != 0 {
		return fmt.Errorf("%w: %w: sequence %d was lost to damage; a repair replaced it with a stub", batpak.ErrNotFound, ErrLost, seq)
	}
	return fmt.Errorf("%w: sequence %d was deleted", batpak.ErrNotFound, seq)
}

// readOpen reads event seq as readers see it ([Store.readable]).
func (s *Store) readOpen(v *view, seq uint64, e entry) (batpak.Record, error) {
	rec, err := s.readEntry(v, seq, e)
	if err != nil {
		return rec, err
	}
	return s.readable(rec)
}

// readEntry reads event seq at the position e gives, as it is stored. If compaction moved
// the frame since e was taken, the frame there holds another sequence (or
// none): the read is retried under the compaction lock, where the index
// and the files agree. The entity and scope are taken from v, which e
// belongs to, so that only the payload is allocated.
func (s *Store) readEntry(v *view, seq uint64, e entry) (batpak.Record, error) {
	var rec segment.Record
	st := v.streams.at(e.Stream)
	rec.Entity, rec.Scope = st.entity(), v.streams.scopes[st.scope]
	err := s.reader.Read(e.Pos, &rec)
	if err == nil && rec.Seq == seq && !rec.IsMarker() {
		return s.record(&rec, e.Pos), nil
	}
	if s.closed.Load() { // Close released the files under the read
		return batpak.Record{}, batpak.ErrClosed
	}
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	now := s.ix.snapshot()
	cur := now.at(seq)
	if !now.visible(cur) {
		return batpak.Record{}, notVisible(seq, cur)
	}
	// Read again even at the same position: e may already have been the
	// new position while the first read went to the segment's old file
	// (the index is updated before the reader drops the old mapping).
	err = s.reader.Read(cur.Pos, &rec)
	if err == nil && rec.Seq == seq && !rec.IsMarker() {
		return s.record(&rec, cur.Pos), nil
	}
	if err == nil {
		err = &segment.CorruptError{Segment: cur.Pos.Segment, Path: s.segmentPath(cur.Pos.Segment), Offset: int64(cur.Pos.Offset),
			Reason: fmt.Sprintf("frame holds sequence %d, the index says %d", rec.Seq, seq)}
	}
	if s.closed.Load() {
		return batpak.Record{}, batpak.ErrClosed
	}
	return batpak.Record{}, s.readFailed(err)
}

// readFailed counts err in Stats().CorruptReads if it is damage met on a
// read, and returns it.
func (s *Store) readFailed(err error) error {
	if errors.Is(err, batpak.ErrCorrupt) {
		s.stats.corruptReads.Add(1)
	}
	return err
}

// LastSequence returns the global sequence of the newest visible event.
func (s *Store) LastSequence() uint64 {
	s.ix.mu.RLock()
	defer s.ix.mu.RUnlock()
	return s.ix.lastSeq()
}

// StreamVersion returns the version of the stream coord: 0 if it has no
// events.
func (s *Store) StreamVersion(coord batpak.Coordinate) uint64 { return s.ix.streamVersion(coord) }

// ReadStream yields the events of the stream coord from version from (1 or
// 0: the first) in version order, or with [batpak.Backward] from version
// from down to 1. An unknown stream yields nothing.
func (s *Store) ReadStream(ctx context.Context, coord batpak.Coordinate, from uint64, opts ...batpak.ReadOption) iter.Seq2[batpak.Record, error] {
	o := batpak.ResolveReadOptions(opts...)
	return func(yield func(batpak.Record, error) bool) {
		if err := s.checkRead(ctx); err != nil {
			yield(batpak.Record{}, err)
			return
		}
		seqs := s.ix.streamSeqs(coord)
		entries := s.ix.snapshot()
		yielded := 0
		for seq, e := range entries.visibleAhead(seqs, o.Positions(from, seqs.len()), s.reader.Prefetch) {
			if o.Limit > 0 && yielded == o.Limit {
				return
			}
			yielded++
			if err := ctxerr.Of(ctx); err != nil {
				yield(batpak.Record{}, err)
				return
			}
			rec, err := s.readOpen(&entries, seq, e)
			if !yield(rec, err) || err != nil {
				return
			}
		}
	}
}

// lookAhead is how many index entries visibleAhead reads ahead.
const lookAhead = 32

// visibleAhead yields the sequences seqs[i], for i in the order given, whose
// entries are visible, with their entries. It checks up to lookAhead
// entries before yielding them and hands their positions to prefetch: a
// stream's entries and frames are scattered over the index and the
// segments, and taking them in a row lets their cache misses and disk
// reads overlap instead of following each other. Once prefetch reports
// frames already in memory, the rest are not handed to it.
func (v *view) visibleAhead(seqs seqList, order iter.Seq[int], prefetch func([]segment.Position) bool) iter.Seq2[uint64, entry] {
	return func(yield func(uint64, entry) bool) {
		var ahead [lookAhead]uint64
		var ents [lookAhead]entry
		var pos [lookAhead]segment.Position
		n := 0
		cold := true
		flush := func() bool {
			if cold {
				for i := range n {
					pos[i] = ents[i].Pos
				}
				cold = prefetch(pos[:n])
			}
			for i, seq := range ahead[:n] {
				if !yield(seq, ents[i]) {
					return false
				}
			}
			n = 0
			return true
		}
		for i := range order { // version v is seqs.at(v-1)
			seq := seqs.at(i)
			e := v.at(seq)
			if !v.visible(e) {
				continue
			}
			ahead[n], ents[n] = seq, e
			if n++; n == lookAhead && !flush() {
				return
			}
		}
		flush()
	}
}

// ReadAll yields every event from global sequence from (0 or 1: the first)
// in commit order, up to the newest visible when the read reaches it.
func (s *Store) ReadAll(ctx context.Context, from uint64) iter.Seq2[batpak.Record, error] {
	return s.Query(ctx, batpak.Region{FromSequence: from})
}

// Query yields the events in region r in commit order.
func (s *Store) Query(ctx context.Context, r batpak.Region) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		if err := s.checkRead(ctx); err != nil {
			yield(batpak.Record{}, err)
			return
		}
		entries := s.ix.snapshot()
		m := newEntryMatcher(r, s.ix)
		if r.Entity != "" {
			seqs := s.ix.entitySeqs(r.Entity, r.Scope)
			for i := seqs.search(r.FromSequence); i < seqs.len(); i++ {
				seq := seqs.at(i)
				// seqs was taken after entries: stop at the snapshot's end.
				if seq > entries.len() || r.ToSequence != 0 && seq > r.ToSequence {
					return
				}
				if e := entries.at(seq); entries.visible(e) && m.match(seq, e) {
					if !s.yieldEntry(ctx, &r, &entries, seq, e, yield) {
						return
					}
				}
			}
			return
		}
		start := max(r.FromSequence, 1)
		for seq := start; seq <= entries.len(); seq++ {
			if r.ToSequence != 0 && seq > r.ToSequence {
				return
			}
			if e := entries.at(seq); entries.visible(e) && m.match(seq, e) {
				if !s.yieldEntry(ctx, &r, &entries, seq, e, yield) {
					return
				}
			}
		}
	}
}

// yieldEntry reads event seq and yields it if it lies in r's time bounds,
// or yields ctx's error or the read's; it returns whether the read goes on.
func (s *Store) yieldEntry(ctx context.Context, r *batpak.Region, v *view, seq uint64, e entry, yield func(batpak.Record, error) bool) bool {
	if err := ctxerr.Of(ctx); err != nil {
		yield(batpak.Record{}, err)
		return false
	}
	rec, err := s.readOpen(v, seq, e)
	if err == nil && !r.MatchTime(rec.Timestamp.UnixMicro()) {
		return true
	}
	return yield(rec, err) && err == nil
}

// Correlated returns the sequences of the events whose correlation id is id,
// other than the root itself, in commit order.
func (s *Store) Correlated(id uuid.UUID) []uint64 { return s.related(false, id) }

// CausedBy returns the sequences of the events whose causation id is id, in
// commit order.
func (s *Store) CausedBy(id uuid.UUID) []uint64 { return s.related(true, id) }

// Streams yields every stream, in the order they were created.
func (s *Store) Streams() iter.Seq[batpak.StreamInfo] {
	return func(yield func(batpak.StreamInfo) bool) {
		s.ix.mu.RLock()
		streams := s.ix.streams
		s.ix.mu.RUnlock()
		for i := range streams.len() {
			st := streams.at(i)
			if st.isDeleted() {
				continue
			}
			id := streams.id(st)
			s.ix.mu.RLock()
			l := st.list()
			s.ix.mu.RUnlock()
			l = s.ix.checkedList(i, st, l)
			info := batpak.StreamInfo{Coordinate: batpak.Coordinate{Entity: id.entity, Scope: id.scope}, Version: uint64(l.len()), LastSequence: l.last()}
			if !yield(info) {
				return
			}
		}
	}
}

// checkRead returns why a read cannot start: the store is closed or ctx
// has ended.
func (s *Store) checkRead(ctx context.Context) error {
	if err := s.checkOpen(); err != nil {
		return err
	}
	return ctxerr.Of(ctx)
}
