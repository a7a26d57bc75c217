package segment

import (
	"math"
	"math/bits"
)

const (
	// CheckpointBlockBits sets the entries of a checkpoint block: every
	// block but the last holds CheckpointBlockEntries, and each is checked
	// and decoded on its own.
	CheckpointBlockBits    = 14
	CheckpointBlockEntries = 1 << CheckpointBlockBits
)

// PackedEntry is an index entry as a [PackedBlock] holds it: where the
// event's frame is, the number of its stream, its kind and its flags
// ([EntryDeleted], [EntryLost]). It is the event store's in-memory index
// record.
type PackedEntry struct {
	Pos    Position
	Stream uint32
	Kind   uint16
	Flags  uint16
}

// Packing: a block is cut in groups of packGroup entries; each group
// has its own bases and field widths, so a group of odd values (a new
// segment, a compacted range) widens only itself. Any entry packs exactly.
// Reading one entry is O(1): its bits start at its group's first bit plus
// its place in the group times the group's entry width.
//
// Each field of entry j is stored as the difference from a base:
//
//	segment  from the minimum segment of j's group
//	offset   from base + (j mod packGroup)·stride, the group's stride: frames
//	         of one segment follow each other, so offsets grow by about
//	         the mean frame length (a group whose offsets do not ascend
//	         packs narrower with stride 0). A group spanning segments has
//	         two bases, one for the entries of its first segment and one
//	         for the others, whose offsets start again near zero.
//	length   from the block's minimum length
//	stream   from the minimum stream of j's group
//	kind     from the block's minimum kind
//	flags    from the block's minimum flags

// packGroupBits sets the number of entries that share one set of bases
// and widths: 64, so a group's offsets span about 64 frames and its
// description costs half a byte an entry.
const packGroupBits = 6

const packGroup = 1 << packGroupBits

// Fields of a packed entry, in the order of their bits.
const (
	fSeg = iota
	fOff
	fLen
	fStream
	fKind
	fFlags
	numFields
)

// packGroupDesc describes one group of packGroup entries: where its bits
// start, its bases and its field widths.
type packGroupDesc struct {
	bit    uint32 // of its first entry in PackedBlock.words, 0 if width is 0
	seg    uint32
	off    uint32 // for entries in segment seg
	offHi  uint32 // for entries in later segments
	stream uint32
	stride uint32
	width  uint8 // bits per entry: the sum of widths
	widths [numFields]uint8
}

// A PackedBlock holds up to [CheckpointBlockEntries] entries in
// frame-of-reference bit fields, a few bytes an entry where a plain entry
// takes 20: the store keeps every full chunk of its index packed, and a
// checkpoint holds the same blocks ([PackedBlock.AppendBinary]). It never
// changes once packed.
type PackedBlock struct {
	words  []uint64 // the groups' entries, and two spare words
	groups [CheckpointBlockEntries / packGroup]packGroupDesc
	n      uint32 // entries: CheckpointBlockEntries but in a checkpoint's last block
	length uint32 // minimum length
	kind   uint16 // minimum kind
	flags  uint16 // minimum flags
}

// Len returns the number of entries the block holds; At reads garbage
// past them.
func (c *PackedBlock) Len() int { return int(c.n) }

// At returns entry j of the block (j < CheckpointBlockEntries).
func (c *PackedBlock) At(j uint32) PackedEntry {
	j &= CheckpointBlockEntries - 1
	g := &c.groups[j>>packGroupBits]
	pos := uint(g.bit) + uint(j&(packGroup-1))*uint(g.width)
	w := &g.widths
	// Field widths are at most 32: masking the shifts by 63 changes
	// nothing and spares the compiler's checks for shifts of 64 or more.
	var seg, off, length, stream, kind, flags uint64
	if g.width <= 64 {
		i, s := pos>>6, pos&63
		v := c.words[i]>>s | c.words[i+1]<<1<<(63-s)
		seg, v = v&lowMask(w[fSeg]), v>>(w[fSeg]&63)
		off, v = v&lowMask(w[fOff]), v>>(w[fOff]&63)
		length, v = v&lowMask(w[fLen]), v>>(w[fLen]&63)
		stream, v = v&lowMask(w[fStream]), v>>(w[fStream]&63)
		kind, v = v&lowMask(w[fKind]), v>>(w[fKind]&63)
		flags = v & lowMask(w[fFlags])
	} else {
		seg, pos = c.bits(pos, w[fSeg]), pos+uint(w[fSeg])
		off, pos = c.bits(pos, w[fOff]), pos+uint(w[fOff])
		length, pos = c.bits(pos, w[fLen]), pos+uint(w[fLen])
		stream, pos = c.bits(pos, w[fStream]), pos+uint(w[fStream])
		kind, pos = c.bits(pos, w[fKind]), pos+uint(w[fKind])
		flags = c.bits(pos, w[fFlags])
	}
	base := g.off
	if seg != 0 {
		base = g.offHi
	}
	return PackedEntry{
		Pos: Position{
			Segment: g.seg + uint32(seg),
			Offset:  base + (j&(packGroup-1))*g.stride + uint32(off),
			Length:  c.length + uint32(length),
		},
		Stream: g.stream + uint32(stream),
		Kind:   c.kind + uint16(kind),
		Flags:  c.flags + uint16(flags),
	}
}

// Streams writes the stream of each of the first len(dst) entries to dst
// (len(dst) ≤ Len()): what a reader that links entries to their streams
// needs, at a fraction of At's cost.
func (c *PackedBlock) Streams(dst []uint32) {
	for j := 0; j < len(dst); j += packGroup {
		g := &c.groups[j>>packGroupBits]
		w := &g.widths
		pos := uint(g.bit) + uint(w[fSeg]) + uint(w[fOff]) + uint(w[fLen])
		out := dst[j:min(len(dst), j+packGroup)]
		for k := range out {
			out[k] = g.stream + uint32(c.bits(pos, w[fStream]))
			pos += uint(g.width)
		}
	}
}

// bits returns the w bits (w ≤ 32) starting at bit pos.
func (c *PackedBlock) bits(pos uint, w uint8) uint64 {
	i, s := pos>>6, pos&63
	return (c.words[i]>>s | c.words[i+1]<<1<<(63-s)) & lowMask(w)
}

// lowMask returns a mask of the w low bits (w ≤ 32).
func lowMask(w uint8) uint64 { return 1<<(w&63) - 1 }

// Unpack writes the block's entries to dst.
func (c *PackedBlock) Unpack(dst *[CheckpointBlockEntries]PackedEntry) {
	for j := range dst {
		dst[j] = c.At(uint32(j))
	}
}

// PackBlock returns the packed form of src.
func PackBlock(src *[CheckpointBlockEntries]PackedEntry) *PackedBlock { return pack(src[:]) }

// PackEntries packs 1 to [CheckpointBlockEntries] entries, as a
// checkpoint's last block: the groups past them are left empty.
func PackEntries(src []PackedEntry) *PackedBlock {
	if len(src)%packGroup == 0 {
		return pack(src)
	}
	// The last group is filled with copies of the last entry.
	full := make([]PackedEntry, (len(src)+packGroup-1)/packGroup*packGroup)
	n := copy(full, src)
	for j := n; j < len(full); j++ {
		full[j] = src[n-1]
	}
	c := pack(full)
	c.n = uint32(len(src))
	return c
}

// pack packs src, whose length is a multiple of packGroup.
func pack(src []PackedEntry) *PackedBlock {
	c := &PackedBlock{n: uint32(len(src))}
	// Few values live in each loop keep them in registers.
	c.length, c.kind, c.flags = src[0].Pos.Length, src[0].Kind, src[0].Flags
	for i := range src {
		c.length, c.kind, c.flags = min(c.length, src[i].Pos.Length), min(c.kind, src[i].Kind), min(c.flags, src[i].Flags)
	}
	groups := c.groups[:len(src)/packGroup]
	var bit uint
	for gi := range groups {
		g := &groups[gi]
		g.set((*[packGroup]PackedEntry)(src[gi*packGroup:]), c)
		if g.width > 0 { // a group of no bits reads (nothing) at bit 0
			g.bit = uint32(bit)
			bit += packGroup * uint(g.width)
		}
	}
	// at reads two words from the first bit of a field, and a field of no
	// bits may start at the very end: two spare words keep it in range.
	c.words = make([]uint64, (bit+63)/64+2)
	var w bitWriter
	for gi := range groups {
		groups[gi].write(&w, c, (*[packGroup]PackedEntry)(src[gi*packGroup:]))
	}
	if w.n > 0 {
		c.words[w.k] = w.acc
	}
	return c
}

// set sets the bases and widths of group g of chunk c, whose minimum
// length, kind and flags are set.
func (d *packGroupDesc) set(g *[packGroup]PackedEntry, c *PackedBlock) {
	segLo, segHi := g[0].Pos.Segment, g[0].Pos.Segment
	streamLo, streamHi := g[0].Stream, g[0].Stream
	var steps, sum uint64 // of ascending offsets within a segment
	for i := range g {
		segLo, segHi = min(segLo, g[i].Pos.Segment), max(segHi, g[i].Pos.Segment)
		streamLo, streamHi = min(streamLo, g[i].Stream), max(streamHi, g[i].Stream)
		if i > 0 && g[i].Pos.Segment == g[i-1].Pos.Segment && g[i].Pos.Offset > g[i-1].Pos.Offset {
			sum += uint64(g[i].Pos.Offset - g[i-1].Pos.Offset)
			steps++
		}
	}
	var lenHi uint32
	var kindHi, flagsHi uint16
	for i := range g {
		lenHi, kindHi, flagsHi = max(lenHi, g[i].Pos.Length), max(kindHi, g[i].Kind), max(flagsHi, g[i].Flags)
	}
	d.seg, d.stream = segLo, streamLo
	if steps > 0 {
		d.stride = uint32(sum / steps)
	}
	spread := [numFields]uint64{
		fSeg:    uint64(segHi - segLo),
		fOff:    d.offsetBases(g),
		fLen:    uint64(lenHi - c.length),
		fStream: uint64(streamHi - streamLo),
		fKind:   uint64(kindHi - c.kind),
		fFlags:  uint64(flagsHi - c.flags),
	}
	for k := range numFields {
		d.widths[k] = uint8(bits.Len64(spread[k]))
		d.width += d.widths[k]
	}
}

// offsetBases sets the offset bases of group g, whose segment base and
// stride are set, and returns the largest difference of an offset from
// its prediction. It drops the stride if the offsets pack narrower
// without it, as they do when the stride would need more than 32 bits.
func (d *packGroupDesc) offsetBases(g *[packGroup]PackedEntry) uint64 {
	// Residuals in int64 are exact: |i·stride| < 2^38. Index 0 is for
	// entries in the group's first segment, 1 for the others.
	var lo, hi, flatLo, flatHi [2]int64
	lo[0], lo[1], flatLo[0], flatLo[1] = math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64
	hi[0], hi[1], flatHi[0], flatHi[1] = math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64
	stride := int64(d.stride)
	for i := range g {
		k := 0
		if g[i].Pos.Segment != d.seg {
			k = 1
		}
		o := int64(g[i].Pos.Offset)
		r := o - int64(i)*stride
		lo[k], hi[k] = min(lo[k], r), max(hi[k], r)
		flatLo[k], flatHi[k] = min(flatLo[k], o), max(flatHi[k], o)
	}
	var spread, flat uint64
	for k := range 2 {
		if hi[k] >= lo[k] {
			spread = max(spread, uint64(hi[k]-lo[k]))
			flat = max(flat, uint64(flatHi[k]-flatLo[k]))
		}
	}
	if spread < flat {
		d.off, d.offHi = uint32(lo[0]), uint32(lo[1])
		return spread
	}
	d.stride, d.off, d.offHi = 0, uint32(flatLo[0]), uint32(flatLo[1])
	return flat
}

// bitWriter appends values of up to 64 bits to a slice of words.
type bitWriter struct {
	acc uint64 // the bits not yet in the words
	n   uint   // how many: < 64
	k   int    // the next word to write
}

// write appends the w low bits of v (v < 2^w, w ≤ 64) to words.
func (b *bitWriter) write(words []uint64, v uint64, w uint) {
	b.acc |= v << (b.n & 63)
	if b.n += w; b.n >= 64 {
		words[b.k] = b.acc
		b.k++
		b.n -= 64
		// The bits of v that did not fit; none if n is 0 (v < 2^w).
		b.acc = v >> 1 >> (w - b.n - 1)
	}
}

// write appends the entries of group g of chunk c to w, each as one value
// if its bits fit in 64, else field by field.
func (d *packGroupDesc) write(w *bitWriter, c *PackedBlock, g *[packGroup]PackedEntry) {
	switch {
	case d.width == 0:
	case d.width <= 64:
		d.writeNarrow(w, c, g)
	default:
		wd := &d.widths
		for i := range g {
			e := &g[i]
			base := d.off
			if e.Pos.Segment != d.seg {
				base = d.offHi
			}
			w.write(c.words, uint64(e.Pos.Segment-d.seg), uint(wd[fSeg]))
			w.write(c.words, uint64(e.Pos.Offset-base-uint32(i)*d.stride), uint(wd[fOff]))
			w.write(c.words, uint64(e.Pos.Length-c.length), uint(wd[fLen]))
			w.write(c.words, uint64(e.Stream-d.stream), uint(wd[fStream]))
			w.write(c.words, uint64(e.Kind-c.kind), uint(wd[fKind]))
			w.write(c.words, uint64(e.Flags-c.flags), uint(wd[fFlags]))
		}
	}
}

// writeNarrow appends the entries of group g, of at most 64 bits each.
func (d *packGroupDesc) writeNarrow(w *bitWriter, c *PackedBlock, g *[packGroup]PackedEntry) {
	wd := &d.widths
	// The shifts of the fields after the segment's, by 63 as in at.
	shOff := wd[fSeg] & 63
	shLen := (shOff + wd[fOff]) & 63
	shStream := (shLen + wd[fLen]) & 63
	shKind := (shStream + wd[fStream]) & 63
	shFlags := (shKind + wd[fKind]) & 63
	width, stride, length, kind, flags := uint(d.width), d.stride, c.length, c.kind, c.flags
	words, acc, n, k := c.words, w.acc, w.n, w.k
	for i := range g {
		e := &g[i]
		base := d.off
		if e.Pos.Segment != d.seg {
			base = d.offHi
		}
		v := uint64(e.Pos.Segment-d.seg) |
			uint64(e.Pos.Offset-base-uint32(i)*stride)<<shOff |
			uint64(e.Pos.Length-length)<<shLen |
			uint64(e.Stream-d.stream)<<shStream |
			uint64(e.Kind-kind)<<shKind |
			uint64(e.Flags-flags)<<shFlags
		acc |= v << (n & 63)
		if n += width; n >= 64 {
			words[k] = acc
			k++
			n -= 64
			acc = v >> 1 >> (width - n - 1) // as in bitWriter.write
		}
	}
	w.acc, w.n, w.k = acc, n, k
}
