package eventstore

import "hash/maphash"

// streamTable finds a stream's number by its id. It keys its map by a
// 64-bit hash of the id rather than by the id's two strings: 12 bytes a
// stream instead of 36, and integer compares. A stream whose hash another
// stream took first goes into a map keyed by its whole id.
type streamTable struct {
	seed     maphash.Seed
	mask     uint64 // all ones; tests clear bits to make hashes collide
	byHash   map[uint64]uint32
	collided map[streamID]uint32
}

func newStreamTable(n int) streamTable {
	return streamTable{seed: maphash.MakeSeed(), mask: ^uint64(0), byHash: make(map[uint64]uint32, n)}
}

func (t *streamTable) hash(id streamID) uint64 { return maphash.Comparable(t.seed, id) & t.mask }

// find returns the number of stream id among streams.
func (t *streamTable) find(streams []*stream, id streamID) (uint32, bool) {
	if i, ok := t.byHash[t.hash(id)]; ok && streams[i].entity == id.entity && streams[i].scope == id.scope {
		return i, true
	}
	i, ok := t.collided[id]
	return i, ok
}

// addNew records stream id as number i among streams, whose first i
// elements are in the table, unless id is one of them: then it returns
// false. It probes the map once where find and add would probe it twice
// (opening a store adds every stream); only a hash some stream already
// holds, which is rare, costs a look through the table's streams.
func (t *streamTable) addNew(streams []*stream, id streamID, i uint32) bool {
	h := t.hash(id)
	n := len(t.byHash)
	t.byHash[h] = i
	if len(t.byHash) > n {
		return true
	}
	// Another stream held h: find it, put it back, and add id beside it.
	for j, st := range streams[:i] {
		if other := (streamID{scope: st.scope, entity: st.entity}); t.hash(other) == h {
			if _, inCollided := t.collided[other]; !inCollided {
				t.byHash[h] = uint32(j)
				break
			}
		}
	}
	if _, ok := t.find(streams, id); ok {
		return false
	}
	t.add(id, i)
	return true
}

// add records stream id as number i; id must not be in the table.
func (t *streamTable) add(id streamID, i uint32) {
	h := t.hash(id)
	if _, taken := t.byHash[h]; !taken {
		t.byHash[h] = i
		return
	}
	if t.collided == nil {
		t.collided = make(map[streamID]uint32)
	}
	t.collided[id] = i
}
