package eventstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak/internal/huge"
	"github.com/batpak-go/batpak/segment"
)

// indexFromCheckpoint builds a new index from a checkpoint opened from
// base's bytes, whose tables are checked and whose blocks pending is
// checking and decoding on every core meanwhile: a full block becomes a
// packed chunk of the entry log as it is. Every stream's sequences are the
// checkpoint's own words, used where they lie (see
// [segment.CheckpointFile.Seqs]) and checked on first use (see
// ckptlists.go), and so is its last hash, the checkpoint's until it
// changes (see memIndex.lastHashLocked). The blocks must name each stream
// as often as its version says. Ids, correlation and causation are read
// from the frames when first needed. Any damage fails the whole
// checkpoint; the store's index is untouched until it succeeds.
func indexFromCheckpoint(f *segment.CheckpointFile, base *mapped, pending *pendingBlocks) (*memIndex, error) {
	ix, versions, err := indexTables(f, base)
	blocks := pending.wait()
	if err = errors.Join(err, blocks.err); err != nil {
		return nil, err
	}
	if blocks.named != versions {
		return nil, errors.New("the blocks do not name each stream as often as its version says")
	}
	ix.entries.packed, ix.entries.tail, ix.entries.n = blocks.packed, blocks.tail, f.LastSeq
	ix.lists = &ckptLists{base: base, check: f.SeqChecker(), last: f.LastSeq, streams: uint32(f.NumStreams())}
	ix.idsSorted, ix.lastID = !f.IDsUnsorted, f.LastID
	ix.published.Store(f.LastSeq)
	return ix, nil
}

// pendingBlocks is checkBlocks at work on goroutines of its own: they keep
// every core busy while the tables are checked and the streams' rows read.
// Whoever started it waits for it before the checkpoint's bytes are
// released: it reads them.
type pendingBlocks struct {
	wg  sync.WaitGroup
	out checkedBlocks
}

// checkBlocksAsync starts checkBlocks(f).
func checkBlocksAsync(f *segment.CheckpointFile) *pendingBlocks {
	p := &pendingBlocks{}
	p.wg.Go(func() { p.out = checkBlocks(f) })
	return p
}

// wait returns what checkBlocks found, once it is done; it may be called
// more than once.
func (p *pendingBlocks) wait() checkedBlocks {
	p.wg.Wait()
	return p.out
}

// checkedBlocks is what checkBlocks found.
type checkedBlocks struct {
	packed []*segment.PackedBlock // the full blocks
	tail   *[entryChunk]entry     // the last block, if not full
	named  uint64                 // the sum of streamSum over the entries
	err    error
}

// checkBlocks checks and decodes every block of f, with a goroutine per
// core, summing streamSum over their entries.
func checkBlocks(f *segment.CheckpointFile) (out checkedBlocks) {
	procs := runtime.GOMAXPROCS(0)
	n := f.NumBlocks()
	full := int(f.LastSeq >> entryChunkBits)
	out.packed = make([]*segment.PackedBlock, full)
	if full < n {
		out.tail = new([entryChunk]entry)
	}
	var next atomic.Int64
	named := make([]uint64, procs)
	errs := make([]error, procs)
	var wg sync.WaitGroup
	for w := range min(procs, n) {
		wg.Go(func() {
			var streams [entryChunk]uint32
			var sum uint64
			defer func() { named[w] = sum }()
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
				for _, st := range streams[:pb.Len()] {
					sum += streamSum(st)
				}
			}
		})
	}
	wg.Wait()
	if out.err = errors.Join(errs...); out.err != nil {
		return out
	}
	for _, v := range named {
		out.named += v
	}
	return out
}

// indexTables makes an index with the checkpoint's streams, scopes and
// keys, each stream's sequences (unchecked) and last hash the
// checkpoint's, and returns the sum over its streams of each one's
// version times its streamSum. A stream listed twice fails it.
func indexTables(f *segment.CheckpointFile, base *mapped) (*memIndex, uint64, error) {
	ix := newMemIndex()
	ix.streams.base, ix.entries.base = base, base
	ix.linked, ix.correlation, ix.causation = false, nil, nil
	ix.byStream = newStreamTable(0) // load sizes each part
	ix.byScope = make(map[string]uint32, len(f.Scopes))
	ix.keys = make(map[string]segment.IdempotencyRecord, len(f.Keys))
	ix.streams.scopes = f.Scopes
	wide, seqs := f.SeqWide(), f.Seqs()
	// The rows fill the streams in runs, one per core, each summing its
	// streams' versions times their streamSum and hashing their ids.
	n := f.NumStreams()
	if n >= hashInSlab { // a stream's number plus 1 must fit below it
		return nil, 0, fmt.Errorf("%d streams, more than a store holds", n)
	}
	ix.streams.pushEmpty(uint32(n))
	slots := huge.Make[tableSlot](n)
	parts := f.StreamRowParts(runtime.GOMAXPROCS(0))
	runs := make([]rowRun, len(parts))
	var wg sync.WaitGroup
	for k, rows := range parts {
		wg.Go(func() { runs[k] = loadRows(ix, rows, seqs, wide, slots) })
	}
	wg.Wait()
	var versions uint64
	slotRuns := make([]slotRun, 0, len(runs))
	for _, run := range runs {
		if run.err != nil {
			return nil, 0, run.err
		}
		slotRuns = append(slotRuns, run.slots)
		versions += run.sum
		ix.deleted = append(ix.deleted, run.deleted...)
	}
	ix.streams.ckptHashes = f.LastHashes()
	if dup, ok := ix.byStream.load(&ix.streams, slotRuns, runtime.GOMAXPROCS(0)); !ok {
		return nil, 0, fmt.Errorf("stream %v listed twice", ix.streams.id(ix.streams.at(dup)))
	}
	for i, sc := range f.Scopes {
		ix.byScope[sc] = uint32(i)
	}
	for _, k := range f.Keys {
		ix.keys[k.Key] = k
	}
	return ix, versions, nil
}

// rowRun is what loadRows found in a run of rows.
type rowRun struct {
	sum     uint64   // of version × streamSum
	deleted []uint32 // the deleted streams
	slots   slotRun  // the run's table slots, sorted by part
	err     error
}

// loadRows fills the streams of rows, a run of the checkpoint's rows, in
// ix's stream log, and their table slots (number and id's hash) in slots,
// whose part for the run it then sorts by table part. Their sequences are
// seqs' (wide: two words each), unchecked.
func loadRows(ix *memIndex, rows iter.Seq2[int, segment.CheckpointRow], seqs []uint32, wide bool, slots []tableSlot) (run rowRun) {
	words, state := uint64(1), uint32(0)
	if wide {
		words, state = 2, stateWide
	}
	lo, hi := -1, 0 // the run's rows
	for i, cs := range rows {
		if lo < 0 {
			lo = i
		}
		hi = i + 1
		j := uint32(i)
		st := ix.streams.at(j)
		if cs.Version > maxStreamEvents {
			run.err = fmt.Errorf("stream %d has %d events, more than a stream holds", j, cs.Version)
			return run
		}
		st.setEntity(cs.Entity)
		st.scope = cs.Scope
		run.sum += cs.Version * streamSum(j)
		// Full capacity: the stream's next append after open copies them
		// out of the checkpoint.
		from, to := words*cs.SeqsAt, words*(cs.SeqsAt+cs.Version)
		st.loadList(seqs[from:to:to], uint32(cs.Version))
		s := state
		if cs.Version > 0 {
			s |= stateUnchecked
			st.hashAt = j + 1 // the checkpoint's last hash j
		}
		if cs.Deleted {
			s |= stateDeleted
			run.deleted = append(run.deleted, j)
		}
		st.state.Store(s)
		slots[j] = tableSlot{num: j + 1, hash: ix.byStream.hash(streamID{scope: ix.streams.scopes[cs.Scope], entity: cs.Entity})}
	}
	run.slots = newSlotRun(slots[max(lo, 0):hi])
	return run
}

// idLess reports whether a sorts before b.
func idLess(a, b *[16]byte) bool {
	ah, bh := binary.BigEndian.Uint64(a[:8]), binary.BigEndian.Uint64(b[:8])
	if ah != bh {
		return ah < bh
	}
	return binary.BigEndian.Uint64(a[8:]) < binary.BigEndian.Uint64(b[8:])
}
