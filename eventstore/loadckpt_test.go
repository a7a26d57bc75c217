package eventstore

import (
	"fmt"
	"math/rand/v2"
	"slices"
	"testing"

	"github.com/batpak-go/batpak/segment"
)

// testCheckpointOf returns a checkpoint of n events in the given number of
// streams, and its entries.
func testCheckpointOf(n, streams int) (*segment.Checkpoint, []entry) {
	r := rand.New(rand.NewPCG(uint64(n), uint64(streams)))
	c := &segment.Checkpoint{LastSeq: uint64(n), Scopes: []string{"s", "t"}}
	for i := range streams {
		c.Streams = append(c.Streams, segment.CheckpointStream{Entity: fmt.Sprint("e", i), Scope: uint32(i % 2), LastHash: [32]byte{byte(i), byte(i >> 8), 31: 1}})
	}
	want := make([]entry, n)
	seg, off := uint32(3), uint32(32)
	for i := range n {
		if r.IntN(5000) == 0 {
			seg, off = seg+1, 32
		}
		st := r.Uint32N(uint32(len(c.Streams)))
		e := segment.IndexEntry{Seq: uint64(i + 1), Kind: uint16(r.IntN(3)), Entity: st, Scope: c.Streams[st].Scope,
			Segment: seg, Offset: off, Length: 100 + r.Uint32N(300)}
		if r.IntN(20) == 0 {
			e.Flags = segment.EntryDeleted
		}
		off += e.Length
		c.Streams[st].Version++
		e.Version = c.Streams[st].Version
		c.Entries = append(c.Entries, e)
		want[i] = entry{Pos: segment.Position{Segment: seg, Offset: e.Offset, Length: e.Length}, Stream: st, Kind: e.Kind, Flags: e.Flags}
	}
	c.Segment, c.FrameEnd = seg, uint64(off)
	return c, want
}

// indexFromBytes opens the checkpoint b and builds an index from it.
func indexFromBytes(b []byte) (*memIndex, error) {
	f, err := segment.OpenCheckpoint(b)
	if err != nil {
		return nil, err
	}
	return indexFromCheckpoint(f, &mapped{data: b}, checkBlocksAsync(f))
}

// TestIndexFromCheckpoint loads checkpoints of partial, full and several
// blocks: full blocks are packed, a partial last one stays plain, and
// every entry and stream reads back. The streams of the last two load in
// runs on every core (more than 4,096 rows each).
func TestIndexFromCheckpoint(t *testing.T) {
	for _, tc := range []struct{ n, streams int }{
		{1, 50}, {100, 50}, {entryChunk, 50}, {2 * entryChunk, 50}, {5*entryChunk + 77, 50},
		{3*entryChunk + 5, 5 * streamChunk}, {4 * entryChunk, 3*streamChunk + 1},
		{3*entryChunk + 5, 9000}, {5 * entryChunk, 3*4096 + 1},
	} {
		n := tc.n
		c, want := testCheckpointOf(n, tc.streams)
		var deleted []uint32
		for i := range c.Streams {
			if i%11 == 5 {
				c.Streams[i].Deleted = true
				deleted = append(deleted, uint32(i))
			}
		}
		ix, err := indexFromBytes(segment.EncodeCheckpoint(c))
		if err != nil {
			t.Fatalf("%d events: %v", n, err)
		}
		if !slices.Equal(ix.deleted, deleted) {
			t.Fatalf("%d events, %d streams: deleted %v, want %v", n, tc.streams, ix.deleted, deleted)
		}
		for i := range ix.streams.len() {
			if ix.streams.at(i).isDeleted() != c.Streams[i].Deleted {
				t.Fatalf("%d events: stream %d deleted %v", n, i, ix.streams.at(i).isDeleted())
			}
			id := streamID{entity: c.Streams[i].Entity, scope: c.Scopes[c.Streams[i].Scope]}
			if j, ok := ix.byStream.find(&ix.streams, id); !ok || j != i {
				t.Fatalf("%d events: stream %v found as %d, %v; want %d", n, id, j, ok, i)
			}
		}
		if len(ix.entries.packed) != n/entryChunk || (ix.entries.tail != nil) != (n%entryChunk != 0) {
			t.Errorf("%d events: %d packed chunks, tail %v", n, len(ix.entries.packed), ix.entries.tail != nil)
		}
		versions := make([]int, ix.streams.len())
		for seq := uint64(1); seq <= uint64(n); seq++ {
			e := ix.entries.at(seq)
			if e != want[seq-1] {
				t.Fatalf("%d events: seq %d is %+v, want %+v", n, seq, e, want[seq-1])
			}
			st := ix.streams.at(e.Stream)
			if v := versions[e.Stream]; st.list().at(v) != seq {
				t.Fatalf("%d events: version %d of stream %d is %d, want %d", n, v+1, e.Stream, st.list().at(v), seq)
			}
			versions[e.Stream]++
		}
		// Last hashes read from the checkpoint until they change, and
		// what changes them is not written to it.
		for i := range ix.streams.len() {
			st, cs := ix.streams.at(i), &c.Streams[i]
			want := cs.LastHash
			if cs.Version == 0 {
				want = [32]byte{}
			}
			if got, ok := ix.streams.lastHash(st); !ok || got != want {
				t.Fatalf("%d events: stream %d's last hash %x (%v), want %x", n, i, got, ok, want)
			}
		}
		h := [32]byte{7}
		st := ix.streams.at(0)
		was, _ := ix.streams.ckptHashes.At(0)
		ix.streams.setLastHash(st, &h)
		now, _ := ix.streams.ckptHashes.At(0)
		if got, _ := ix.streams.lastHash(st); got != h || now != was {
			t.Fatalf("%d events: after a new last hash, %x (the checkpoint's %x, was %x)", n, got, now, was)
		}
	}
}

// TestIndexFromCheckpointDamage checks that a damaged block fails the load
// (and that the workers, waiting for chunks, are released), and that
// damaged sequences do not: the lists they are in are found wrong on first
// use and rebuilt from the blocks, whether a read or settleLists uses them
// first.
func TestIndexFromCheckpointDamage(t *testing.T) {
	c, want := testCheckpointOf(6*entryChunk, 50)
	b := segment.EncodeCheckpoint(c)
	seqs := len(b) - 4*len(want) - 4*((4*len(want)+65535)/65536) // where the sequences start
	tried := 0
	for _, at := range []int{len(b) / 8, len(b) / 4, len(b) / 2, seqs + 1, seqs + 4*len(want)/2, len(b) - 8} {
		d := append([]byte(nil), b...)
		d[at] ^= 0x40
		if _, err := segment.OpenCheckpoint(d); err != nil {
			continue // damage the tables find
		}
		_, err := indexFromBytes(d)
		if at < seqs {
			tried++
			if err == nil {
				t.Errorf("byte %d of %d flipped (a block's): loaded", at, len(d))
			}
			continue
		}
		if err != nil {
			t.Fatalf("byte %d of %d flipped (a sequence's): %v", at, len(d), err)
		}
		for _, settle := range []bool{false, true} {
			ix, _ := indexFromBytes(d)
			if got := checkListsOf(t, ix, want, settle); len(got) == 0 {
				t.Errorf("byte %d of %d flipped (a sequence's), settle %v: no list was rebuilt", at, len(d), settle)
			}
		}
	}
	if tried < 2 {
		t.Errorf("only %d of the damaged checkpoints reached the blocks", tried)
	}
}

// checkListsOf checks that every stream of ix lists exactly its entries
// among want, through checkedList (after settleLists if settle), and
// returns the streams whose lists were rebuilt.
func checkListsOf(t *testing.T, ix *memIndex, want []entry, settle bool) []uint32 {
	t.Helper()
	var rebuilt []uint32
	ix.listRepaired = func(id streamID, found, version int, why error) {
		num, _ := ix.byStream.find(&ix.streams, id)
		if found != version {
			t.Errorf("stream %v: found %d events of version %d", id, found, version)
		}
		rebuilt = append(rebuilt, num)
	}
	if settle {
		ix.settleLists()
	}
	lists := make([][]uint64, ix.streams.len())
	for i, e := range want {
		lists[e.Stream] = append(lists[e.Stream], uint64(i+1))
	}
	for i := range ix.streams.len() {
		st := ix.streams.at(i)
		if got := ix.checkedList(i, st, st.list()).appendTo(nil); !slices.Equal(got, lists[i]) {
			t.Fatalf("stream %d lists %v, want %v", i, got, lists[i])
		}
		if ix.unchecked(st) {
			t.Fatalf("stream %d: still unchecked after its first use", i)
		}
	}
	return rebuilt
}

// TestIndexFromCheckpointVersions checks that a table whose versions
// disagree with the entries fails the load, though they add up.
func TestIndexFromCheckpointVersions(t *testing.T) {
	for _, tc := range []struct{ short, long int }{
		{0, 1}, {3*streamChunk - 1, 5}, {streamChunk + 7, 2*streamChunk + 3}, {2 * streamChunk, 0},
	} {
		c, _ := testCheckpointOf(3*entryChunk+11, 3*streamChunk)
		c.Streams[tc.short].Version -= 2
		c.Streams[tc.long].Version += 2
		if _, err := indexFromBytes(segment.EncodeCheckpoint(c)); err == nil {
			t.Errorf("streams %d and %d: loaded", tc.short, tc.long)
		}
	}
}

// TestIndexFromCheckpointSeqs checks that sequence lists that ascend and
// match the versions, but do not list the streams' own entries, are found
// on first use and rebuilt, and only they: two streams that swap one
// event, or one stream that lists an event of another instead of its own;
// and so are lists out of order or past the last sequence.
func TestIndexFromCheckpointSeqs(t *testing.T) {
	c, want := testCheckpointOf(2*entryChunk+5, 2*streamChunk)
	lists := make([][]uint32, len(c.Streams))
	for i, e := range c.Entries {
		lists[e.Entity] = append(lists[e.Entity], uint32(i+1))
	}
	encode := func(lists [][]uint32) []byte {
		var b []byte
		for p := range segment.CheckpointParts(c, func(i int) *segment.PackedBlock {
			part := make([]entry, 0, entryChunk)
			for _, e := range c.Entries[i*entryChunk : min(len(c.Entries), (i+1)*entryChunk)] {
				part = append(part, entry{Pos: segment.Position{Segment: e.Segment, Offset: e.Offset, Length: e.Length}, Stream: e.Entity, Kind: e.Kind, Flags: e.Flags})
			}
			return segment.PackEntries(part)
		}, func(i int) ([]uint32, bool) { return lists[i], false }) {
			b = append(b, p...)
		}
		return b
	}
	// Streams a and b whose first events can trade places in order.
	a, b := -1, -1
	for i := range lists {
		for j := range lists {
			if i != j && len(lists[i]) > 1 && len(lists[j]) > 1 && lists[i][0] < lists[j][0] && lists[j][0] < lists[i][1] && lists[i][0]+1 < lists[j][0] {
				a, b = i, j
			}
		}
		if a >= 0 {
			break
		}
	}
	if a < 0 {
		t.Fatal("no two streams to swap events")
	}
	swapped := slices.Clone(lists)
	swapped[a], swapped[b] = slices.Clone(lists[a]), slices.Clone(lists[b])
	swapped[a][0], swapped[b][0] = lists[b][0], lists[a][0]
	other := slices.Clone(lists)
	other[a] = slices.Clone(lists[a])
	other[a][0]++ // an event between its first and second: another stream's
	// A stream's own events out of order list the same pairs: only the
	// order check finds them. It finds a sequence past the last too.
	reversed := slices.Clone(lists)
	reversed[a] = slices.Clone(lists[a])
	reversed[a][0], reversed[a][1] = lists[a][1], lists[a][0]
	beyond := slices.Clone(lists)
	beyond[a] = slices.Clone(lists[a])
	beyond[a][len(beyond[a])-1] = uint32(c.LastSeq + 1)
	for _, tc := range []struct {
		name  string
		lists [][]uint32
		wrong []uint32
	}{
		{"right", lists, nil},
		{"swapped", swapped, []uint32{uint32(min(a, b)), uint32(max(a, b))}},
		{"another's", other, []uint32{uint32(a)}},
		{"out of order", reversed, []uint32{uint32(a)}},
		{"beyond the last", beyond, []uint32{uint32(a)}},
	} {
		for _, settle := range []bool{false, true} {
			ix, err := indexFromBytes(encode(tc.lists))
			if err != nil {
				t.Fatalf("%s: %v", tc.name, err)
			}
			if got := checkListsOf(t, ix, want, settle); !slices.Equal(got, tc.wrong) {
				t.Errorf("%s, settle %v: rebuilt %v, want %v", tc.name, settle, got, tc.wrong)
			}
		}
	}
}
