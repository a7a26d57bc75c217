package eventstore

import (
	"errors"
	"fmt"

	"github.com/batpak-go/batpak/segment"
)

// errFooterMismatch: a footer with a valid CRC that disagrees with the
// events before it. The segment is scanned instead.
var errFooterMismatch = errors.New("footer disagrees with the log")

// loader feeds checkpoints, footers and scanned frames into the index
// during recovery, checking that sequences are dense and versions and hash
// links continue.
type loader struct {
	s       *Store
	pending []loadedEvent // events of an open batch
}

type loadedEvent struct {
	seq      uint64
	e        entry
	ids      eventIDs
	version  uint64
	entity   string
	scope    string
	prevHash [32]byte
	hash     [32]byte
	key      string
	off      int64
}

type batchState struct {
	open        bool
	beginOffset int64
	count       uint64
	firstSeq    uint64
}

// addFooter loads a sealed segment's footer, skipping events the index
// already has (a checkpoint may cover part of the segment).
func (l *loader) addFooter(ix *segment.Index, path string) error {
	skip := l.s.ix.lastSeq()
	next := skip + 1
	for i := range ix.Entries {
		if seq := ix.Entries[i].Seq; seq > skip {
			if seq != next {
				return fmt.Errorf("%w: %s: sequence %d where %d was expected", errFooterMismatch, path, seq, next)
			}
			next++
		}
	}
	if err := l.addIndex(ix, skip); err != nil {
		return err
	}
	l.s.coldStart.EventsFromFooters += next - skip - 1
	return nil
}

// addIndex appends the entries of ix with sequences above skip, whose
// sequences the caller checked, and applies tails and keys. It changes
// nothing when it fails, so the caller can fall back to a frame scan.
func (l *loader) addIndex(src *segment.Index, skip uint64) error {
	ix := l.s.ix
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if err := checkIndex(ix, src, skip); err != nil {
		return err
	}
	for i := range src.Entries {
		se := &src.Entries[i]
		if se.Seq <= skip {
			continue
		}
		if se.Seq != ix.lastSeq()+1 {
			return fmt.Errorf("%w: sequence %d where %d was expected", errFooterMismatch, se.Seq, ix.lastSeq()+1)
		}
		si, st := ix.streamFor(streamID{scope: src.Strings[se.Scope], entity: src.Strings[se.Entity]})
		if se.Version != st.version()+1 {
			return fmt.Errorf("%w: %q version %d follows %d", errFooterMismatch, st.entity, se.Version, st.version())
		}
		ix.addAt(se.Seq, entry{
			Kind: se.Kind, Flags: se.Flags & (segment.EntryDeleted | segment.EntryLost),
			Pos:    segment.Position{Segment: se.Segment, Offset: se.Offset, Length: se.Length},
			Stream: si,
		}, &eventIDs{id: se.ID, corr: se.Correlation, cause: se.Causation}, nil)
	}
	for _, t := range src.Tails {
		st := ix.lookup(tailID(src, t))
		if st == nil {
			return fmt.Errorf("%w: tail of unknown stream %v", errFooterMismatch, tailID(src, t))
		}
		if st.version() == t.Version {
			ix.streams.setLastHash(st, &t.LastHash)
		}
	}
	for _, k := range src.Keys {
		ix.keys[k.Key] = k
	}
	for _, d := range src.Deleted {
		// A compacted segment's footer lists every stream deleted when it
		// was rewritten, also streams that begin in later segments: their
		// events and tombstone come later in the log.
		ix.markDeleted(streamID{scope: src.Strings[d.Scope], entity: src.Strings[d.Entity]})
	}
	return nil
}

// tailID names the stream of footer tail t.
func tailID(src *segment.Index, t segment.StreamTail) streamID {
	return streamID{scope: src.Strings[t.Scope], entity: src.Strings[t.Entity]}
}

// checkIndex checks, without changing anything, that the entries of src
// above skip continue the global sequence and their streams' versions and
// that its tails name known streams. Caller holds ix.mu.
func checkIndex(ix *memIndex, src *segment.Index, skip uint64) error {
	next := ix.lastSeq() + 1
	versions := make(map[streamID]uint64)
	version := func(id streamID) (uint64, bool) {
		if v, ok := versions[id]; ok {
			return v, true
		}
		if st := ix.lookup(id); st != nil {
			return st.version(), true
		}
		return 0, false
	}
	for i := range src.Entries {
		se := &src.Entries[i]
		if se.Seq <= skip {
			continue
		}
		if se.Seq != next {
			return fmt.Errorf("%w: sequence %d where %d was expected", errFooterMismatch, se.Seq, next)
		}
		next++
		id := streamID{scope: src.Strings[se.Scope], entity: src.Strings[se.Entity]}
		if v, _ := version(id); se.Version != v+1 {
			return fmt.Errorf("%w: %v version %d follows %d", errFooterMismatch, id, se.Version, v)
		}
		versions[id] = se.Version
	}
	for _, t := range src.Tails {
		if _, ok := version(tailID(src, t)); !ok {
			return fmt.Errorf("%w: tail of unknown stream %v", errFooterMismatch, tailID(src, t))
		}
	}
	return nil
}

// addFrame handles one scanned frame: batch markers open and close a batch
// whose events are applied only at its commit marker.
func (l *loader) addFrame(bs *batchState, seg uint32, off int64, size int, rec *segment.Record, path string) error {
	corrupt := func(format string, args ...any) error {
		return &segment.CorruptError{Segment: seg, Path: path, Offset: off, Reason: fmt.Sprintf(format, args...)}
	}
	if rec.IsMarker() {
		switch rec.Kind {
		case segment.KindBatchBegin:
			if bs.open {
				return corrupt("batch begins inside the batch that began at %d", bs.beginOffset)
			}
			*bs = batchState{open: true, beginOffset: off, count: rec.Version, firstSeq: rec.Seq}
			l.pending = l.pending[:0]
		case segment.KindBatchCommit:
			if !bs.open || uint64(len(l.pending)) != bs.count || rec.Version != bs.count {
				return corrupt("batch commit marker without its %d events", rec.Version)
			}
			for i := range l.pending {
				if err := l.apply(&l.pending[i], bs.count, seg, path); err != nil {
					return err
				}
			}
			bs.open = false
		case segment.KindTombstone:
			if bs.open {
				return corrupt("tombstone inside a batch")
			}
			return l.tombstone(streamID{scope: rec.Scope, entity: rec.Entity}, corrupt)
		case segment.KindHole:
			if bs.open {
				return corrupt("hole frame inside a batch")
			}
			return l.hole(seg, off, size, rec, path, corrupt)
		default:
			return corrupt("unknown system kind 0x%04x", rec.Kind)
		}
		return nil
	}
	ev := loadedEvent{
		e: entry{
			Kind: rec.Kind,
			Pos:  segment.Position{Segment: seg, Offset: uint32(off), Length: uint32(size)},
		},
		ids: eventIDs{id: rec.ID, corr: rec.Correlation, cause: rec.Causation}, version: rec.Version,
		seq: rec.Seq, entity: rec.Entity, scope: rec.Scope, prevHash: rec.PrevHash, hash: rec.Hash,
		key: rec.IdempotencyKey, off: off,
	}
	if bs.open {
		l.pending = append(l.pending, ev)
		return nil
	}
	return l.apply(&ev, 1, seg, path)
}

// tombstone marks a stream deleted.
func (l *loader) tombstone(id streamID, corrupt func(string, ...any) error) error {
	ix := l.s.ix
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if ix.lookup(id) == nil {
		return corrupt("tombstone of unknown stream %v", id)
	}
	ix.markDeleted(id)
	return nil
}

// hole adds the stubs of events compaction removed: they keep their
// sequences, versions and chain links, and are never shown to readers.
func (l *loader) hole(seg uint32, off int64, size int, rec *segment.Record, path string, corrupt func(string, ...any) error) error {
	stubs, err := segment.DecodeStubs(rec.Payload)
	if err != nil {
		return corrupt("hole frame: %v", err)
	}
	if uint64(len(stubs)) != rec.Version || len(stubs) == 0 || stubs[0].Seq != rec.Seq {
		return corrupt("hole frame says %d stubs from %d, holds %d", rec.Version, rec.Seq, len(stubs))
	}
	pos := segment.Position{Segment: seg, Offset: uint32(off), Length: uint32(size)}
	flags := segment.EntryDeleted
	if rec.Metadata[segment.HoleLostKey] != "" {
		flags |= segment.EntryLost
	}
	for _, st := range stubs {
		ev := loadedEvent{
			seq: st.Seq,
			e:   entry{Kind: st.Kind, Pos: pos, Flags: flags},
			ids: stubIDs(&st), version: st.Version,
			entity: st.Entity, scope: st.Scope, prevHash: st.PrevHash, hash: st.Hash, off: off,
		}
		if err := l.apply(&ev, 1, seg, path); err != nil {
			return err
		}
	}
	return nil
}

// apply publishes one scanned event after checking that it continues the
// global sequence and its stream's version and hash chain.
func (l *loader) apply(ev *loadedEvent, count uint64, seg uint32, path string) error {
	ix := l.s.ix
	ix.mu.Lock()
	defer ix.mu.Unlock()
	corrupt := func(format string, args ...any) error {
		return &segment.CorruptError{Segment: seg, Path: path, Offset: ev.off, Reason: fmt.Sprintf(format, args...)}
	}
	seq := ix.lastSeq() + 1
	if ev.seq != seq {
		return corrupt("sequence %d where %d was expected (a hole or a duplicate)", ev.seq, seq)
	}
	si, st := ix.streamFor(streamID{scope: ev.scope, entity: ev.entity})
	if want := st.version() + 1; ev.version != want {
		return corrupt("%q version %d where %d was expected", ev.entity, ev.version, want)
	}
	last, err := ix.lastHashLocked(st)
	if err != nil {
		return err
	}
	if ev.prevHash != last {
		return corrupt("%q version %d does not link to the previous event's hash", ev.entity, ev.version)
	}
	ev.e.Stream = si
	if ev.key != "" {
		ix.keys[ev.key] = segment.IdempotencyRecord{Key: ev.key, First: seq, Count: uint32(count)}
	}
	ix.addAt(seq, ev.e, &ev.ids, &ev.hash)
	l.s.coldStart.EventsScanned++
	return nil
}
