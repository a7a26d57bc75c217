package eventstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak/internal/huge"
	"github.com/batpak-go/batpak/segment"
)

// indexFromCheckpoint builds a new index from a checkpoint opened from
// base's bytes. Every stream's sequences are the checkpoint's own words,
// used where they lie (see [segment.CheckpointFile.Seqs]), and so is its
// last hash until it changes. Its blocks are checked and decoded in
// parallel, while the streams load: a full block becomes a packed chunk
// of the entry log as it is. The sequences are checked against the
// blocks: each stream's ascend within 1…LastSeq, and a sum of every
// (sequence, stream) pair taken over the blocks' entries equals the same
// sum taken over the streams' sequences, so a stream lists exactly its
// entries. Ids, correlation and causation are read from the frames when
// first needed. Any damage fails the whole checkpoint; the store's index
// is untouched until it succeeds.
func indexFromCheckpoint(f *segment.CheckpointFile, base *mapped) (*memIndex, error) {
	var blocks checkedBlocks
	var wg sync.WaitGroup
	// The blocks and the sequences' checksums keep every core busy while
	// this goroutine reads the streams' rows one after another. Nothing
	// returns before they are done: they read base's bytes.
	wg.Go(func() { blocks = checkBlocks(f) })
	ix, err := indexTables(f, base)
	wg.Wait()
	if err = errors.Join(err, blocks.err); err != nil {
		return nil, err
	}
	ix.entries.packed, ix.entries.tail, ix.entries.n = blocks.packed, blocks.tail, f.LastSeq
	listed, err := checkSeqLists(&ix.streams, f.LastSeq)
	if err != nil {
		return nil, err
	}
	if blocks.sum != listed {
		return nil, errors.New("the streams' sequences do not list the blocks' entries")
	}
	ix.idsSorted, ix.lastID = !f.IDsUnsorted, f.LastID
	ix.published.Store(f.LastSeq)
	return ix, nil
}

// checkedBlocks is what checkBlocks found.
type checkedBlocks struct {
	packed []*segment.PackedBlock // the full blocks
	tail   *[entryChunk]entry     // the last block, if not full
	sum    uint64                 // of the blocks' pairs (see pairSum)
	err    error
}

// checkBlocks checks the sequences' checksums, then checks and decodes
// every block of f, with a goroutine per core, summing their pairs.
func checkBlocks(f *segment.CheckpointFile) (out checkedBlocks) {
	procs := runtime.GOMAXPROCS(0)
	if out.err = f.CheckSeqs(procs); out.err != nil {
		return out
	}
	n := f.NumBlocks()
	full := int(f.LastSeq >> entryChunkBits)
	out.packed = make([]*segment.PackedBlock, full)
	if full < n {
		out.tail = new([entryChunk]entry)
	}
	var next atomic.Int64
	sums := make([]uint64, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for w := range min(procs, n) {
		wg.Go(func() {
			var streams [entryChunk]uint32
			var sum uint64
			defer func() { sums[w] = sum }()
			for i := int(next.Add(1) - 1); i < n; i = int(next.Add(1) - 1) {
				pb, err := f.Block(i, streams[:])
				if err != nil {
					errs[w] = err
					next.Store(int64(n)) // the others stop too
					return
				}
				if i < full {
					out.packed[i] = pb
				} else { // the last block, not full: the log's plain chunk
					pb.Unpack(out.tail)
				}
				first := uint64(i)<<entryChunkBits + 1
				for j, st := range streams[:pb.Len()] {
					sum += pairSum(first+uint64(j), st)
				}
			}
		})
	}
	wg.Wait()
	if out.err = errors.Join(errs...); out.err != nil {
		return out
	}
	for _, v := range sums {
		out.sum += v
	}
	return out
}

// checkSeqLists checks that the sequences of each stream of l ascend
// within 1…last, and returns the sum of their pairs (see pairSum).
func checkSeqLists(l *streamLog, last uint64) (uint64, error) {
	procs := runtime.GOMAXPROCS(0)
	sums := make([]uint64, procs)
	bad := make([]uint32, procs)
	n := int(l.len())
	var wg sync.WaitGroup
	for w := range procs {
		wg.Go(func() {
			var sum uint64
			bad[w] = math.MaxUint32
			defer func() { sums[w] = sum }()
			for j := n * w / procs; j < n*(w+1)/procs; j++ {
				list, prev := l.at(uint32(j)).list(), uint64(0)
				for k := range list.len() {
					seq := list.at(k)
					if seq <= prev || seq > last {
						bad[w] = uint32(j)
						return
					}
					prev = seq
					sum += pairSum(seq, uint32(j))
				}
			}
		})
	}
	wg.Wait()
	var sum uint64
	for w := range procs {
		if bad[w] != math.MaxUint32 {
			return 0, fmt.Errorf("stream %q: sequences out of order or beyond %d", l.at(bad[w]).entity, last)
		}
		sum += sums[w]
	}
	return sum, nil
}

// pairSum mixes an event's sequence and stream into 64 bits: sums of it
// over two sets of pairs differ, but for a chance of about 2^-64, unless
// the sets are the same. (The sequence times an odd constant is one to
// one; two pairs could only meet where those products differ in their low
// 32 bits alone.)
func pairSum(seq uint64, stream uint32) uint64 {
	return mix64(seq*0x9e3779b97f4a7c15 ^ uint64(stream))
}

// mix64 is the finalizer of SplitMix64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// indexTables makes an index with the checkpoint's streams, scopes and
// keys, each stream's sequences and last hash the checkpoint's. A stream
// listed twice fails it.
func indexTables(f *segment.CheckpointFile, base *mapped) (*memIndex, error) {
	ix := newMemIndex()
	ix.streams.base, ix.entries.base = base, base
	ix.linked, ix.correlation, ix.causation = false, nil, nil
	ix.byStream = newStreamTable(0) // load sizes each part
	ix.byScope = make(map[string]uint32, len(f.Scopes))
	ix.keys = make(map[string]segment.IdempotencyRecord, len(f.Keys))
	ix.streams.preallocate(f.NumStreams())
	ix.streams.scopes = f.Scopes
	words := uint64(1) // per sequence
	if f.SeqWide() {
		words = 2
	}
	seqs := f.Seqs()
	for _, cs := range f.StreamRows() {
		j, st := ix.streams.push()
		st.entity, st.scope = cs.Entity, cs.Scope
		switch {
		case cs.Version == 0:
		case cs.HashAt < hashInSlab:
			st.hashAt = uint32(cs.HashAt)
		default: // beyond 2 GiB of rows
			ix.streams.setLastHash(st, &cs.LastHash)
		}
		if cs.Deleted {
			ix.markDeletedAt(j)
		}
		if words == 2 {
			st.state.Or(stateWide)
		}
		// Full capacity: the stream's next append after open copies
		// them out of the checkpoint.
		n := words * cs.Version
		st.seqs, seqs = seqs[:n:n], seqs[n:]
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
