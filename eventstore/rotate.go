package eventstore

import (
	"fmt"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak/segment"
)

// needsRotation reports whether n more bytes would overflow the active
// segment (or there is none yet). A segment holding no frames is never
// rotated, so a request larger than a segment still goes somewhere.
func (s *Store) needsRotation(n int) bool {
	if s.w == nil {
		return true
	}
	end := s.w.End() + int64(len(s.stage.buf))
	return end > segment.HeaderSize && end+int64(n) > s.cfg.segmentMaxBytes
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
