package eventstore

import (
	"encoding/binary"
	"fmt"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak/segment"
)

// indexFromCheckpoint builds a new index from a checkpoint. Its blocks are
// checked and decoded in parallel, each into its own chunk of the entry
// log, while this goroutine links the decoded chunks into their streams in
// order. Correlation and causation are linked on first use. Any damage
// fails the whole checkpoint; the store's index is untouched until it
// succeeds.
func indexFromCheckpoint(f *segment.CheckpointFile) (*memIndex, error) {
	ix, err := indexTables(f)
	if err != nil {
		return nil, err
	}
	n := f.NumBlocks()
	ix.entries.chunks = make([]*[entryChunk]entry, n)
	ix.entries.n = f.LastSeq
	done := make([]chan error, n)
	for i := range done {
		done[i] = make(chan error, 1)
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range min(runtime.GOMAXPROCS(0), n) {
		wg.Go(func() {
			for i := int(next.Add(1) - 1); i < n && !failed.Load(); i = int(next.Add(1) - 1) {
				c := new([entryChunk]entry)
				err := f.DecodeBlock(i, func(j int, se *segment.IndexEntry) { c[j] = entryOf(se) })
				ix.entries.chunks[i] = c
				done[i] <- err
			}
		})
	}
	defer wg.Wait()
	l := newLinker(f)
	for i := range n {
		if err := <-done[i]; err != nil {
			failed.Store(true)
			return nil, err
		}
		if err := l.link(ix.entries.chunks[i], uint64(i)<<entryChunkBits+1, f.LastSeq); err != nil {
			failed.Store(true)
			return nil, err
		}
	}
	if err := l.finish(ix); err != nil {
		return nil, err
	}
	if !l.unsorted {
		ix.idsSorted, ix.byID = true, nil
	} else {
		ix.idsSorted = false
		ix.byID = make(map[[16]byte]uint64, f.LastSeq)
		for seq := uint64(1); seq <= f.LastSeq; seq++ {
			ix.byID[ix.entries.at(seq).id] = seq
		}
	}
	ix.published.Store(f.LastSeq)
	return ix, nil
}

// indexTables makes an index with the checkpoint's streams, scopes and
// keys.
func indexTables(f *segment.CheckpointFile) (*memIndex, error) {
	ix := newMemIndex()
	ix.linked, ix.correlation, ix.causation = false, nil, nil
	ix.byEntity = make(map[string]uint32, len(f.Streams))
	ix.byScope = make(map[string]uint32, len(f.Scopes))
	ix.keys = make(map[string]segment.IdempotencyRecord, len(f.Keys))
	ix.streams = make([]*stream, len(f.Streams))
	streams := make([]stream, len(f.Streams))
	for i := range f.Streams {
		cs := &f.Streams[i]
		if _, dup := ix.byEntity[cs.Entity]; dup {
			return nil, fmt.Errorf("stream %q twice", cs.Entity)
		}
		st := &streams[i]
		st.entity, st.version, st.lastHash = cs.Entity, cs.Version, cs.LastHash
		st.deleted.Store(cs.Deleted)
		ix.streams[i] = st
		ix.byEntity[cs.Entity] = uint32(i)
	}
	ix.scopes = f.Scopes
	for i, sc := range f.Scopes {
		if _, dup := ix.byScope[sc]; dup {
			return nil, fmt.Errorf("scope %q twice", sc)
		}
		ix.byScope[sc] = uint32(i)
	}
	for _, k := range f.Keys {
		ix.keys[k.Key] = k
	}
	return ix, nil
}

// entryOf converts a decoded checkpoint entry; its version is set when
// its chunk is linked.
func entryOf(se *segment.IndexEntry) entry {
	return entry{
		id: se.ID, corr: se.Correlation, cause: se.Causation, ts: se.Timestamp,
		kind: se.Kind, flags: se.Flags & segment.EntryDeleted,
		pos:    segment.Position{Segment: se.Segment, Offset: se.Offset, Length: se.Length},
		stream: se.Entity, scope: se.Scope,
	}
}

// linker numbers the events of decoded chunks in their streams, in order,
// into one array that holds every stream's sequences, stream after stream.
// It writes no pointers per event (no GC write barriers while the heap
// grows).
type linker struct {
	seqs     []uint64
	start    []uint64 // stream i's sequences are seqs[start[i]:start[i+1]]
	count    []uint64 // how many of them are linked
	lastID   [16]byte
	unsorted bool
}

func newLinker(f *segment.CheckpointFile) *linker {
	l := &linker{seqs: make([]uint64, f.LastSeq), start: make([]uint64, len(f.Streams)+1), count: make([]uint64, len(f.Streams))}
	for i := range f.Streams {
		l.start[i+1] = l.start[i] + f.Streams[i].Version // the versions add up to LastSeq
	}
	return l
}

// link numbers the entries of chunk c, whose first sequence is first, in
// their streams and sets their versions.
func (l *linker) link(c *[entryChunk]entry, first, lastSeq uint64) error {
	for j := range min(uint64(entryChunk), lastSeq-first+1) {
		e := &c[j]
		seq := first + j
		s := e.stream
		k := l.count[s]
		if l.start[s]+k == l.start[s+1] {
			return fmt.Errorf("stream %d has more than its %d events", s, k)
		}
		l.seqs[l.start[s]+k] = seq
		l.count[s] = k + 1
		e.version = k + 1
		if !l.unsorted && seq > 1 && !idLess(&l.lastID, &e.id) {
			l.unsorted = true
		}
		l.lastID = e.id
	}
	return nil
}

// finish checks that every stream got all its events and hands them over.
func (l *linker) finish(ix *memIndex) error {
	for i, st := range ix.streams {
		lo, hi := l.start[i], l.start[i+1]
		if l.count[i] != hi-lo {
			return fmt.Errorf("stream %q has %d events, version %d", st.entity, l.count[i], st.version)
		}
		// Full capacity: the stream's next append after open reallocates.
		st.seqs = l.seqs[lo:hi:hi]
	}
	return nil
}

// idLess reports whether a sorts before b.
func idLess(a, b *[16]byte) bool {
	ah, bh := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if ah != bh {
		return ah < bh
	}
	return binary.BigEndian.Uint64(a[8:]) < binary.BigEndian.Uint64(b[8:])
}
