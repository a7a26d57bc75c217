package eventstore

import (
	"bytes"
	"cmp"
	"fmt"
	"slices"
	"sort"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// entry is the in-memory index record of one event.
type entry struct {
	id      [16]byte
	corr    [16]byte // equal to id for a root event
	cause   [16]byte // zero for a root event
	ts      int64    // unix µs
	version uint64
	pos     segment.Position
	stream  uint32 // index into memIndex.streams
	scope   uint32 // index into memIndex.scopes
	kind    uint16
	flags   uint16 // segment.EntryDeleted: removed by compaction, a stub remains
}

// streamID names a stream: a stream is identified by its whole coordinate,
// so the same entity in two scopes is two streams.
type streamID struct{ scope, entity string }

func idOf(c batpak.Coordinate) streamID { return streamID{scope: c.Scope, entity: c.Entity} }

// stream is the state of one stream.
type stream struct {
	entity   string
	scope    string
	version  uint64
	lastHash [32]byte
	seqs     []uint64    // global sequences, ascending; versions are dense: version v is seqs[v-1]
	deleted  atomic.Bool // a tombstone deleted the stream
}

// memIndex maps sequences to disk positions and ids, entities, scopes,
// correlation and causation to sequences. The committer appends; readers take
// the read lock only to copy slice headers, because published elements are
// never modified.
type memIndex struct {
	mu        sync.RWMutex
	entries   entryLog
	published atomic.Uint64 // entries.len(), readable without the lock
	streams   []*stream
	byStream  map[streamID]uint32
	scopes    []string
	byScope   map[string]uint32
	// The links are built on first use after a checkpoint load: until
	// linked, both maps are nil and the entries alone hold the ids.
	linked      bool
	linking     sync.Mutex            // one ensureLinked builds the maps at a time
	correlation map[[16]byte][]uint64 // correlation id → members other than the root
	causation   map[[16]byte][]uint64 // cause id → direct effects
	keys        map[string]segment.IdempotencyRecord
	idsSorted   bool                // ids increase with sequence: Get binary searches
	byID        map[[16]byte]uint64 // only when !idsSorted
}

func newMemIndex() *memIndex {
	return &memIndex{
		byStream:    make(map[streamID]uint32),
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
	if i, ok := ix.byStream[id]; ok {
		return i, ix.streams[i]
	}
	i := uint32(len(ix.streams))
	s := &stream{entity: id.entity, scope: id.scope}
	ix.streams = append(ix.streams, s)
	ix.byStream[id] = i
	return i, s
}

// lookup returns the stream id, or nil. Caller holds mu, or is the
// commit mutex's holder (the only one that mutates the index).
func (ix *memIndex) lookup(id streamID) *stream {
	if i, ok := ix.byStream[id]; ok {
		return ix.streams[i]
	}
	return nil
}

// scopeFor returns the index of scope, adding it. Caller holds mu for writing.
func (ix *memIndex) scopeFor(scope string) uint32 {
	if i, ok := ix.byScope[scope]; ok {
		return i
	}
	i := uint32(len(ix.scopes))
	ix.scopes = append(ix.scopes, scope)
	ix.byScope[scope] = i
	return i
}

// add publishes one event. Caller holds mu for writing; seq must be lastSeq()+1.
func (ix *memIndex) add(seq uint64, e entry, entity, scope string, hash [32]byte) {
	e.stream, _ = ix.streamFor(streamID{scope: scope, entity: entity})
	e.scope = ix.scopeFor(scope)
	ix.addAt(seq, e, &hash)
}

// addAt publishes e, whose stream and scope are set; a nil hash leaves the
// stream's last hash as it is (footers carry it separately).
func (ix *memIndex) addAt(seq uint64, e entry, hash *[32]byte) {
	s := ix.streams[e.stream]
	if n := ix.entries.len(); n > 0 && ix.idsSorted && bytes.Compare(e.id[:], ix.entries.at(n).id[:]) <= 0 {
		ix.idsSorted = false
		ix.byID = make(map[[16]byte]uint64, n+1)
		for i := uint64(1); i <= n; i++ {
			ix.byID[ix.entries.at(i).id] = i
		}
	}
	if !ix.idsSorted {
		ix.byID[e.id] = seq
	}
	ix.entries.append(e)
	ix.published.Store(ix.entries.len())
	s.version = e.version
	if hash != nil {
		s.lastHash = *hash
	}
	s.seqs = append(s.seqs, seq)
	if ix.linked {
		ix.link(seq, &e)
	}
}

// link adds event seq to the correlation and causation maps. Caller holds
// mu for writing.
func (ix *memIndex) link(seq uint64, e *entry) { linkInto(ix.correlation, ix.causation, seq, e) }

func linkInto(correlation, causation map[[16]byte][]uint64, seq uint64, e *entry) {
	if e.corr != e.id {
		correlation[e.corr] = append(correlation[e.corr], seq)
	}
	if e.cause != ([16]byte{}) {
		causation[e.cause] = append(causation[e.cause], seq)
	}
}

// ensureLinked builds the correlation and causation maps if they are not.
// The first call after a checkpoint load walks every event: it does so on
// a snapshot, without holding up publishes and reads, and takes the write
// lock only to link what was published meanwhile and install the maps.
func (ix *memIndex) ensureLinked() {
	ix.mu.RLock()
	linked := ix.linked
	ix.mu.RUnlock()
	if linked {
		return
	}
	ix.linking.Lock()
	defer ix.linking.Unlock()
	ix.mu.RLock()
	linked, entries := ix.linked, ix.entries
	ix.mu.RUnlock()
	if linked {
		return
	}
	correlation := make(map[[16]byte][]uint64)
	causation := make(map[[16]byte][]uint64)
	for seq := uint64(1); seq <= entries.len(); seq++ {
		linkInto(correlation, causation, seq, entries.at(seq))
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for seq := entries.len() + 1; seq <= ix.entries.len(); seq++ {
		linkInto(correlation, causation, seq, ix.entries.at(seq))
	}
	ix.correlation, ix.causation, ix.linked = correlation, causation, true
}

// indexEntry returns the on-disk index form of event seq, interning its
// entity and scope in strs. Caller holds mu or the store's commit mutex.
func (ix *memIndex) indexEntry(seq uint64, strs *segment.StringTable) segment.IndexEntry {
	e := ix.entries.at(seq)
	return segment.IndexEntry{
		Seq: seq, Version: e.version, Timestamp: e.ts,
		ID: e.id, Correlation: e.corr, Causation: e.cause, Kind: e.kind, Flags: e.flags,
		Entity:  strs.ID(ix.streams[e.stream].entity),
		Scope:   strs.ID(ix.scopes[e.scope]),
		Segment: e.pos.Segment, Offset: e.pos.Offset, Length: e.pos.Length,
	}
}

// lookupID returns the sequence of event id, or 0.
func (ix *memIndex) lookupID(id [16]byte) uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if !ix.idsSorted {
		return ix.byID[id]
	}
	n := int(ix.entries.len())
	i := sort.Search(n, func(i int) bool { return bytes.Compare(ix.entries.at(uint64(i) + 1).id[:], id[:]) >= 0 })
	if i < n && ix.entries.at(uint64(i)+1).id == id {
		return uint64(i + 1)
	}
	return 0
}

// view is a consistent snapshot of the published entries and streams for
// a reader; neither may be modified.
type view struct {
	entryLog
	streams []*stream
	scopes  []string
}

// snapshot returns a view of everything published.
func (ix *memIndex) snapshot() view {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	return view{entryLog: ix.entries, streams: ix.streams, scopes: ix.scopes}
}

// known returns the entity and scope of event seq, or empty strings for a
// sequence the view does not hold. It is a [segment.Known].
func (v *view) known(seq uint64) (entity, scope string) {
	if seq == 0 || seq > v.len() {
		return "", ""
	}
	e := v.at(seq)
	return v.streams[e.stream].entity, v.scopes[e.scope]
}

// visible reports whether e may be shown to readers: not removed by
// compaction and not in a deleted stream.
func (v *view) visible(e *entry) bool {
	return e.flags&segment.EntryDeleted == 0 && !v.streams[e.stream].deleted.Load()
}

// streamSeqs returns the sequences of the stream c (nil if unknown).
func (ix *memIndex) streamSeqs(c batpak.Coordinate) []uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if st := ix.lookup(idOf(c)); st != nil {
		return st.seqs
	}
	return nil
}

// entitySeqs returns the sequences of entity's events, ascending: of its
// stream in scope, or with an empty scope of its streams in every scope.
func (ix *memIndex) entitySeqs(entity, scope string) []uint64 {
	if scope != "" {
		return ix.streamSeqs(batpak.Coordinate{Entity: entity, Scope: scope})
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var out []uint64
	n := 0
	for _, sc := range ix.scopes {
		if st := ix.lookup(streamID{scope: sc, entity: entity}); st != nil {
			if n++; n == 1 {
				out = st.seqs
				continue
			}
			out = slices.Concat(out, st.seqs)
		}
	}
	if n > 1 {
		slices.Sort(out)
	}
	return out
}

// streamVersion returns the current version of the stream c (0 for no stream).
func (ix *memIndex) streamVersion(c batpak.Coordinate) uint64 {
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	if st := ix.lookup(idOf(c)); st != nil {
		return st.version
	}
	return 0
}

// related returns the visible sequences of the events whose causation
// (byCause) or correlation id is id.
func (ix *memIndex) related(byCause bool, id [16]byte) []uint64 {
	ix.ensureLinked()
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
