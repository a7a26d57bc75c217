package eventstore

import "hash/maphash"

// streamTable finds a stream's number by its id. It keys its map by a
// 64-bit hash of the id rather than by the id's two strings: 12 bytes a
// stream instead of 36, and integer compares. A stream whose hash another
// stream took first goes into a map keyed by its whole id.
type streamTable struct {
	seed     maphash.Seed
	byHash   map[uint64]uint32
	collided map[streamID]uint32
}

func newStreamTable(n int) streamTable {
	return streamTable{seed: maphash.MakeSeed(), byHash: make(map[uint64]uint32, n)}
}

// find returns the number of stream id among streams.
func (t *streamTable) find(streams []*stream, id streamID) (uint32, bool) {
	if i, ok := t.byHash[maphash.Comparable(t.seed, id)]; ok && streams[i].entity == id.entity && streams[i].scope == id.scope {
		return i, true
	}
	i, ok := t.collided[id]
	return i, ok
}

// add records stream id as number i; id must not be in the table.
func (t *streamTable) add(id streamID, i uint32) {
	h := maphash.Comparable(t.seed, id)
	if _, taken := t.byHash[h]; !taken {
		t.byHash[h] = i
		return
	}
	if t.collided == nil {
		t.collided = make(map[streamID]uint32)
	}
	t.collided[id] = i
}
