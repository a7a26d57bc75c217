package eventstore

import (
	"fmt"
	"math"
	"math/rand/v2"
	"runtime/debug"
	"testing"
	"time"

	"github.com/batpak-go/batpak/segment"
)

// checkPacked packs src and checks that every entry reads back exactly,
// one by one and through unpack. what names the case in failures, a
// panic's too.
func checkPacked(t *testing.T, what string, src *[entryChunk]entry) *packedChunk {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s: %v\n%s", what, p, debug.Stack())
		}
	}()
	c := packChunk(src)
	bad := 0
	for j := range src {
		if got := c.at(uint32(j)); got != src[j] {
			if bad++; bad <= 3 {
				g := &c.groups[j>>packGroupBits]
				t.Errorf("%s: entry %d reads %+v, packed %+v (group widths %v, stride %d)", what, j, got, src[j], g.widths, g.stride)
			}
		}
	}
	var back [entryChunk]entry
	c.unpack(&back)
	if back != *src {
		t.Errorf("%s: unpack differs from the packed entries", what)
	}
	return c
}

// entryGen fills chunks with entries of one kind of distribution.
type entryGen func(r *rand.Rand, dst []entry)

var entryGens = map[string]entryGen{
	// Appends: frames follow each other in ascending segments.
	"appended": func(r *rand.Rand, dst []entry) {
		seg, off := r.Uint32N(1000), uint32(16)
		for i := range dst {
			if r.IntN(2000) == 0 {
				seg, off = seg+1, 16
			}
			l := 100 + r.Uint32N(400)
			dst[i] = entry{pos: segment.Position{Segment: seg, Offset: off, Length: l}, stream: r.Uint32N(10000), kind: uint16(r.IntN(4))}
			off += l
		}
	},
	// Round-robin streams with frames of one length, as a bulk load writes.
	"uniform": func(r *rand.Rand, dst []entry) {
		off, st := uint32(r.IntN(1<<20)), r.Uint32N(100000)
		for i := range dst {
			dst[i] = entry{pos: segment.Position{Segment: 7, Offset: off, Length: 371}, stream: st + uint32(i), kind: 3}
			off += 371
		}
	},
	// After compaction: positions anywhere in a few segments, holes.
	"compacted": func(r *rand.Rand, dst []entry) {
		for i := range dst {
			e := entry{pos: segment.Position{Segment: 40 + r.Uint32N(5), Offset: r.Uint32N(64 << 20), Length: 50 + r.Uint32N(5000)},
				stream: r.Uint32N(1 << 20), kind: uint16(r.IntN(30))}
			if r.IntN(10) == 0 {
				e.flags = segment.EntryDeleted
				if r.IntN(2) == 0 {
					e.flags |= segment.EntryLost
				}
			}
			dst[i] = e
		}
	},
	// Any value at all.
	"random": func(r *rand.Rand, dst []entry) {
		for i := range dst {
			dst[i] = entry{pos: segment.Position{Segment: r.Uint32(), Offset: r.Uint32(), Length: r.Uint32()},
				stream: r.Uint32(), kind: uint16(r.Uint32()), flags: uint16(r.Uint32())}
		}
	},
	// Wide entries whose last fields take no bits.
	"wide": func(r *rand.Rand, dst []entry) {
		for i := range dst {
			dst[i] = entry{pos: segment.Position{Segment: r.Uint32(), Offset: r.Uint32(), Length: r.Uint32()}, stream: r.Uint32(), kind: 9}
		}
	},
	// Extremes only.
	"extremes": func(r *rand.Rand, dst []entry) {
		x := func() uint32 { return []uint32{0, 1, math.MaxUint32 - 1, math.MaxUint32}[r.IntN(4)] }
		for i := range dst {
			dst[i] = entry{pos: segment.Position{Segment: x(), Offset: x(), Length: x()}, stream: x(), kind: uint16(x()), flags: uint16(x())}
		}
	},
}

// TestPackRandom packs seeded random chunks, each mixing runs of the
// distributions, and checks that they read back exactly.
func TestPackRandom(t *testing.T) {
	names := []string{"appended", "uniform", "compacted", "random", "wide", "extremes"}
	seeds := []uint64{1, 2, 3, 4, 5, 6, 7, 8, uint64(time.Now().UnixNano())}
	for _, seed := range seeds {
		r := rand.New(rand.NewPCG(seed, 0x5eed))
		for round := range len(names) + 2 {
			var src [entryChunk]entry
			if round < len(names) { // one distribution for the whole chunk
				entryGens[names[round]](r, src[:])
			} else { // runs of every length, some within a group
				for i := 0; i < entryChunk; {
					n := min(1+r.IntN(3*packGroup), entryChunk-i)
					entryGens[names[r.IntN(len(names))]](r, src[i:i+n])
					i += n
				}
			}
			checkPacked(t, fmt.Sprintf("seed %d round %d", seed, round), &src)
		}
		if t.Failed() {
			t.Fatalf("failed with seed %d", seed)
		}
	}
}

// TestPackEdges packs chunks built to hit the limits of the encoding.
func TestPackEdges(t *testing.T) {
	const max32 = math.MaxUint32
	cases := []struct {
		name  string
		entry func(j int) entry
		width uint8 // the expected bits per entry, if > 0
	}{
		{"zero", func(int) entry { return entry{} }, 0},
		{"all max", func(int) entry {
			return entry{pos: segment.Position{Segment: max32, Offset: max32, Length: max32}, stream: max32, kind: 0xFFFF, flags: 0xFFFF}
		}, 0},
		{"alternating zero and max", func(j int) entry {
			if j%2 == 0 {
				return entry{}
			}
			return entry{pos: segment.Position{Segment: max32, Offset: max32, Length: max32}, stream: max32, kind: 0xFFFF, flags: 0xFFFF}
		}, 128},
		{"wide, ending in fields of no bits", func(j int) entry {
			if j%2 == 0 {
				return entry{kind: 7, flags: 1}
			}
			return entry{pos: segment.Position{Segment: max32, Length: max32}, stream: max32, kind: 7, flags: 1}
		}, 96},
		{"one odd entry", func(j int) entry {
			if j == 9999 {
				return entry{pos: segment.Position{Segment: 3, Offset: 5, Length: max32}, stream: max32, kind: 1, flags: segment.EntryDeleted}
			}
			return entry{pos: segment.Position{Segment: 3, Offset: 5, Length: 100}}
		}, 0},
		{"constant stride", func(j int) entry {
			return entry{pos: segment.Position{Segment: 1, Offset: 16 + uint32(j)*300, Length: 300}, stream: uint32(j % 64)}
		}, 6},
		{"descending offsets", func(j int) entry {
			return entry{pos: segment.Position{Segment: 1, Offset: max32 - uint32(j)*300, Length: 300}}
		}, 0},
		{"offsets wrap past 2^32", func(j int) entry {
			return entry{pos: segment.Position{Segment: 1, Offset: max32 - 100000 + uint32(j)*97, Length: 97}}
		}, 0},
		{"huge stride", func(j int) entry {
			return entry{pos: segment.Position{Segment: 1, Offset: uint32(j%packGroup) * (max32 / packGroup), Length: 1}}
		}, 0},
		{"stride then a jump", func(j int) entry {
			off := uint32(j%packGroup) * 1000
			if j%packGroup == packGroup-1 {
				off = max32
			}
			return entry{pos: segment.Position{Segment: 1, Offset: off, Length: 1000}}
		}, 0},
		{"new segment within groups", func(j int) entry {
			seg, k := uint32(j/100), uint32(j%100)
			return entry{pos: segment.Position{Segment: seg, Offset: 16 + k*200, Length: 200}}
		}, 0},
		{"three segments a group", func(j int) entry {
			return entry{pos: segment.Position{Segment: uint32(j / 20), Offset: max32 - uint32(j%20)*5000, Length: 5000}}
		}, 0},
		{"segments far apart", func(j int) entry {
			return entry{pos: segment.Position{Segment: uint32(j%3) * (max32 / 2), Offset: uint32(j), Length: 1}}
		}, 0},
		{"streams and kinds at the top", func(j int) entry {
			return entry{stream: max32 - uint32(j%5), kind: 0xFFFF - uint16(j%2), flags: 0xFFFF}
		}, 0},
		{"every flag", func(j int) entry { return entry{flags: uint16(j)} }, 0},
	}
	for _, tc := range cases {
		var src [entryChunk]entry
		for j := range src {
			src[j] = tc.entry(j)
		}
		c := checkPacked(t, tc.name, &src)
		if w := widest(c); tc.width > 0 && w != tc.width {
			t.Errorf("%s: %d bits an entry, want %d", tc.name, w, tc.width)
		}
		if w := widest(c); tc.name == "zero" && w != 0 {
			t.Errorf("zero: %d bits an entry, want 0", w)
		}
	}
}

// widest returns the largest entry width of c's groups.
func widest(c *packedChunk) uint8 {
	var w uint8
	for i := range c.groups {
		w = max(w, c.groups[i].width)
	}
	return w
}

// testEntry is the entry the log tests store at seq.
func testEntry(seq uint64) entry {
	return entry{pos: segment.Position{Segment: uint32(seq >> 12), Offset: uint32(seq&4095) * 200, Length: 200}, stream: uint32(seq % 1000), kind: uint16(seq % 3)}
}

// TestEntryLogAppendPacks checks that the append that fills a chunk packs
// it, and that a snapshot taken before still reads its plain chunk.
func TestEntryLogAppendPacks(t *testing.T) {
	var l entryLog
	var before entryLog
	for seq := uint64(1); seq <= 2*entryChunk+10; seq++ {
		if seq == entryChunk {
			before = l
		}
		l.append(testEntry(seq))
	}
	if len(l.packed) != 2 || l.tail == nil {
		t.Fatalf("%d packed chunks, tail %v; want 2 and a tail", len(l.packed), l.tail != nil)
	}
	if len(before.packed) != 0 || before.len() != entryChunk-1 {
		t.Fatalf("snapshot has %d packed chunks and %d entries", len(before.packed), before.len())
	}
	for seq := uint64(1); seq <= l.len(); seq++ {
		if got := l.at(seq); got != testEntry(seq) {
			t.Fatalf("seq %d: %+v, want %+v", seq, got, testEntry(seq))
		}
		if seq <= before.len() && before.at(seq) != testEntry(seq) {
			t.Fatalf("snapshot: seq %d: %+v", seq, before.at(seq))
		}
	}
}

// TestEntryLogUpdates checks the copy-on-write of withUpdates on packed
// chunks and the plain tail: the log it came from, and any snapshot,
// never see a change, and chunks without updates are shared.
func TestEntryLogUpdates(t *testing.T) {
	var l entryLog
	for seq := uint64(1); seq <= 3*entryChunk+100; seq++ {
		l.append(testEntry(seq))
	}
	moved := func(seq uint64) entry {
		e := testEntry(seq)
		e.pos = segment.Position{Segment: 1 << 31, Offset: math.MaxUint32 - uint32(seq), Length: 77}
		e.flags |= segment.EntryDeleted
		return e
	}
	seqs := []uint64{1, 2, entryChunk, 2*entryChunk + 1, 3*entryChunk + 1, 3*entryChunk + 100}
	updates := make(map[uint64]entry)
	for _, seq := range seqs {
		updates[seq] = moved(seq)
	}
	updated := l.withUpdates(updates)
	if updated.packed[1] != l.packed[1] {
		t.Error("a chunk without updates was copied")
	}
	if updated.packed[0] == l.packed[0] || updated.packed[2] == l.packed[2] || updated.tail == l.tail {
		t.Error("an updated chunk is shared with the old log")
	}
	updated.append(testEntry(updated.len() + 1))
	for seq := uint64(1); seq <= l.len(); seq++ {
		if got := l.at(seq); got != testEntry(seq) {
			t.Fatalf("old log: seq %d: %+v, want %+v", seq, got, testEntry(seq))
		}
		want := testEntry(seq)
		if _, ok := updates[seq]; ok {
			want = moved(seq)
		}
		if got := updated.at(seq); got != want {
			t.Fatalf("updated log: seq %d: %+v, want %+v", seq, got, want)
		}
	}
	if got := updated.at(updated.len()); got != testEntry(updated.len()) {
		t.Errorf("append after the updates: %+v", got)
	}
}

// BenchmarkPackChunk measures packing one full chunk of appended entries:
// the committer does it under the index's write lock.
func BenchmarkPackChunk(b *testing.B) {
	var src [entryChunk]entry
	entryGens["appended"](rand.New(rand.NewPCG(1, 2)), src[:])
	for b.Loop() {
		packChunk(&src)
	}
}

// BenchmarkPackedAt measures reading entries of a packed chunk.
func BenchmarkPackedAt(b *testing.B) {
	var src [entryChunk]entry
	entryGens["appended"](rand.New(rand.NewPCG(1, 2)), src[:])
	c := packChunk(&src)
	b.Logf("%.1f bits an entry", float64(len(c.words)*64)/entryChunk)
	var sink entry
	j := uint32(0)
	for b.Loop() {
		sink = c.at(j & (entryChunk - 1))
		j += 7919
	}
	_ = sink
}
