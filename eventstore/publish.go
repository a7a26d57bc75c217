package eventstore

import (
	"fmt"

	"go.uber.org/zap"

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
	for _, q := range st.reqs {
		if q.r.key == "" || q.dupOf >= 0 || q.syncOnly {
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

// originalReceipts rebuilds the receipts of an earlier request from the
// index and the frames (for the hashes).
func (s *Store) originalReceipts(k segment.IdempotencyRecord) result {
	s.stats.idempotentHits.Add(1)
	entries := s.ix.snapshot()
	out := make([]Receipt, 0, k.Count)
	var rec segment.Record
	for seq := k.First; seq < k.First+uint64(k.Count); seq++ {
		if seq == 0 || seq > entries.len() {
			return result{err: fmt.Errorf("eventstore: idempotency key %q points at missing sequence %d", k.Key, seq)}
		}
		e := entries.at(seq)
		if err := s.reader.Read(e.pos, &rec); err != nil {
			return result{err: err}
		}
		out = append(out, Receipt{EventID: e.id, Sequence: seq, Version: e.version, Hash: rec.Hash, Position: e.pos})
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
	touched := make(map[uint32]struct{})
	for seq := s.activeFirstSeq; seq <= ix.lastSeq(); seq++ {
		out.Entries = append(out.Entries, ix.indexEntry(seq, &strs))
		touched[ix.entries.at(seq).stream] = struct{}{}
	}
	for si := range touched {
		str := ix.streams[si]
		out.Tails = append(out.Tails, segment.StreamTail{Entity: strs.ID(str.entity), Version: str.version, LastHash: str.lastHash})
	}
	out.Strings = strs.Strings
	return out
}
