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
	refs, err := checkIndex(ix, src, skip)
	if err != nil {
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
		ref := refs.of(se.Entity, se.Scope)
		if !ref.indexed {
			ref.num, _ = ix.streamFor(ref.id)
			ref.indexed = true
		}
		if st := ix.streams.at(ref.num); se.Version != st.version()+1 || st.version() == maxStreamEvents {
			return fmt.Errorf("%w: %q version %d follows %d", errFooterMismatch, st.entity(), se.Version, st.version())
		}
		ix.addAt(se.Seq, entry{
			Kind: se.Kind, Flags: se.Flags & (segment.EntryDeleted | segment.EntryLost),
			Pos:    segment.Position{Segment: se.Segment, Offset: se.Offset, Length: se.Length},
			Stream: ref.num,
		}, &eventIDs{id: se.ID, corr: se.Correlation, cause: se.Causation}, nil)
	}
	for _, t := range src.Tails {
		ref := refs.of(t.Entity, t.Scope)
		if !ref.indexed {
			return fmt.Errorf("%w: tail of unknown stream %v", errFooterMismatch, ref.id)
		}
		if st := ix.streams.at(ref.num); st.version() == t.Version {
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

// footerRefs numbers the streams a footer names, by the pair of its
// strings that names each, so that the index's stream table is searched
// once per stream of the footer, not once per entry.
type footerRefs struct {
	ix  *memIndex
	src *segment.Index
	// byEntity[e] is 1 + the ref of the first pair with entity string e;
	// slot holds the other pairs (entity<<32 | scope), an entity named in
	// several scopes.
	byEntity []int32
	slot     map[uint64]int32
	byID     map[streamID]int32 // a stream the footer's strings name twice has one ref
	refs     []footerRef
}

// footerRef is a stream a footer names.
type footerRef struct {
	id      streamID
	scope   uint32 // the scope string of the pair that made it
	num     uint32 // the stream's number in the index, if indexed
	indexed bool   // the index has the stream (addIndex adds it)
	version uint64 // its version in the index, then as checkIndex finds the entries raise it
}

// of returns the stream the footer's strings entity and scope name,
// looked up in the index the first time. The reference is valid until the
// next call.
func (f *footerRefs) of(entity, scope uint32) *footerRef {
	first := f.byEntity[entity] - 1
	if first >= 0 && f.refs[first].scope == scope {
		return &f.refs[first]
	}
	key := uint64(entity)<<32 | uint64(scope)
	if k, ok := f.slot[key]; ok {
		return &f.refs[k]
	}
	id := streamID{scope: f.src.Strings[scope], entity: f.src.Strings[entity]}
	k, ok := f.byID[id]
	if !ok {
		k = int32(len(f.refs))
		f.byID[id] = k
		r := footerRef{id: id, scope: scope}
		if i, found := f.ix.byStream.find(&f.ix.streams, id); found {
			r.num, r.indexed, r.version = i, true, f.ix.streams.at(i).version()
		}
		f.refs = append(f.refs, r)
	}
	if first < 0 && f.refs[k].scope == scope {
		f.byEntity[entity] = k + 1
	} else {
		if f.slot == nil {
			f.slot = make(map[uint64]int32)
		}
		f.slot[key] = k
	}
	return &f.refs[k]
}

// checkIndex checks, without changing ix, that the entries of src above
// skip continue the global sequence and their streams' versions and that
// its tails name known streams, and returns the streams src names, looked
// up in ix. Caller holds ix.mu.
func checkIndex(ix *memIndex, src *segment.Index, skip uint64) (*footerRefs, error) {
	// A footer's strings are its streams' entities and scopes: about as
	// many as its streams.
	refs := &footerRefs{ix: ix, src: src, byEntity: make([]int32, len(src.Strings)),
		byID: make(map[streamID]int32, len(src.Strings)), refs: make([]footerRef, 0, len(src.Strings))}
	next := ix.lastSeq() + 1
	for i := range src.Entries {
		se := &src.Entries[i]
		if se.Seq <= skip {
			continue
		}
		if se.Seq != next {
			return nil, fmt.Errorf("%w: sequence %d where %d was expected", errFooterMismatch, se.Seq, next)
		}
		next++
		r := refs.of(se.Entity, se.Scope)
		if se.Version != r.version+1 {
			return nil, fmt.Errorf("%w: %v version %d follows %d", errFooterMismatch, r.id, se.Version, r.version)
		}
		r.version = se.Version
	}
	for _, t := range src.Tails {
		if r := refs.of(t.Entity, t.Scope); !r.indexed && r.version == 0 {
			return nil, fmt.Errorf("%w: tail of unknown stream %v", errFooterMismatch, r.id)
		}
	}
	return refs, nil
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
	if len(ev.entity) > segment.MaxIndexString { // no append writes one
		return corrupt("an entity of %d bytes", len(ev.entity))
	}
	si, st := ix.streamFor(streamID{scope: ev.scope, entity: ev.entity})
	if st.version() == maxStreamEvents {
		return corrupt("%q has more events than a stream holds", ev.entity)
	}
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
