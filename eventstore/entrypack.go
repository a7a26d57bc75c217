package eventstore

import (
	"math"
	"math/bits"

	"github.com/batpak-go/batpak/segment"
)

// A full chunk of the entry log never changes again, so it is kept packed:
// frame-of-reference bit fields of widths chosen for that chunk, a few
// bytes an entry where a plain entry takes 20. Any entry packs exactly;
// only the widths grow with the spread of the values. Reading one entry is
// O(1): its bits start at j times the chunk's entry width.
//
// Each field of entry j is stored as the difference from a base:
//
//	segment  from the minimum segment of j's group (packGroup entries)
//	offset   from base + (j mod packGroup)·stride, the group's stride: frames
//	         of one segment follow each other, so offsets grow by about
//	         the mean frame length (a group whose offsets do not ascend
//	         packs narrower with stride 0). A group spanning segments has
//	         two bases, one for the entries of its first segment and one
//	         for the others, whose offsets start again near zero.
//	length   from the chunk's minimum length
//	stream   from the minimum stream of j's group
//	kind     from the chunk's minimum kind
//	flags    from the chunk's minimum flags

// packGroupBits sets the number of entries that share one set of group
// bases: 64, so a group's offsets span about 64 frames.
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

// groupBase holds the bases of one group of packGroup entries.
type groupBase struct {
	seg    uint32
	off    uint32 // for entries in segment seg
	offHi  uint32 // for entries in later segments
	stream uint32
	stride uint32
}

// packedChunk is a full chunk of entryChunk entries in packed form.
type packedChunk struct {
	words  []uint64 // width bits per entry, and one spare word
	groups [entryChunk / packGroup]groupBase
	length uint32 // minimum length
	kind   uint16 // minimum kind
	flags  uint16 // minimum flags
	width  uint8  // bits per entry: the sum of widths
	widths [numFields]uint8
	shifts [numFields]uint8 // bit of each field within an entry
}

// at returns entry j of the chunk (j < entryChunk).
func (c *packedChunk) at(j uint32) entry {
	j &= entryChunk - 1
	g := &c.groups[j>>packGroupBits]
	pos := uint(j) * uint(c.width)
	w := &c.widths
	// Field widths are at most 32: masking the shifts by 63 changes
	// nothing and spares the compiler's checks for shifts of 64 or more.
	var seg, off, length, stream, kind, flags uint64
	if c.width <= 64 {
		i, s := pos>>6, pos&63
		v := c.words[i]>>s | c.words[i+1]<<1<<(63-s)
		seg, v = v&lowMask(w[fSeg]), v>>(w[fSeg]&63)
		off, v = v&lowMask(w[fOff]), v>>(w[fOff]&63)
		length, v = v&lowMask(w[fLen]), v>>(w[fLen]&63)
		stream, v = v&lowMask(w[fStream]), v>>(w[fStream]&63)
		kind, v = v&lowMask(w[fKind]), v>>(w[fKind]&63)
		flags = v & lowMask(w[fFlags])
	} else {
		sh := &c.shifts
		seg = c.bits(pos, w[fSeg])
		off = c.bits(pos+uint(sh[fOff]), w[fOff])
		length = c.bits(pos+uint(sh[fLen]), w[fLen])
		stream = c.bits(pos+uint(sh[fStream]), w[fStream])
		kind = c.bits(pos+uint(sh[fKind]), w[fKind])
		flags = c.bits(pos+uint(sh[fFlags]), w[fFlags])
	}
	base := g.off
	if seg != 0 {
		base = g.offHi
	}
	return entry{
		pos: segment.Position{
			Segment: g.seg + uint32(seg),
			Offset:  base + (j&(packGroup-1))*g.stride + uint32(off),
			Length:  c.length + uint32(length),
		},
		stream: g.stream + uint32(stream),
		kind:   c.kind + uint16(kind),
		flags:  c.flags + uint16(flags),
	}
}

// bits returns the w bits (w ≤ 32) starting at bit pos.
func (c *packedChunk) bits(pos uint, w uint8) uint64 {
	i, s := pos>>6, pos&63
	return (c.words[i]>>s | c.words[i+1]<<1<<(63-s)) & lowMask(w)
}

// lowMask returns a mask of the w low bits (w ≤ 32).
func lowMask(w uint8) uint64 { return 1<<(w&63) - 1 }

// unpack writes the chunk's entries to dst.
func (c *packedChunk) unpack(dst *[entryChunk]entry) {
	for j := range dst {
		dst[j] = c.at(uint32(j))
	}
}

// packChunk returns the packed form of the full chunk src.
func packChunk(src *[entryChunk]entry) *packedChunk {
	c := new(packedChunk)
	var spread [numFields]uint64 // the largest difference from a base
	for gi := range c.groups {
		g := (*[packGroup]entry)(src[gi*packGroup:])
		b := &c.groups[gi]
		seg, stream, off := b.set(g)
		spread[fSeg] = max(spread[fSeg], seg)
		spread[fStream] = max(spread[fStream], stream)
		spread[fOff] = max(spread[fOff], off)
	}
	// Few values live in each loop keep them in registers.
	lenLo, lenHi := src[0].pos.Length, src[0].pos.Length
	kindLo, kindHi := src[0].kind, src[0].kind
	flagsLo, flagsHi := src[0].flags, src[0].flags
	for i := range src {
		lenLo, lenHi = min(lenLo, src[i].pos.Length), max(lenHi, src[i].pos.Length)
		kindLo, kindHi = min(kindLo, src[i].kind), max(kindHi, src[i].kind)
		flagsLo, flagsHi = min(flagsLo, src[i].flags), max(flagsHi, src[i].flags)
	}
	c.length, c.kind, c.flags = lenLo, kindLo, flagsLo
	spread[fLen] = uint64(lenHi - lenLo)
	spread[fKind] = uint64(kindHi - kindLo)
	spread[fFlags] = uint64(flagsHi - flagsLo)
	for k := range numFields {
		c.shifts[k] = c.width
		c.widths[k] = uint8(bits.Len64(spread[k]))
		c.width += c.widths[k]
	}
	// The spare word lets bits and put touch the word after any entry's.
	c.words = make([]uint64, max((entryChunk*uint(c.width)+63)/64, 1)+1)
	switch {
	case c.width == 0:
	case c.width <= 64:
		c.packNarrow(src)
	default:
		c.packWide(src)
	}
	return c
}

// bitWriter appends values of up to 64 bits to words.
type bitWriter struct {
	words []uint64
	acc   uint64 // the bits not yet in words
	n     uint   // how many: < 64
	k     int    // the next word to write
}

// write appends the w low bits of v (v < 2^w, w ≤ 64).
func (b *bitWriter) write(v uint64, w uint) {
	b.acc |= v << b.n
	b.n += w
	if b.n >= 64 {
		b.words[b.k] = b.acc
		b.k++
		b.n -= 64
		// v's bits that did not fit; none if n is 0 (v < 2^w).
		b.acc = v >> (w - b.n)
	}
}

// flush writes the bits still held.
func (b *bitWriter) flush() {
	if b.n > 0 {
		b.words[b.k] = b.acc
	}
}

// packNarrow writes the entries of a chunk whose entries take at most 64
// bits, each as one value.
func (c *packedChunk) packNarrow(src *[entryChunk]entry) {
	sh := c.shifts
	width, length, kind, flags := uint(c.width), c.length, c.kind, c.flags
	words := c.words
	var acc uint64 // bits not yet in words
	var n uint     // how many: < 64
	k := 0         // the next word
	for gi := range c.groups {
		b := c.groups[gi]
		g := (*[packGroup]entry)(src[gi*packGroup:])
		for i := range g {
			e := &g[i]
			base := b.off
			if e.pos.Segment != b.seg {
				base = b.offHi
			}
			v := uint64(e.pos.Segment-b.seg) |
				uint64(e.pos.Offset-base-uint32(i)*b.stride)<<(sh[fOff]&63) |
				uint64(e.pos.Length-length)<<(sh[fLen]&63) |
				uint64(e.stream-b.stream)<<(sh[fStream]&63) |
				uint64(e.kind-kind)<<(sh[fKind]&63) |
				uint64(e.flags-flags)<<(sh[fFlags]&63)
			acc |= v << n
			if n += width; n >= 64 {
				words[k] = acc
				k++
				n -= 64
				// The bits of v that did not fit; none if n is 0.
				acc = v >> 1 >> (width - n - 1)
			}
		}
	}
	if n > 0 {
		words[k] = acc
	}
}

// packWide writes the entries of a chunk whose entries take more than 64
// bits, field by field.
func (c *packedChunk) packWide(src *[entryChunk]entry) {
	w := c.widths
	bw := bitWriter{words: c.words}
	for gi := range c.groups {
		b := c.groups[gi]
		g := (*[packGroup]entry)(src[gi*packGroup:])
		for i := range g {
			e := &g[i]
			base := b.off
			if e.pos.Segment != b.seg {
				base = b.offHi
			}
			bw.write(uint64(e.pos.Segment-b.seg), uint(w[fSeg]))
			bw.write(uint64(e.pos.Offset-base-uint32(i)*b.stride), uint(w[fOff]))
			bw.write(uint64(e.pos.Length-c.length), uint(w[fLen]))
			bw.write(uint64(e.stream-b.stream), uint(w[fStream]))
			bw.write(uint64(e.kind-c.kind), uint(w[fKind]))
			bw.write(uint64(e.flags-c.flags), uint(w[fFlags]))
		}
	}
	bw.flush()
}

// set sets the bases of group g and returns the largest differences
// from them of its segments, streams and offsets.
func (b *groupBase) set(g *[packGroup]entry) (seg, stream, off uint64) {
	segLo, segHi := g[0].pos.Segment, g[0].pos.Segment
	streamLo, streamHi := g[0].stream, g[0].stream
	var steps, sum uint64 // of ascending offsets within a segment
	for i := range g {
		segLo, segHi = min(segLo, g[i].pos.Segment), max(segHi, g[i].pos.Segment)
		streamLo, streamHi = min(streamLo, g[i].stream), max(streamHi, g[i].stream)
		if i > 0 && g[i].pos.Segment == g[i-1].pos.Segment && g[i].pos.Offset > g[i-1].pos.Offset {
			sum += uint64(g[i].pos.Offset - g[i-1].pos.Offset)
			steps++
		}
	}
	b.seg, b.stream = segLo, streamLo
	if steps > 0 {
		b.stride = uint32(sum / steps)
	}
	return uint64(segHi - segLo), uint64(streamHi - streamLo), b.offsetBases(g)
}

// offsetBases sets the offset bases of group g, whose segment base and
// stride are set, and returns the largest difference of an offset from
// its prediction. It drops the stride if the offsets pack narrower
// without it, as they do when the stride would need more than 32 bits.
func (b *groupBase) offsetBases(g *[packGroup]entry) uint64 {
	// Residuals in int64 are exact: |i·stride| < 2^38. Index 0 is for
	// entries in the group's first segment, 1 for the others.
	var lo, hi, flatLo, flatHi [2]int64
	lo[0], lo[1], flatLo[0], flatLo[1] = math.MaxInt64, math.MaxInt64, math.MaxInt64, math.MaxInt64
	hi[0], hi[1], flatHi[0], flatHi[1] = math.MinInt64, math.MinInt64, math.MinInt64, math.MinInt64
	stride := int64(b.stride)
	for i := range g {
		k := 0
		if g[i].pos.Segment != b.seg {
			k = 1
		}
		o := int64(g[i].pos.Offset)
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
		b.off, b.offHi = uint32(lo[0]), uint32(lo[1])
		return spread
	}
	b.stride, b.off, b.offHi = 0, uint32(flatLo[0]), uint32(flatLo[1])
	return flat
}
