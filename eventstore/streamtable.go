package eventstore

import (
	"hash/maphash"
	"math/bits"
)

// streamTable finds a stream's number by its id. It is an open-addressing
// table of 8-byte slots, each a stream's number and 32 bits of its id's
// hash, in tableParts parts chosen by the hash's top bits: 11 bytes a
// stream after open (where a Go map of hash to number took 35), 10 to 22
// as it grows, and a part grows on its own, so the pause of a growth is a
// part's, not the table's. A slot
// whose hash bits match is confirmed against the stream's strings, so ids
// whose hashes collide, wholly or in part, are told apart.
type streamTable struct {
	seed  maphash.Seed
	mask  uint64 // all ones; tests clear bits to make hashes collide
	parts [tableParts]tablePart
}

// tableParts is the number of parts: a power of two.
const tableParts = 64

// tablePart is one part: linear probing over slots; n of them are taken.
type tablePart struct {
	slots []tableSlot
	n     int
}

// tableSlot holds stream number+1 (0: the slot is free) and the low 32
// bits of its id's hash, which also choose the slot a probe starts at
// (see start).
type tableSlot struct {
	num  uint32
	hash uint32
}

// newStreamTable returns a table sized for n streams.
func newStreamTable(n int) streamTable {
	t := streamTable{seed: maphash.MakeSeed(), mask: ^uint64(0)}
	for i := range t.parts {
		t.parts[i].resize(n / tableParts)
	}
	return t
}

func (t *streamTable) hash(id streamID) uint64 { return maphash.Comparable(t.seed, id) & t.mask }

// probe returns the part and slot where id, whose hash is h, is, or the
// free slot where it would go, and whether it is there. The part has a
// free slot.
func (t *streamTable) probe(streams *streamLog, id streamID, h uint64) (p *tablePart, j int, found bool) {
	p = &t.parts[h>>(64-bits.Len(tableParts-1))]
	for j = p.start(uint32(h)); ; j = p.next(j) {
		s := p.slots[j]
		if s.num == 0 {
			return p, j, false
		}
		if s.hash == uint32(h) {
			if st := streams.at(s.num - 1); st.entity == id.entity && streams.scopes[st.scope] == id.scope {
				return p, j, true
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
	p.slots[j] = tableSlot{num: i + 1, hash: uint32(h)}
	p.n++
	return i, false
}

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

// resize gives the part room for n streams at three quarters full, unless
// it has that already, and puts its slots back in it.
func (p *tablePart) resize(n int) {
	size := n*4/3 + 8
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
