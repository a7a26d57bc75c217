package eventstore

import (
	"hash/maphash"
	"math"
	"sync"
	"sync/atomic"

	"github.com/batpak-go/batpak/internal/huge"
)

// streamTable finds a stream's number by its id. It is an open-addressing
// table of 8-byte slots, each a stream's number and its id's 32-bit hash,
// in tableParts parts chosen by the hash's low bits: 11 bytes a
// stream after open (where a Go map of hash to number took 35), 10 to 22
// as it grows, and a part grows on its own, so the pause of a growth is a
// part's, not the table's. A slot
// whose hash bits match is confirmed against the stream's strings, so ids
// whose hashes collide, wholly or in part, are told apart.
type streamTable struct {
	seed  maphash.Seed
	mask  uint32 // all ones; tests clear bits to make hashes collide
	parts [tableParts]tablePart
}

// tableParts is the number of parts: a power of two.
const tableParts = 64

// tablePart is one part: linear probing over slots; n of them are taken.
type tablePart struct {
	slots []tableSlot
	n     int
}

// tableSlot holds stream number+1 (0: the slot is free) and its id's
// hash, whose low bits choose the part (see partOf) and whose high bits
// the slot a probe starts at (see start).
type tableSlot struct {
	num  uint32
	hash uint32
}

// newStreamTable returns a table sized for n streams.
func newStreamTable(n int) streamTable {
	t := streamTable{seed: maphash.MakeSeed(), mask: ^uint32(0)}
	for i := range t.parts {
		t.parts[i].resize(n / tableParts)
	}
	return t
}

func (t *streamTable) hash(id streamID) uint32 {
	return uint32(maphash.Comparable(t.seed, id)) & t.mask
}

// probe returns the part and slot where id, whose hash is h, is, or the
// free slot where it would go, and whether it is there. The part has a
// free slot.
func (t *streamTable) probe(streams *streamLog, id streamID, h uint32) (p *tablePart, j int, found bool) {
	p = &t.parts[partOf(h)]
	j, found = p.probe(streams, id, h)
	return p, j, found
}

// probe returns the slot of the part where id, whose hash is hash, is,
// or the free slot where it would go, and whether it is there. The part
// has a free slot.
func (p *tablePart) probe(streams *streamLog, id streamID, hash uint32) (int, bool) {
	for j := p.start(hash); ; j = p.next(j) {
		s := p.slots[j]
		if s.num == 0 {
			return j, false
		}
		if s.hash == hash {
			if st := streams.at(s.num - 1); st.entity() == id.entity && streams.scopes[st.scope] == id.scope {
				return j, true
			}
		}
	}
}

// find returns the number of stream id among streams.
func (t *streamTable) find(streams *streamLog, id streamID) (uint32, bool) {
	p, j, ok := t.probe(streams, id, t.hash(id))
	if !ok {
		return 0, false
	}
	return p.slots[j].num - 1, true
}

// add records stream id as number i among streams, whose first i elements
// are in the table, unless id is one of them: then it returns that one's
// number and true.
func (t *streamTable) add(streams *streamLog, id streamID, i uint32) (uint32, bool) {
	h := t.hash(id)
	p, j, found := t.probe(streams, id, h)
	if found {
		return p.slots[j].num - 1, true
	}
	if p.n+1 > len(p.slots)*13/16 {
		p.resize(2 * (p.n + 1))
		p, j, _ = t.probe(streams, id, h)
	}
	p.slots[j] = tableSlot{num: i + 1, hash: h}
	p.n++
	return i, false
}

// slotRun is a run of table slots (stream number+1 and its id's hash,
// t.hash) sorted by part: part p's are slots[start[p]:start[p+1]].
type slotRun struct {
	slots []tableSlot
	start [tableParts + 1]int
}

// newSlotRun sorts slots by part, in place, and returns them as a run.
func newSlotRun(slots []tableSlot) slotRun { return slotRun{slots: slots, start: sortByPart(slots)} }

// part returns the run's slots of part p.
func (r *slotRun) part(p int) []tableSlot { return r.slots[r.start[p]:r.start[p+1]] }

// load fills an empty table with the slots of runs, every stream of
// streams once, part by part: each part's slots fit in a core's cache
// while it fills, and are filled in the order of the slot each probe
// starts at, where adding the streams in their order would touch the whole
// table at random. The runs were sorted on as many cores (see loadRows).
// It uses up to workers goroutines. A stream listed twice is returned with
// ok false.
func (t *streamTable) load(streams *streamLog, runs []slotRun, workers int) (dup uint32, ok bool) {
	// Every part's slots in one allocation, filled at once: a part that
	// grows later moves out of it (the slab lives while any part is in it).
	var at [tableParts + 1]int
	for p := range tableParts {
		n := 0
		for k := range runs {
			n += len(runs[k].part(p))
		}
		at[p+1] = at[p] + slotsFor(n)
	}
	slab := huge.Make[tableSlot](at[tableParts])
	for p := range tableParts {
		t.parts[p] = tablePart{slots: slab[at[p]:at[p+1]:at[p+1]]}
	}
	var wg sync.WaitGroup
	var mu sync.Mutex
	dup, ok = math.MaxUint32, true
	var claim atomic.Int32
	for range max(1, workers) {
		wg.Go(func() {
			var sorted []tableSlot
			for {
				p := int(claim.Add(1) - 1)
				if p >= tableParts {
					return
				}
				part := &t.parts[p]
				sorted = bySlot(runs, p, sorted)
				for _, s := range sorted {
					if d, found := part.insert(streams, s); found {
						mu.Lock()
						dup, ok = min(dup, d), false
						mu.Unlock()
						break
					}
				}
			}
		})
	}
	wg.Wait()
	return dup, ok
}

// sortByPart puts slots in part order in place (an American flag sort)
// and returns where each part's start: part p's are slots[start[p]:start[p+1]].
func sortByPart(slots []tableSlot) (start [tableParts + 1]int) {
	for _, s := range slots {
		start[partOf(s.hash)+1]++
	}
	for p := range tableParts {
		start[p+1] += start[p]
	}
	next := start
	for p := range tableParts {
		for next[p] < start[p+1] {
			s := slots[next[p]]
			q := partOf(s.hash)
			if q == uint32(p) {
				next[p]++
				continue
			}
			// s belongs to part q: swap it into q's next place, and look
			// again at what comes back.
			slots[next[p]], slots[next[q]] = slots[next[q]], s
			next[q]++
		}
	}
	return start
}

// bySlot returns the slots of part p of runs in the order of the slot
// each one's probe starts at, by its hash's top bits (see start), so that
// inserting them goes once through the part's slots, where their stream
// order would jump about the whole part for each: a counting sort into
// buf, grown to fit.
func bySlot(runs []slotRun, p int, buf []tableSlot) []tableSlot {
	const shift = 32 - 8 // 256 ranges: of a few KiB each for any part
	var at [1<<8 + 1]int
	for k := range runs {
		for _, s := range runs[k].part(p) {
			at[s.hash>>shift+1]++
		}
	}
	for k := 1; k < len(at); k++ {
		at[k] += at[k-1]
	}
	n := at[len(at)-1]
	if cap(buf) < n {
		buf = make([]tableSlot, n)
	}
	buf = buf[:n]
	for k := range runs {
		for _, s := range runs[k].part(p) {
			buf[at[s.hash>>shift]] = s
			at[s.hash>>shift]++
		}
	}
	return buf
}

// insert puts slot s, for stream s.num-1 of streams, in the part, which has
// room for it, unless a stream of the same id is there: it then returns
// the later of the two numbers and true. Unlike probe, it reads a
// stream's id only where the hash bits match.
func (p *tablePart) insert(streams *streamLog, s tableSlot) (uint32, bool) {
	for k := p.start(s.hash); ; k = p.next(k) {
		t := p.slots[k]
		if t.num == 0 {
			p.slots[k] = s
			p.n++
			return 0, false
		}
		if t.hash == s.hash && streams.id(streams.at(t.num-1)) == streams.id(streams.at(s.num-1)) {
			return max(s.num, t.num) - 1, true
		}
	}
}

// partOf returns the part of the table that holds a stream whose id's
// hash is h: its low bits, where start takes the high ones.
func partOf(h uint32) uint32 { return h & (tableParts - 1) }

// start returns the slot a probe for hash starts at: hash scaled to the
// number of slots, which need not be a power of two.
func (p *tablePart) start(hash uint32) int { return int(uint64(hash) * uint64(len(p.slots)) >> 32) }

// next returns the slot after j, wrapping around.
func (p *tablePart) next(j int) int {
	if j++; j == len(p.slots) {
		return 0
	}
	return j
}

// slotsFor returns the slots a part of n streams has: a quarter of them
// free.
func slotsFor(n int) int { return n*4/3 + 8 }

// resize gives the part room for n streams at three quarters full, unless
// it has that already, and puts its slots back in it.
func (p *tablePart) resize(n int) {
	size := slotsFor(n)
	if size <= len(p.slots) {
		return
	}
	old := p.slots
	p.slots = make([]tableSlot, size)
	for _, s := range old {
		if s.num == 0 {
			continue
		}
		j := p.start(s.hash)
		for p.slots[j].num != 0 {
			j = p.next(j)
		}
		p.slots[j] = s
	}
}
