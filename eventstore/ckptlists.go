package eventstore

import (
	"fmt"
	"iter"
	"runtime"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak/segment"
)

// The streams' sequences of an index loaded from a checkpoint are the
// checkpoint's own words (see indexFromCheckpoint), and an open does not
// read them: it checks only that the blocks name each stream as often as
// its version says (see streamSum). A stream's list is checked on its
// first use instead, before anything reads a sequence from it or appends
// to it:
//
//   - the checksums of the chunks that hold it (segment.SeqChecker),
//   - its sequences ascend within 1…the checkpoint's last sequence,
//   - and the entry of each names the stream.
//
// The list then holds version distinct entries of the stream, and the
// blocks hold exactly version of them: it lists them all. A list that
// fails is damage (or a checkpoint written wrong), never a reason to fail
// a read: it is rebuilt from the entry log, whose blocks open checked, and
// reported (memIndex.listRepaired, Stats.CheckpointListsRebuilt). Before
// a checkpoint is written from the index, and before a compaction, every
// list is checked at once (settleLists), so a damaged word never reaches
// a new checkpoint under a fresh checksum.

// ckptLists is what an index loaded from a checkpoint needs to check its
// streams' lists.
type ckptLists struct {
	base    *mapped // the checkpoint: check reads its bytes
	check   *segment.SeqChecker
	last    uint64      // the checkpoint's last sequence
	streams uint32      // the streams it held, numbered from 0
	settled atomic.Bool // every list has been checked (settleLists)
	settle  sync.Mutex  // one settleLists at a time
}

// stateUnchecked marks a stream whose list is still the checkpoint's and
// has not been checked.
const stateUnchecked = 1 << 2

// unchecked reports whether st's list must be checked before it is used.
func (ix *memIndex) unchecked(st *stream) bool {
	return ix.lists != nil && st.state.Load()&stateUnchecked != 0 && !ix.lists.settled.Load()
}

// checkedList returns l, the list of stream num (st) as read under the
// index's lock, after its first use's check; a list found wrong is rebuilt
// and the rebuilt list (as long as l) is returned. It must not be called
// under mu.
func (ix *memIndex) checkedList(num uint32, st *stream, l seqList) seqList {
	if !ix.unchecked(st) {
		return l
	}
	v := ix.snapshot()
	err := ix.lists.verify(&v, num, l) // reads the list's chunks from the disk: outside the lock
	if err == nil {
		st.state.And(^uint32(stateUnchecked))
		return l
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	if st.state.Load()&stateUnchecked != 0 {
		ix.rebuildList(num, st, err)
	}
	cur := st.list()
	if cur.wide {
		return seqList{w: cur.w[:2*l.len()], wide: true}
	}
	return seqList{w: cur.w[:l.len()]}
}

// settleLocked checks the list of stream num (st) before an append to it,
// rebuilding it if it is wrong. Caller holds mu for writing.
func (ix *memIndex) settleLocked(num uint32, st *stream) {
	v := view{entryLog: ix.entries, streams: ix.streams}
	if err := ix.lists.verify(&v, num, st.list()); err != nil {
		ix.rebuildList(num, st, err) // which marks it checked
		return
	}
	st.state.And(^uint32(stateUnchecked))
}

// verify checks the checkpoint's list l of stream num: the checksums of
// the chunks that hold it, that its sequences ascend within 1…last, and
// that the entry of each names the stream.
func (c *ckptLists) verify(v *view, num uint32, l seqList) error {
	if err := c.check.Check(l.w); err != nil {
		return err
	}
	prev := uint64(0)
	for i := range l.len() {
		seq := l.at(i)
		if seq <= prev || seq > c.last {
			return fmt.Errorf("sequence %d of version %d out of order or beyond %d", seq, i+1, c.last)
		}
		if e := v.at(seq); e.Stream != num {
			return fmt.Errorf("version %d names sequence %d, an event of another stream", i+1, seq)
		}
		prev = seq
	}
	return nil
}

// rebuildList replaces the list of stream num (st), found wrong for why,
// with its events in the entry log up to the checkpoint's last sequence:
// the stream has no later ones, since an append checks the list first.
// Caller holds mu for writing.
func (ix *memIndex) rebuildList(num uint32, st *stream, why error) {
	want := st.list().len()
	seqs := make([]uint64, 0, want)
	var streams [entryChunk]uint32
	for first := uint64(1); first <= ix.lists.last; first += entryChunk {
		n := int(min(entryChunk, ix.lists.last-first+1))
		ix.entries.streamsOf(first, streams[:n])
		for j, s := range streams[:n] {
			if s == num {
				seqs = append(seqs, first+uint64(j))
			}
		}
	}
	// Open checked that the blocks name the stream version times.
	l := seqListOf(seqs[:min(len(seqs), want)])
	st.setList(l)
	st.state.And(^uint32(stateUnchecked))
	if ix.listRepaired != nil {
		ix.listRepaired(ix.streams.id(st), len(seqs), want, why)
	}
}

// settleLists checks every list still unchecked, before a checkpoint is
// written from the index or a compaction reads it: the checksums of every
// chunk, then each list's order and a sum over every list's pairs against
// the blocks'. If anything fails, each list is checked on its own and the
// wrong ones are rebuilt. It must not be called under mu.
func (ix *memIndex) settleLists() {
	c := ix.lists
	if c == nil || c.settled.Load() {
		return
	}
	c.settle.Lock()
	defer c.settle.Unlock()
	if c.settled.Load() {
		return
	}
	ok := c.check.CheckAll(runtime.GOMAXPROCS(0)) == nil
	if ok {
		listed, ordered := ix.listedPairs()
		ok = ordered && listed == ix.entryPairs()
	}
	if !ok {
		for i := range c.streams {
			ix.mu.RLock()
			st := ix.streams.at(i)
			l := st.list()
			ix.mu.RUnlock()
			ix.checkedList(i, st, l)
		}
	}
	c.settled.Store(true)
}

// entryPairs returns the sum of pairSum over the entries up to the
// checkpoint's last sequence.
func (ix *memIndex) entryPairs() uint64 {
	c := ix.lists
	v := ix.snapshot()
	chunks := int((c.last + entryChunk - 1) / entryChunk)
	procs := runtime.GOMAXPROCS(0)
	sums := make([]uint64, procs)
	var wg sync.WaitGroup
	for w := range procs {
		wg.Go(func() {
			var streams [entryChunk]uint32
			for k := chunks * w / procs; k < chunks*(w+1)/procs; k++ {
				first := uint64(k)*entryChunk + 1
				part := streams[:min(entryChunk, c.last-first+1)]
				v.streamsOf(first, part)
				for j, st := range part {
					sums[w] += pairSum(first+uint64(j), st)
				}
			}
		})
	}
	wg.Wait()
	var sum uint64
	for _, s := range sums {
		sum += s
	}
	return sum
}

// listedPairs returns the sum of pairSum over the sequences up to the
// checkpoint's last that the lists of its streams hold, and whether each
// list ascends.
func (ix *memIndex) listedPairs() (sum uint64, ordered bool) {
	c := ix.lists
	procs := runtime.GOMAXPROCS(0)
	sums := make([]uint64, procs)
	bad := make([]bool, procs)
	var wg sync.WaitGroup
	for w := range procs {
		wg.Go(func() {
			lo, hi := int(c.streams)*w/procs, int(c.streams)*(w+1)/procs
			for j := lo; j < hi; j += tipsStep {
				ix.mu.RLock()
				for i := j; i < min(j+tipsStep, hi); i++ {
					l, prev := ix.streams.at(uint32(i)).list(), uint64(0)
					for k := range l.len() {
						seq := l.at(k)
						if seq > c.last {
							break // appended since the checkpoint
						}
						if seq <= prev {
							bad[w] = true
						}
						prev = seq
						sums[w] += pairSum(seq, uint32(i))
					}
				}
				ix.mu.RUnlock()
			}
		})
	}
	wg.Wait()
	for w := range procs {
		if bad[w] {
			return 0, false
		}
		sum += sums[w]
	}
	return sum, true
}

// pairSum mixes an event's sequence and stream into 64 bits: sums of it
// over two sets of pairs differ, but for a chance of about 2^-64, unless
// the sets are the same. (The sequence times an odd constant is one to
// one; two pairs could only meet where those products differ in their low
// 32 bits alone.)
func pairSum(seq uint64, stream uint32) uint64 {
	return mix64(seq*0x9e3779b97f4a7c15 ^ uint64(stream))
}

// streamSum mixes a stream's number into 64 bits: the sum of it over the
// streams the entries name equals the sum over every stream of its version
// times it, but for a chance of about 2^-64, only if the entries name each
// stream as often as its version says.
func streamSum(stream uint32) uint64 {
	return mix64(uint64(stream) ^ 0x5851f42d4c957f2d)
}

// mix64 is the finalizer of SplitMix64.
func mix64(x uint64) uint64 {
	x ^= x >> 30
	x *= 0xbf58476d1ce4e5b9
	x ^= x >> 27
	x *= 0x94d049bb133111eb
	return x ^ x>>31
}

// lastHashLocked returns the hash of st's last event. A checkpoint's hash
// is used once the chunk that holds it passes its checksum; where that
// fails, the hash is read from the frame of the stream's last event (its
// list checked first) and kept, and the checkpoint's chunk is not read
// again for it. Caller holds mu for writing.
func (ix *memIndex) lastHashLocked(st *stream) ([32]byte, error) {
	if h, ok := ix.streams.lastHash(st); ok {
		return h, nil
	}
	num := st.hashAt - 1 // a checkpoint's hash: its stream's number plus 1
	if ix.unchecked(st) {
		ix.settleLocked(num, st)
	}
	v := view{entryLog: ix.entries, streams: ix.streams}
	h, err := ix.hashReread(&v, st.list().last())
	if err != nil {
		return h, fmt.Errorf("the last hash of %v, whose checkpoint chunk is damaged, from its last frame: %w", ix.streams.id(st), err)
	}
	ix.streams.setLastHash(st, &h)
	return h, nil
}

// settleHashes checks every chunk of the checkpoint's last hashes, before a
// checkpoint is written from the index; the hashes of a chunk that fails
// are read from their streams' last frames (lastHashLocked), so that no
// damaged hash reaches a new checkpoint under a fresh checksum.
func (ix *memIndex) settleHashes() error {
	hs := ix.streams.ckptHashes
	if hs == nil || hs.CheckAll(runtime.GOMAXPROCS(0)) == nil {
		return nil
	}
	return ix.rereadHashes(func(yield func(*stream) bool) {
		for i := range ix.lists.streams {
			if !yield(ix.streams.at(i)) {
				return
			}
		}
	})
}

// rereadHashes reads from their last frames the last hashes of those of
// streams that are still a checkpoint's and lie in a chunk that fails its
// checksum (lastHashLocked). It looks for them under mu for reading, and
// takes it for writing only if it finds one.
func (ix *memIndex) rereadHashes(streams iter.Seq[*stream]) error {
	if ix.streams.ckptHashes == nil {
		return nil
	}
	var damaged []*stream
	ix.mu.RLock()
	for st := range streams {
		if _, ok := ix.streams.lastHash(st); !ok {
			damaged = append(damaged, st)
		}
	}
	ix.mu.RUnlock()
	if len(damaged) == 0 {
		return nil
	}
	ix.mu.Lock()
	defer ix.mu.Unlock()
	for _, st := range damaged {
		if _, err := ix.lastHashLocked(st); err != nil {
			return err
		}
	}
	return nil
}
