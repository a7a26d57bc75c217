package eventstore

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// entry is the in-memory index record of one event: where it is and what a
// region filter asks of it without reading its frame (Flags:
// segment.EntryDeleted when compaction removed it and a stub remains).
// Everything else (id, correlation, causation, timestamp) is in the frame,
// or in the hole frame's stub of a removed event, and read from there when
// needed ([Store.idsAt]); the version is the event's place in its stream.
// A checkpoint's packed blocks hold the same entries.
type entry = segment.PackedEntry

// eventIDs are an event's id and causal links.
type eventIDs struct {
	id    [16]byte
	corr  [16]byte // equal to id for a root event
	cause [16]byte // zero for a root event
}

// streamID names a stream: a stream is identified by its whole coordinate,
// so the same entity in two scopes is two streams.
type streamID struct{ scope, entity string }

func idOf(c batpak.Coordinate) streamID { return streamID{scope: c.Scope, entity: c.Entity} }

// memIndex maps sequences to disk positions and ids, entities, scopes,
// correlation and causation to sequences. The committer appends; readers take
// the read lock only to copy slice headers, because published elements are
// never modified.
type memIndex struct {
	mu        sync.RWMutex
	entries   entryLog
	published atomic.Uint64 // entries.len(), readable without the lock
	streams   streamLog
	byStream  streamTable
	byScope   map[string]uint32 // scope → its number in streams.scopes
	deleted   []uint32          // numbers of the deleted streams, in the order of their deletion
	// The links are built from the frames on first use after a load
	// (ensureLinked): until linked, the maps are nil.
	linked      bool
	linking     sync.Mutex            // one ensureLinked builds the maps at a time
	correlation map[[16]byte][]uint64 // correlation id → members other than the root
	causation   map[[16]byte][]uint64 // cause id → direct effects
	byID        map[[16]byte]uint64   // only when linked and !idsSorted
	keys        map[string]segment.IdempotencyRecord
	idsSorted   bool     // ids increase with sequence: Get binary searches the frames
	lastID      [16]byte // of the last event
	// lists, for an index loaded from a checkpoint, checks the streams'
	// lists on first use (ckptlists.go); listRepaired, if set, hears of
	// each list found wrong and rebuilt.
	lists        *ckptLists
	listRepaired func(id streamID, found, want int, why error)
	// hashReread reads the hash of event seq from its frame, for a last
	// hash of the checkpoint whose chunk fails its checksum (lastHashLocked).
	hashReread func(v *view, seq uint64) ([32]byte, error)
	// fence[k] is the id of event k*fenceStep+1, while ids are sorted:
	// Get binary searches it before it reads frames. Appends extend it;
	// after a checkpoint load it is filled from the frames on first use.
	fence [][16]byte
}

// fenceStep is how many events one fence id stands for: a lookup by id
// reads at most about log2(fenceStep) frames, and the fence takes 16
// bytes per fenceStep events.
const fenceStep = 64

func newMemIndex() *memIndex {
	return &memIndex{
		streams:     streamLog{hashes: new(hashSlab)},
		byStream:    newStreamTable(0),
		byScope:     make(map[string]uint32),
		linked:      true,
		correlation: make(map[[16]byte][]uint64),
		causation:   make(map[[16]byte][]uint64),
		keys:        make(map[string]segment.IdempotencyRecord),
		idsSorted:   true,
	}
}

// lastSeq returns the highest published sequence. Caller holds mu or the store's commit mutex.
func (ix *memIndex) lastSeq() uint64 { return ix.published.Load() }

// streamFor returns the stream id, creating it. Caller holds mu for writing.
func (ix *memIndex) streamFor(id streamID) (uint32, *stream) {
	if j, ok := ix.byStream.add(&ix.streams, id, ix.streams.len()); ok {
		return j, ix.streams.at(j)
	}
	sc := ix.addScope(id.scope)
	i, s := ix.streams.push()
	s.setEntity(id.entity)
	s.scope = sc
	return i, s
}

// markDeleted records that a tombstone deleted stream id, if it is known.
// Caller holds mu for writing.
func (ix *memIndex) markDeleted(id streamID) {
	if i, ok := ix.byStream.find(&ix.streams, id); ok {
		ix.markDeletedAt(i)
	}
}

// markDeletedAt records that a tombstone deleted stream i. Caller holds mu
// for writing.
func (ix *memIndex) markDeletedAt(i uint32) {
	if st := ix.streams.at(i); !st.isDeleted() {
		st.markDeleted()
		ix.deleted = append(ix.deleted, i)
	}
}

// deletedRefs appends the deleted streams to refs in the order of their
// numbers, interning their names in strs. Caller holds mu.
func (ix *memIndex) deletedRefs(refs []segment.StreamRef, strs *segment.StringTable) []segment.StreamRef {
	for _, i := range slices.Sorted(slices.Values(ix.deleted)) {
		id := ix.streams.id(ix.streams.at(i))
		refs = append(refs, segment.StreamRef{Entity: strs.ID(id.entity), Scope: strs.ID(id.scope)})
	}
	return refs
}

// lookup returns the stream id, or nil. Caller holds mu, or is the
// commit mutex's holder (the only one that mutates the index).
func (ix *memIndex) lookup(id streamID) *stream {
	if i, ok := ix.byStream.find(&ix.streams, id); ok {
		return ix.streams.at(i)
	}
	return nil
}

// addScope returns the number of scope, adding it to the scopes if it is
// new. Caller holds mu for writing.
func (ix *memIndex) addScope(scope string) uint32 {
	i, ok := ix.byScope[scope]
	if !ok {
		i = uint32(len(ix.streams.scopes))
		ix.byScope[scope] = i
		ix.streams.scopes = append(ix.streams.scopes, scope)
	}
	return i
}

// add publishes one event of the stream (scope, entity). Caller holds mu
// for writing; seq must be lastSeq()+1.
func (ix *memIndex) add(seq uint64, e entry, ids *eventIDs, entity, scope string, hash [32]byte) {
	e.Stream, _ = ix.streamFor(streamID{scope: scope, entity: entity})
	ix.addAt(seq, e, ids, &hash)
}

// addAt publishes e, whose stream is set, as the next version of its
// stream; a nil hash leaves the stream's last hash as it is (footers carry
// it separately).
func (ix *memIndex) addAt(seq uint64, e entry, ids *eventIDs, hash *[32]byte) {
	s := ix.streams.at(e.Stream)
	if seq > 1 && ix.idsSorted && !idLess(&ix.lastID, &ids.id) {
		// Get can no longer binary search: the id map is built with
		// the links, from the frames, when first needed.
		ix.idsSorted, ix.fence = false, nil
		ix.unlink()
	}
	ix.lastID = ids.id
	if (seq-1)%fenceStep == 0 && uint64(len(ix.fence)) == (seq-1)/fenceStep {
		ix.fence = append(ix.fence, ids.id)
	}
	ix.entries.append(e)
	ix.published.Store(ix.entries.len())
	if ix.unchecked(s) {
		ix.settleLocked(e.Stream, s)
	}
	s.add(seq)
	if hash != nil {
		ix.streams.setLastHash(s, hash)
	}
	if ix.linked {
		ix.link(seq, ids)
	}
}

// unlink drops the links: ensureLinked builds them again. Caller holds mu
// for writing.
func (ix *memIndex) unlink() {
	ix.linked, ix.correlation, ix.causation, ix.byID = false, nil, nil, nil
}

// link adds event seq to the correlation and causation maps and, when ids
// are not sorted, to the id map. Caller holds mu for writing.
func (ix *memIndex) link(seq uint64, ids *eventIDs) {
	linkInto(ix.correlation, ix.causation, ix.byID, seq, ids)
}

func linkInto(correlation, causation map[[16]byte][]uint64, byID map[[16]byte]uint64, seq uint64, ids *eventIDs) {
	if ids.corr != ids.id {
		correlation[ids.corr] = append(correlation[ids.corr], seq)
	}
	if ids.cause != ([16]byte{}) {
		causation[ids.cause] = append(causation[ids.cause], seq)
	}
	if byID != nil {
		byID[ids.id] = seq
	}
}

// idReader reads the ids and links of event seq of v from its frame (or
// stub). It must not be called under mu.
type idReader func(v *view, seq uint64) (eventIDs, error)

// ensureLinked builds the correlation and causation maps (and the id map
// when ids are not sorted) if they are not, reading every event's ids with
// read. It reads on snapshots, without holding up publishes and reads, and
// takes the write lock only to install the maps once they cover every
// published event. An event whose frame cannot be read is left out of the
// maps and handed to damaged (reading it fails the same way).
func (ix *memIndex) ensureLinked(read idReader, damaged func(seq uint64, err error)) {
	ix.linking.Lock()
	defer ix.linking.Unlock()
	for {
		ix.mu.RLock()
		linked := ix.linked
		ix.mu.RUnlock()
		if linked || ix.buildLinks(read, damaged) {
			return
		}
	}
}

// buildLinks builds the maps and installs them; it returns false, having
// installed nothing, if ids stopped being sorted while it read.
func (ix *memIndex) buildLinks(read idReader, damaged func(seq uint64, err error)) bool {
	ix.mu.RLock()
	sorted := ix.idsSorted
	ix.mu.RUnlock()
	correlation := make(map[[16]byte][]uint64)
	causation := make(map[[16]byte][]uint64)
	var byID map[[16]byte]uint64
	if !sorted {
		byID = make(map[[16]byte]uint64)
	}
	var done uint64
	for {
		v := ix.snapshot()
		for seq := done + 1; seq <= v.len(); seq++ {
			ids, err := read(&v, seq)
			if err != nil {
				damaged(seq, err)
				continue
			}
			linkInto(correlation, causation, byID, seq, &ids)
		}
		done = v.len()
		ix.mu.Lock()
		if ix.idsSorted != sorted {
			ix.mu.Unlock()
			return false
		}
		if ix.entries.len() == done {
			ix.correlation, ix.causation, ix.byID, ix.linked = correlation, causation, byID, true
			ix.mu.Unlock()
			return true
		}
		ix.mu.Unlock() // more was published meanwhile: read it too
	}
}

// lookupID returns the sequence of event id, or 0. With sorted ids it
// binary searches the frames, else it looks in the id map.
func (ix *memIndex) lookupID(id [16]byte, read idReader, damaged func(seq uint64, err error)) (uint64, error) {
	ix.mu.RLock()
	sorted := ix.idsSorted
	ix.mu.RUnlock()
	if !sorted {
		// An index whose ids are not sorted never becomes sorted again.
		ix.ensureLinked(read, damaged)
		ix.mu.RLock()
		defer ix.mu.RUnlock()
		return ix.byID[id], nil
	}
	v := ix.snapshot()
	idAt := func(seq uint64) ([16]byte, error) {
		ids, err := read(&v, seq)
		return ids.id, err
	}
	lo, hi := uint64(1), v.len()
	if fence := ix.fenceOf(v.len(), idAt); len(fence) > 0 {
		// The last fence id not above id starts the only run that can
		// hold it.
		k, found := slices.BinarySearchFunc(fence, id, func(f, id [16]byte) int { return bytes.Compare(f[:], id[:]) })
		if found {
			return uint64(k)*fenceStep + 1, nil
		}
		if k == 0 {
			return 0, nil
		}
		lo, hi = uint64(k-1)*fenceStep+2, min(uint64(k)*fenceStep, v.len())
	}
	seq, err := searchID(id, lo, hi, idAt)
	var unreadable *unreadableError
	if errors.As(err, &unreadable) {
		// A deleted event is not found whether or not its stub can be
		// read: only a visible event among those unreadable ones is lost.
		for s := unreadable.from; s <= unreadable.to; s++ {
			if v.visible(v.at(s)) {
				return 0, unreadable.err
			}
		}
		return 0, nil
	}
	return seq, err
}

// unreadableError is searchID's answer when the id, if stored at all, is
// one of the events from…to, which cannot be read.
type unreadableError struct {
	from, to uint64
	err      error // of the read of from
}

func (e *unreadableError) Error() string { return e.err.Error() }
func (e *unreadableError) Unwrap() error { return e.err }

// fenceOf returns the fence of the first n events, reading the ids it
// lacks (after a checkpoint load) with idAt; nil if a frame it needs
// cannot be read, or ids are not sorted.
func (ix *memIndex) fenceOf(n uint64, idAt func(seq uint64) ([16]byte, error)) [][16]byte {
	want := int((n + fenceStep - 1) / fenceStep)
	ix.mu.RLock()
	fence, sorted := ix.fence, ix.idsSorted
	ix.mu.RUnlock()
	if !sorted || len(fence) >= want {
		return fence[:min(len(fence), want)]
	}
	more := make([][16]byte, 0, want-len(fence))
	for k := len(fence); k < want; k++ {
		id, err := idAt(uint64(k)*fenceStep + 1)
		if err != nil {
			return nil
		}
		more = append(more, id)
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if len(ix.fence) == len(fence) && ix.idsSorted { // else another lookup or an append got there first
		ix.fence = append(ix.fence, more...)
	}
	return ix.fence[:min(len(ix.fence), want)]
}

// searchID binary searches events lo…hi, whose ids increase, for id, reading
// ids with idAt. Where a probe meets events it cannot read, it reads on to
// the nearest readable ones on either side and goes on beside them: damage
// fails the search, with an [*unreadableError], only if id, if stored at
// all, is one of them.
func searchID(id [16]byte, lo, hi uint64, idAt func(seq uint64) ([16]byte, error)) (uint64, error) {
	for lo <= hi { // candidates, inclusive
		mid := lo + (hi-lo)/2
		got, err := idAt(mid)
		if err == nil {
			switch c := bytes.Compare(got[:], id[:]); {
			case c == 0:
				return mid, nil
			case c < 0:
				lo = mid + 1
			default:
				hi = mid - 1
			}
			continue
		}
		above, below := mid+1, mid-1
		var upper, lower [16]byte
		for ; above <= hi; above++ {
			if upper, err = idAt(above); err == nil {
				break
			}
		}
		if above <= hi {
			if upper == id {
				return above, nil
			}
			if idLess(&upper, &id) {
				lo = above + 1
				continue
			}
		}
		for ; below >= lo && below > 0; below-- {
			if lower, err = idAt(below); err == nil {
				break
			}
		}
		if below >= lo && below > 0 {
			if lower == id {
				return below, nil
			}
			if idLess(&id, &lower) {
				hi = below - 1
				continue
			}
		}
		_, err = idAt(below + 1) // id can only be one of the events that cannot be read
		return 0, &unreadableError{from: below + 1, to: above - 1, err: err}
	}
	return 0, nil
}

// view is a consistent snapshot of the published entries and streams for
// a reader; neither may be modified.
type view struct {
	entryLog
	streams streamLog
}

// snapshot returns a view of everything published.
func (ix *memIndex) snapshot() view {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return view{entryLog: ix.entries, streams: ix.streams}
}

// known returns the entity and scope of event seq, or empty strings for a
// sequence the view does not hold. It is a [segment.Known].
func (v *view) known(seq uint64) (entity, scope string) {
	if seq == 0 || seq > v.len() {
		return "", ""
	}
	st := v.streams.at(v.at(seq).Stream)
	return st.entity(), v.streams.scopes[st.scope]
}

// visible reports whether e may be shown to readers: not removed by
// compaction and not in a deleted stream.
func (v *view) visible(e entry) bool {
	return e.Flags&segment.EntryDeleted == 0 && !v.streams.at(e.Stream).isDeleted()
}

// streamSeqs returns the sequences of the stream c (empty if unknown).
func (ix *memIndex) streamSeqs(c batpak.Coordinate) seqList {
	ix.mu.RLock()
	num, ok := ix.byStream.find(&ix.streams, idOf(c))
	if !ok {
		ix.mu.RUnlock()
		return seqList{}
	}
	st := ix.streams.at(num)
	l := st.list()
	ix.mu.RUnlock()
	return ix.checkedList(num, st, l)
}

// entitySeqs returns the sequences of entity's events, ascending: of its
// stream in scope, or with an empty scope of its streams in every scope.
func (ix *memIndex) entitySeqs(entity, scope string) seqList {
	if scope != "" {
		return ix.streamSeqs(batpak.Coordinate{Entity: entity, Scope: scope})
	}
	ix.mu.RLock()
	scopes := ix.streams.scopes
	ix.mu.RUnlock()
	var first seqList
	var all []uint64 // of every stream, once there are two
	n := 0
	for _, sc := range scopes {
		l := ix.streamSeqs(batpak.Coordinate{Entity: entity, Scope: sc})
		if l.len() == 0 {
			continue
		}
		if n++; n == 1 {
			first = l
			continue
		}
		if n == 2 {
			all = first.appendTo(nil)
		}
		all = l.appendTo(all)
	}
	if n < 2 {
		return first
	}
	slices.Sort(all)
	return seqListOf(all)
}

// streamVersion returns the current version of the stream c (0 for no stream).
func (ix *memIndex) streamVersion(c batpak.Coordinate) uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if st := ix.lookup(idOf(c)); st != nil {
		return st.version()
	}
	return 0
}

// related returns the visible sequences of the events whose causation
// (byCause) or correlation id is id.
func (ix *memIndex) related(byCause bool, id [16]byte, read idReader, damaged func(seq uint64, err error)) []uint64 {
	ix.ensureLinked(read, damaged)
	ix.mu.RLock()
	m := ix.correlation
	if byCause {
		m = ix.causation
	}
	seqs := slices.Clone(m[id])
	ix.mu.RUnlock()
	v := ix.snapshot()
	return slices.DeleteFunc(seqs, func(seq uint64) bool { return !v.visible(v.at(seq)) })
}

func (id streamID) compare(o streamID) int {
	return cmp.Or(cmp.Compare(id.scope, o.scope), cmp.Compare(id.entity, o.entity))
}

func (id streamID) String() string { return fmt.Sprintf("%q in scope %q", id.entity, id.scope) }
