package eventstore

import (
	"errors"
	"fmt"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// The index keeps of an event only where it is and what region filters ask
// (entry); its ids, links and timestamp are read from its frame, or from
// its stub in a hole frame once compaction removed it.

// eventMeta is what a frame (or stub) tells of an event beyond its entry.
type eventMeta struct {
	eventIDs
	ts      int64
	version uint64
}

// indexEntry returns the footer form of event seq of stream id, interning
// its entity and scope in strs.
func indexEntry(seq uint64, e entry, m *eventMeta, id streamID, strs *segment.StringTable) segment.IndexEntry {
	return segment.IndexEntry{
		Seq: seq, Version: m.version, Timestamp: m.ts, ID: m.id, Correlation: m.corr, Causation: m.cause,
		Kind: e.Kind, Flags: e.Flags, Entity: strs.ID(id.entity), Scope: strs.ID(id.scope),
		Segment: e.Pos.Segment, Offset: e.Pos.Offset, Length: e.Pos.Length,
	}
}

// idsAt reads the ids and links of event seq of v. It is an [idReader].
func (s *Store) idsAt(v *view, seq uint64) (eventIDs, error) {
	m, err := s.metaAt(v, seq)
	return m.eventIDs, err
}

// metaAt reads what the frame (or stub) of event seq of v says of it. If
// that fails or finds another event (compaction may have moved the frame
// since v was taken), it reads again under the compaction lock, where the
// index and the files agree, as [Store.readEntry] does. A read that Close
// cut short fails with [batpak.ErrClosed].
func (s *Store) metaAt(v *view, seq uint64) (m eventMeta, err error) {
	defer func() {
		if err != nil && s.closed.Load() {
			err = batpak.ErrClosed
		}
	}()
	if m, ok, err := s.readMeta(v, seq, v.at(seq).Pos); ok && err == nil {
		return m, nil
	}
	s.compactMu.RLock()
	defer s.compactMu.RUnlock()
	now := s.ix.snapshot()
	pos := now.at(seq).Pos
	m, ok, err := s.readMeta(&now, seq, pos)
	if !ok && err == nil {
		err = &segment.CorruptError{Segment: pos.Segment, Path: s.segmentPath(pos.Segment), Offset: int64(pos.Offset),
			Reason: fmt.Sprintf("the frame the index gives for sequence %d holds neither it nor its stub", seq)}
	}
	return m, err
}

// readMeta reads event seq at pos; ok is false if the frame there holds
// neither the event nor its stub.
func (s *Store) readMeta(v *view, seq uint64, pos segment.Position) (m eventMeta, ok bool, err error) {
	var rec segment.Record
	if err := s.reader.ReadHead(pos, &rec); err != nil {
		return m, false, err
	}
	if rec.Kind == segment.KindHole {
		rec.Entity, rec.Scope = v.known(seq)
		if err := s.reader.Read(pos, &rec); err != nil {
			return m, false, err
		}
		st, err := s.stubAt(pos, &rec, seq)
		if st == nil {
			return m, false, err
		}
		return eventMeta{eventIDs: stubIDs(st), ts: st.Timestamp, version: st.Version}, true, nil
	}
	if rec.Seq != seq || rec.IsMarker() {
		return m, false, nil
	}
	return eventMeta{eventIDs: eventIDs{id: rec.ID, corr: rec.Correlation, cause: rec.Causation}, ts: rec.Timestamp, version: rec.Version}, true, nil
}

// stubAt returns the stub of sequence seq in hole frame rec, read at pos,
// or nil if the hole holds none.
func (s *Store) stubAt(pos segment.Position, rec *segment.Record, seq uint64) (*segment.Stub, error) {
	stubs, err := segment.DecodeStubs(rec.Payload)
	if err != nil {
		return nil, &segment.CorruptError{Segment: pos.Segment, Path: s.segmentPath(pos.Segment), Offset: int64(pos.Offset), Reason: err.Error()}
	}
	for i := range stubs {
		if stubs[i].Seq == seq {
			return &stubs[i], nil
		}
	}
	return nil, nil
}

// stubIDs returns the ids of a stub; a stub that does not know its
// correlation (a repair's) counts as a root.
func stubIDs(st *segment.Stub) eventIDs {
	ids := eventIDs{id: st.ID, corr: st.Correlation, cause: st.Causation}
	if ids.corr == ([16]byte{}) {
		ids.corr = ids.id
	}
	return ids
}

// linkDamaged reports an event whose links could not be read: it is left
// out of the causal maps, and reading it fails with err.
func (s *Store) linkDamaged(seq uint64, err error) {
	if errors.Is(err, batpak.ErrClosed) {
		return
	}
	_ = s.readFailed(err)
	s.log.Warn("event left out of the causal index", zap.Uint64("sequence", seq), zap.Error(err))
}

// lookupID returns the sequence of event id, or 0.
func (s *Store) lookupID(id [16]byte) (uint64, error) {
	return s.ix.lookupID(id, s.idsAt, s.linkDamaged)
}

// related returns the visible sequences of the events whose causation
// (byCause) or correlation id is id.
func (s *Store) related(byCause bool, id [16]byte) []uint64 {
	return s.ix.related(byCause, id, s.idsAt, s.linkDamaged)
}

// metaChunk is the number of metas in a chunk of a metaLog.
const metaChunk = 4096

// metaLog is the append-only list of the metas of the active segment's
// events, in fixed-size chunks: it grows without copying, and reset keeps
// the chunks for the next segment.
type metaLog struct {
	chunks []*[metaChunk]eventMeta
	n      int
}

func (l *metaLog) at(i int) *eventMeta { return &l.chunks[i/metaChunk][i%metaChunk] }

func (l *metaLog) append(m eventMeta) {
	if l.n/metaChunk == len(l.chunks) {
		l.chunks = append(l.chunks, new([metaChunk]eventMeta))
	}
	l.chunks[l.n/metaChunk][l.n%metaChunk] = m
	l.n++
}

func (l *metaLog) reset() { l.n = 0 }
