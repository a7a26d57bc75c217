package eventstore

import (
	"context"
	"fmt"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// publish makes a durable chunk visible: index entries, stream tips,
// correlation and causation links and idempotency keys, then wakes cursors.
func (s *Store) publish(st *stage) {
	ix := s.ix
	ix.mu.Lock()
	for i := range st.events {
		ev := &st.events[i]
		r := &ev.rec
		ix.add(r.Seq, entry{id: r.ID, corr: r.Correlation, cause: r.Causation, ts: r.Timestamp, version: r.Version, pos: ev.pos, kind: r.Kind},
			r.Entity, r.Scope, r.Hash)
	}
	for id := range st.deleted {
		if str := ix.lookup(id); str != nil {
			str.deleted.Store(true)
		}
	}
	for _, q := range st.reqs {
		if q.r.key == "" || q.dupOf >= 0 || q.syncOnly || q.err != nil || q.n == 0 {
			continue
		}
		k := segment.IdempotencyRecord{Key: q.r.key, First: st.events[q.first].rec.Seq, Count: uint32(q.n)}
		ix.keys[k.Key] = k
		s.activeKeys = append(s.activeKeys, k)
	}
	ix.mu.Unlock()
	s.stats.appendedEvents.Add(uint64(len(st.events)))
	s.wake()
}

// DeleteStream deletes entity's stream with a durable tombstone: its events
// disappear from every read at once, later appends to it fail with
// [ErrStreamDeleted], and [Store.Compact] removes them from the segment
// files (stubs keep sequences and the hash chain verifiable). Deleting a
// stream twice is not an error; deleting one that never existed is
// [ErrNotFound].
func (s *Store) DeleteStream(ctx context.Context, coord batpak.Coordinate) error {
	if err := coord.Validate(); err != nil {
		return err
	}
	_, err := s.submit(ctx, &request{delete: coord})
	return err
}

// encodeTombstone validates and encodes a tombstone request.
func (s *Store) encodeTombstone(st *stage, r *request) error {
	st.scratch = st.scratch[:0]
	clear(st.pending)
	st.pending = st.pending[:0]
	tip := s.tip(st, nil, idOf(r.delete))
	if tip.version == 0 {
		return fmt.Errorf("%w: stream %s", batpak.ErrNotFound, r.delete)
	}
	if tip.deleted {
		return nil // the scratch stays empty: nothing to write
	}
	m := segment.Record{Seq: st.nextSeq - 1, Kind: segment.KindTombstone, Timestamp: s.cfg.clock().UnixMicro(),
		Entity: r.delete.Entity, Scope: r.delete.Scope}
	st.recBuf = segment.AppendRecord(st.recBuf[:0], &m)
	st.scratch, _ = segment.AppendFrame(st.scratch, st.recBuf)
	return nil
}

// originalReceipts rebuilds the receipts of an earlier request from the
// index and the frames (for the hashes).
func (s *Store) originalReceipts(k segment.IdempotencyRecord) result {
	s.stats.idempotentHits.Add(1)
	entries := s.ix.snapshot()
	out := make([]batpak.Receipt, 0, k.Count)
	for seq := k.First; seq < k.First+uint64(k.Count); seq++ {
		if seq == 0 || seq > entries.len() {
			return result{err: fmt.Errorf("eventstore: idempotency key %q points at missing sequence %d", k.Key, seq)}
		}
		e := entries.at(seq)
		if !entries.visible(e) {
			return result{err: fmt.Errorf("%w: the events of idempotency key %q were deleted", batpak.ErrNotFound, k.Key)}
		}
		rec, err := s.readEntry(&entries, seq, e)
		if err != nil {
			return result{err: err}
		}
		out = append(out, batpak.Receipt{EventID: e.id, Sequence: seq, Version: e.version, Hash: rec.Hash})
	}
	return result{receipts: out}
}

// rotate seals the active segment (footer index, sync) and starts the next.
func (s *Store) rotate() error {
	if s.w != nil {
		if s.w.End() == segment.HeaderSize {
			return nil // empty: keep using it
		}
		if err := s.seal(); err != nil {
			return err
		}
	}
	id := s.nextSegment
	w, err := segment.Create(s.fs, s.dir, id, s.cfg.clock().UnixMicro(), s.preallocSize(), s.cfg.fileMode)
	if err != nil {
		return err
	}
	s.w = w
	s.nextSegment++
	s.activeFirstSeq = s.ix.lastSeq() + 1
	s.activeKeys = nil
	s.reader.SetActive(id, w.File())
	s.activeSegment.Store(id)
	s.activeEnd.Store(w.End())
	s.stats.segments.Add(1)
	s.log.Debug("segment created", zap.Uint32("segment", id))
	return nil
}

func (s *Store) preallocSize() int64 {
	if s.cfg.preallocate {
		return s.cfg.segmentMaxBytes
	}
	return 0
}

// seal writes the active segment's footer and hands it to the reader as a
// sealed (memory-mapped) segment.
func (s *Store) seal() error {
	if s.unsynced > 0 {
		s.stats.syncs.Add(1)
	}
	ix := s.footerIndex()
	if err := s.w.Seal(ix); err != nil {
		return fmt.Errorf("eventstore: seal segment %d: %w", s.w.ID(), err)
	}
	s.unsynced = 0
	id := s.w.ID()
	s.reader.Seal(id)
	s.sealedThrough.Store(id) // compaction may take it from now on
	if err := s.w.Close(); err != nil {
		s.log.Warn("close sealed segment", zap.Uint32("segment", id), zap.Error(err))
	}
	s.w = nil
	s.log.Debug("segment sealed", zap.Uint32("segment", id), zap.Int("events", len(ix.Entries)))
	return nil
}

// footerIndex builds the footer of the active segment from the index.
func (s *Store) footerIndex() *segment.Index {
	ix := s.ix
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var strs segment.StringTable
	out := &segment.Index{Keys: append([]segment.IdempotencyRecord(nil), s.activeKeys...)}
	if last := ix.lastSeq(); last >= s.activeFirstSeq {
		out.Entries = make([]segment.IndexEntry, 0, last-s.activeFirstSeq+1)
	}
	touched := make(map[uint32]struct{})
	for seq := s.activeFirstSeq; seq <= ix.lastSeq(); seq++ {
		out.Entries = append(out.Entries, ix.indexEntry(seq, &strs))
		touched[ix.entries.at(seq).stream] = struct{}{} // under the read lock
	}
	for si := range touched {
		str := ix.streams[si]
		out.Tails = append(out.Tails, segment.StreamTail{Entity: strs.ID(str.entity), Scope: strs.ID(str.scope), Version: str.version, LastHash: str.lastHash})
	}
	for _, str := range ix.streams {
		if str.deleted.Load() {
			out.Deleted = append(out.Deleted, segment.StreamRef{Entity: strs.ID(str.entity), Scope: strs.ID(str.scope)})
		}
	}
	out.Strings = strs.Strings
	return out
}
