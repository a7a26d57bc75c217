package eventstore

import (
	"encoding/binary"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak/internal/huge"
	"github.com/batpak-go/batpak/segment"
)

// indexFromCheckpoint builds a new index from a checkpoint. Its blocks are
// checked and decoded in parallel: a full block becomes a packed chunk of
// the entry log as it is, and the streams of its entries are read for
// this goroutine, which links the entries into their streams in order. Ids, correlation and causation are read from the
// frames when first needed. Any damage fails the whole checkpoint; the
// store's index is untouched until it succeeds.
func indexFromCheckpoint(f *segment.CheckpointFile) (*memIndex, error) {
	ix, err := indexTables(f)
	if err != nil {
		return nil, err
	}
	n := f.NumBlocks()
	full := int(f.LastSeq >> entryChunkBits) // full blocks
	ix.entries.packed = make([]*segment.PackedBlock, full)
	ix.entries.n = f.LastSeq
	if full < n {
		ix.entries.tail = new([entryChunk]entry)
	}
	workers := min(runtime.GOMAXPROCS(0), n)
	// A worker decodes a block and the streams of its entries into a
	// buffer, which the linker reads and then hands back for another
	// block. A worker takes a buffer (nil until one is needed) before it
	// claims a block, so the next block to link always has one.
	free := make(chan *[entryChunk]uint32, workers+1)
	for range cap(free) {
		free <- nil
	}
	type decoded struct {
		streams *[entryChunk]uint32
		err     error
	}
	done := make([]chan decoded, n)
	for i := range done {
		done[i] = make(chan decoded, 1)
	}
	var next atomic.Int64
	var failed atomic.Bool
	var wg sync.WaitGroup
	for range workers {
		wg.Go(func() {
			for !failed.Load() {
				streams, ok := <-free
				i := int(next.Add(1) - 1)
				if !ok || i >= n {
					return
				}
				if streams == nil {
					streams = new([entryChunk]uint32)
				}
				pb, err := f.Block(i, streams[:])
				switch {
				case err != nil:
				case i < full:
					ix.entries.packed[i] = pb
				default: // the last block, not full: the log's plain chunk
					pb.Unpack(ix.entries.tail)
				}
				done[i] <- decoded{streams, err}
			}
		})
	}
	defer wg.Wait()
	// Unblock the workers that wait for a buffer after a failure.
	defer close(free)
	l := linker{ix: ix}
	for i := range n {
		d := <-done[i]
		if d.err != nil {
			failed.Store(true)
			return nil, d.err
		}
		if err := l.link(d.streams, uint64(i)<<entryChunkBits+1, f); err != nil {
			failed.Store(true)
			return nil, err
		}
		free <- d.streams
	}
	for i := range ix.streams.len() {
		if st := ix.streams.at(i); !st.list().full() {
			return nil, fmt.Errorf("stream %q has fewer events than its version says (%d)", st.entity, st.version())
		}
	}
	ix.idsSorted, ix.lastID = !f.IDsUnsorted, f.LastID
	ix.published.Store(f.LastSeq)
	return ix, nil
}

// indexTables makes an index with the checkpoint's streams, scopes and
// keys, and room for every stream's sequences in one array. A stream
// listed twice fails it.
func indexTables(f *segment.CheckpointFile) (*memIndex, error) {
	ix := newMemIndex()
	ix.linked, ix.correlation, ix.causation = false, nil, nil
	ix.byStream = newStreamTable(0) // load sizes each part
	ix.byScope = make(map[string]uint32, len(f.Scopes))
	ix.keys = make(map[string]segment.IdempotencyRecord, len(f.Keys))
	ix.streams.preallocate(f.NumStreams())
	ix.streams.scopes = f.Scopes
	words := uint64(1) // per sequence
	if f.LastSeq > math.MaxUint32 {
		words = 2
	}
	seqs := huge.Make[uint32](int(words * f.LastSeq))
	for _, cs := range f.StreamRows() {
		j, st := ix.streams.push()
		st.entity, st.scope, st.lastHash = cs.Entity, cs.Scope, cs.LastHash
		if cs.Deleted {
			ix.markDeletedAt(j)
		}
		if words == 2 {
			st.state.Or(stateWide)
		}
		// Full capacity: the stream's next append after open reallocates.
		st.seqs, seqs = seqs[:0:words*cs.Version], seqs[words*cs.Version:]
	}
	hashes := huge.Make[uint64](int(ix.streams.len()))
	parallel(len(hashes), func(from, to int) {
		for j := from; j < to; j++ {
			hashes[j] = ix.byStream.hash(ix.streams.id(ix.streams.at(uint32(j))))
		}
	})
	if dup, ok := ix.byStream.load(&ix.streams, hashes, runtime.GOMAXPROCS(0)); !ok {
		return nil, fmt.Errorf("stream %v listed twice", ix.streams.id(ix.streams.at(dup)))
	}
	for i, sc := range f.Scopes {
		ix.byScope[sc] = uint32(i)
	}
	for _, k := range f.Keys {
		ix.keys[k.Key] = k
	}
	return ix, nil
}

// linker adds the events of decoded chunks to their streams, in order.
type linker struct {
	ix *memIndex
}

// link adds the events of a block, whose first sequence is first and
// whose entries' streams are streams, to their streams.
func (l *linker) link(streams *[entryChunk]uint32, first uint64, f *segment.CheckpointFile) error {
	ix := l.ix
	n := min(uint64(entryChunk), f.LastSeq-first+1)
	for j := range n {
		seq := first + j
		st := ix.streams.at(streams[j])
		if st.list().full() {
			return fmt.Errorf("stream %q has more than its %d events", st.entity, st.version())
		}
		st.add(seq)
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

// parallel calls fn on consecutive ranges that cover 0 … n-1, one range
// per core, and waits for them.
func parallel(n int, fn func(from, to int)) {
	workers := min(runtime.GOMAXPROCS(0), max(1, n/4096))
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() { fn(n*w/workers, n*(w+1)/workers) })
	}
	wg.Wait()
}
