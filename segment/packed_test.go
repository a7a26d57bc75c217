package segment

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"math/rand/v2"
	"reflect"
	"runtime/debug"
	"testing"
	"time"
)

// checkPacked packs src and checks that every entry reads back exactly,
// one by one and through Unpack, and from the block's encoding, which
// decodes to the same block and encodes again to the same bytes. what
// names the case in failures, a panic's too.
func checkPacked(t *testing.T, what string, src *[CheckpointBlockEntries]PackedEntry) *PackedBlock {
	t.Helper()
	defer func() {
		if p := recover(); p != nil {
			t.Fatalf("%s: %v\n%s", what, p, debug.Stack())
		}
	}()
	c := PackBlock(src)
	bad := 0
	for j := range src {
		if got := c.At(uint32(j)); got != src[j] {
			if bad++; bad <= 3 {
				g := &c.groups[j>>packGroupBits]
				t.Errorf("%s: entry %d reads %+v, packed %+v (group widths %v, stride %d)", what, j, got, src[j], g.widths, g.stride)
			}
		}
	}
	var back [CheckpointBlockEntries]PackedEntry
	c.Unpack(&back)
	if back != *src {
		t.Errorf("%s: unpack differs from the packed entries", what)
	}
	checkStreams(t, what, c, src[:])
	checkEncoding(t, what, c)
	return c
}

// checkStreams checks that Streams reads the streams of src, packed in c,
// for every prefix length that ends a group or is one past a group.
func checkStreams(t *testing.T, what string, c *PackedBlock, src []PackedEntry) {
	t.Helper()
	got := make([]uint32, len(src))
	for _, n := range []int{len(src), len(src) / 2, min(len(src), packGroup+1), 1} {
		c.Streams(got[:n])
		for j := range n {
			if got[j] != src[j].Stream {
				t.Fatalf("%s: Streams of %d: entry %d reads stream %d, packed %d", what, n, j, got[j], src[j].Stream)
			}
		}
	}
}

// checkEncoding checks that c's encoding decodes to c and encodes again
// to the same bytes, and that any shorter encoding is refused.
func checkEncoding(t *testing.T, what string, c *PackedBlock) {
	t.Helper()
	b, _ := c.AppendBinary(nil)
	d, err := decodePackedBlock(b, nil)
	if err != nil {
		t.Fatalf("%s: decode: %v", what, err)
	}
	if !reflect.DeepEqual(d, c) {
		t.Fatalf("%s: decodes to another block", what)
	}
	if again, _ := d.AppendBinary(nil); !bytes.Equal(again, b) {
		t.Fatalf("%s: encodes again to other bytes", what)
	}
	for _, cut := range []int{0, 1, packedHead, len(b) - 8, len(b) - 1} {
		if _, err := decodePackedBlock(b[:cut], nil); !errors.Is(err, ErrCorrupt) {
			t.Fatalf("%s: cut to %d of %d bytes: %v", what, cut, len(b), err)
		}
	}
}

// TestPackEntries packs fewer entries than a block holds, as a
// checkpoint's last block: they read back, the block encodes only their
// groups, and its count survives the encoding.
func TestPackEntries(t *testing.T) {
	r := rand.New(rand.NewPCG(7, 7))
	var all [CheckpointBlockEntries]PackedEntry
	entryGens["appended"](r, all[:])
	for _, n := range []int{1, 2, packGroup - 1, packGroup, packGroup + 1, 1000, CheckpointBlockEntries - 1, CheckpointBlockEntries} {
		c := PackEntries(all[:n])
		if c.Len() != n {
			t.Fatalf("%d entries: Len %d", n, c.Len())
		}
		for j := range n {
			if got := c.At(uint32(j)); got != all[j] {
				t.Fatalf("%d entries: entry %d reads %+v, packed %+v", n, j, got, all[j])
			}
		}
		checkStreams(t, fmt.Sprint(n, " entries"), c, all[:n])
		checkEncoding(t, fmt.Sprint(n, " entries"), c)
		full, _ := PackBlock(&all).AppendBinary(nil)
		if b, _ := c.AppendBinary(nil); n < CheckpointBlockEntries/2 && len(b) >= len(full)/2 {
			t.Errorf("%d entries encode in %d bytes, a full block in %d", n, len(b), len(full))
		}
	}
}

// FuzzPackedBlock: any bytes decode to a block or an error, never a panic;
// every entry of a decoded block reads without a panic, At and Streams
// agree on its streams, and it encodes to the same bytes.
func FuzzPackedBlock(f *testing.F) {
	r := rand.New(rand.NewPCG(1, 1))
	for _, name := range []string{"appended", "compacted", "wide", "extremes"} {
		var src [CheckpointBlockEntries]PackedEntry
		entryGens[name](r, src[:])
		b, _ := PackEntries(src[:100+r.IntN(200)]).AppendBinary(nil)
		f.Add(b)
	}
	f.Fuzz(func(t *testing.T, b []byte) {
		c, err := decodePackedBlock(b, nil)
		if err != nil {
			if !errors.Is(err, ErrCorrupt) {
				t.Fatalf("not ErrCorrupt: %v", err)
			}
			return
		}
		// Only the block's own entries: reading all 16,384 would make
		// each valid input cost a hundred times more.
		streams := make([]uint32, c.Len())
		c.Streams(streams)
		for j := range c.Len() {
			if e := c.At(uint32(j)); e.Stream != streams[j] {
				t.Fatalf("entry %d: At reads stream %d, Streams %d", j, e.Stream, streams[j])
			}
		}
		if again, _ := c.AppendBinary(nil); !bytes.Equal(again, b) {
			t.Fatal("a decoded block encodes to other bytes")
		}
	})
}

// entryGen fills chunks with entries of one kind of distribution.
type entryGen func(r *rand.Rand, dst []PackedEntry)

var entryGens = map[string]entryGen{
	// Appends: frames follow each other in ascending segments.
	"appended": func(r *rand.Rand, dst []PackedEntry) {
		seg, off := r.Uint32N(1000), uint32(16)
		for i := range dst {
			if r.IntN(2000) == 0 {
				seg, off = seg+1, 16
			}
			l := 100 + r.Uint32N(400)
			dst[i] = PackedEntry{Pos: Position{Segment: seg, Offset: off, Length: l}, Stream: r.Uint32N(10000), Kind: uint16(r.IntN(4))}
			off += l
		}
	},
	// Round-robin streams with frames of one length, as a bulk load writes.
	"uniform": func(r *rand.Rand, dst []PackedEntry) {
		off, st := uint32(r.IntN(1<<20)), r.Uint32N(100000)
		for i := range dst {
			dst[i] = PackedEntry{Pos: Position{Segment: 7, Offset: off, Length: 371}, Stream: st + uint32(i), Kind: 3}
			off += 371
		}
	},
	// After compaction: positions anywhere in a few segments, holes.
	"compacted": func(r *rand.Rand, dst []PackedEntry) {
		for i := range dst {
			e := PackedEntry{Pos: Position{Segment: 40 + r.Uint32N(5), Offset: r.Uint32N(64 << 20), Length: 50 + r.Uint32N(5000)},
				Stream: r.Uint32N(1 << 20), Kind: uint16(r.IntN(30))}
			if r.IntN(10) == 0 {
				e.Flags = EntryDeleted
				if r.IntN(2) == 0 {
					e.Flags |= EntryLost
				}
			}
			dst[i] = e
		}
	},
	// Any value at all.
	"random": func(r *rand.Rand, dst []PackedEntry) {
		for i := range dst {
			dst[i] = PackedEntry{Pos: Position{Segment: r.Uint32(), Offset: r.Uint32(), Length: r.Uint32()},
				Stream: r.Uint32(), Kind: uint16(r.Uint32()), Flags: uint16(r.Uint32())}
		}
	},
	// Wide entries whose last fields take no bits.
	"wide": func(r *rand.Rand, dst []PackedEntry) {
		for i := range dst {
			dst[i] = PackedEntry{Pos: Position{Segment: r.Uint32(), Offset: r.Uint32(), Length: r.Uint32()}, Stream: r.Uint32(), Kind: 9}
		}
	},
	// Extremes only.
	"extremes": func(r *rand.Rand, dst []PackedEntry) {
		x := func() uint32 { return []uint32{0, 1, math.MaxUint32 - 1, math.MaxUint32}[r.IntN(4)] }
		for i := range dst {
			dst[i] = PackedEntry{Pos: Position{Segment: x(), Offset: x(), Length: x()}, Stream: x(), Kind: uint16(x()), Flags: uint16(x())}
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
			var src [CheckpointBlockEntries]PackedEntry
			if round < len(names) { // one distribution for the whole chunk
				entryGens[names[round]](r, src[:])
			} else { // runs of every length, some within a group
				for i := 0; i < CheckpointBlockEntries; {
					n := min(1+r.IntN(3*packGroup), CheckpointBlockEntries-i)
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
		entry func(j int) PackedEntry
		width uint8 // the expected bits per entry, if > 0
	}{
		{"zero", func(int) PackedEntry { return PackedEntry{} }, 0},
		{"all max", func(int) PackedEntry {
			return PackedEntry{Pos: Position{Segment: max32, Offset: max32, Length: max32}, Stream: max32, Kind: 0xFFFF, Flags: 0xFFFF}
		}, 0},
		{"alternating zero and max", func(j int) PackedEntry {
			if j%2 == 0 {
				return PackedEntry{}
			}
			return PackedEntry{Pos: Position{Segment: max32, Offset: max32, Length: max32}, Stream: max32, Kind: 0xFFFF, Flags: 0xFFFF}
		}, 128},
		{"wide, ending in fields of no bits", func(j int) PackedEntry {
			if j%2 == 0 {
				return PackedEntry{Kind: 7, Flags: 1}
			}
			return PackedEntry{Pos: Position{Segment: max32, Length: max32}, Stream: max32, Kind: 7, Flags: 1}
		}, 96},
		{"one odd entry", func(j int) PackedEntry {
			if j == 9999 {
				return PackedEntry{Pos: Position{Segment: 3, Offset: 5, Length: max32}, Stream: max32, Kind: 1, Flags: EntryDeleted}
			}
			return PackedEntry{Pos: Position{Segment: 3, Offset: 5, Length: 100}}
		}, 0},
		{"constant stride", func(j int) PackedEntry {
			return PackedEntry{Pos: Position{Segment: 1, Offset: 16 + uint32(j)*300, Length: 300}, Stream: uint32(j % 64)}
		}, 6},
		{"descending offsets", func(j int) PackedEntry {
			return PackedEntry{Pos: Position{Segment: 1, Offset: max32 - uint32(j)*300, Length: 300}}
		}, 0},
		{"offsets wrap past 2^32", func(j int) PackedEntry {
			return PackedEntry{Pos: Position{Segment: 1, Offset: max32 - 100000 + uint32(j)*97, Length: 97}}
		}, 0},
		{"huge stride", func(j int) PackedEntry {
			return PackedEntry{Pos: Position{Segment: 1, Offset: uint32(j%packGroup) * (max32 / packGroup), Length: 1}}
		}, 0},
		{"stride then a jump", func(j int) PackedEntry {
			off := uint32(j%packGroup) * 1000
			if j%packGroup == packGroup-1 {
				off = max32
			}
			return PackedEntry{Pos: Position{Segment: 1, Offset: off, Length: 1000}}
		}, 0},
		{"new segment within groups", func(j int) PackedEntry {
			seg, k := uint32(j/100), uint32(j%100)
			return PackedEntry{Pos: Position{Segment: seg, Offset: 16 + k*200, Length: 200}}
		}, 0},
		{"three segments a group", func(j int) PackedEntry {
			return PackedEntry{Pos: Position{Segment: uint32(j / 20), Offset: max32 - uint32(j%20)*5000, Length: 5000}}
		}, 0},
		{"segments far apart", func(j int) PackedEntry {
			return PackedEntry{Pos: Position{Segment: uint32(j%3) * (max32 / 2), Offset: uint32(j), Length: 1}}
		}, 0},
		{"streams and kinds at the top", func(j int) PackedEntry {
			return PackedEntry{Stream: max32 - uint32(j%5), Kind: 0xFFFF - uint16(j%2), Flags: 0xFFFF}
		}, 0},
		{"every flag", func(j int) PackedEntry { return PackedEntry{Flags: uint16(j)} }, 0},
	}
	for _, tc := range cases {
		var src [CheckpointBlockEntries]PackedEntry
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
func widest(c *PackedBlock) uint8 {
	var w uint8
	for i := range c.groups {
		w = max(w, c.groups[i].width)
	}
	return w
}

// BenchmarkPackChunk measures packing one full chunk of appended entries:
// the committer does it under the index's write lock.
func BenchmarkPackChunk(b *testing.B) {
	var src [CheckpointBlockEntries]PackedEntry
	entryGens["appended"](rand.New(rand.NewPCG(1, 2)), src[:])
	for b.Loop() {
		PackBlock(&src)
	}
}

// BenchmarkPackedAt measures reading entries of a packed chunk.
func BenchmarkPackedAt(b *testing.B) {
	var src [CheckpointBlockEntries]PackedEntry
	entryGens["appended"](rand.New(rand.NewPCG(1, 2)), src[:])
	c := PackBlock(&src)
	b.Logf("%.1f bits an entry", float64(len(c.words)*64)/CheckpointBlockEntries)
	var sink PackedEntry
	j := uint32(0)
	for b.Loop() {
		sink = c.At(j & (CheckpointBlockEntries - 1))
		j += 7919
	}
	_ = sink
}
