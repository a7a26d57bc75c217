package segment

import "encoding/binary"

// packedHead is the encoded size of a block's count, minima and word
// count, and packedGroupSize that of a group's description.
const (
	packedHead      = 4 + 4 + 2 + 2 + 4
	packedGroupSize = 6*4 + numFields
)

// AppendBinary appends the encoding of the block to dst, as a checkpoint
// holds it:
//
//	entries u32 | min length u32 | min kind u16 | min flags u16 | words u32 |
//	⌈entries/64⌉ × (first bit u32 | segment u32 | offset u32 |
//	                offset after the first segment u32 | stream u32 |
//	                stride u32 | 6 field widths u8) |
//	zeros up to a multiple of 8 bytes | words × u64, little-endian
//
// Integers are big-endian but the words, whose bits run from the least
// significant: an entry's fields follow each other from its first bit in
// the order segment, offset, length, stream, kind, flags.
func (c *PackedBlock) AppendBinary(dst []byte) ([]byte, error) {
	dst = binary.BigEndian.AppendUint32(dst, c.n)
	dst = binary.BigEndian.AppendUint32(dst, c.length)
	dst = binary.BigEndian.AppendUint16(dst, c.kind)
	dst = binary.BigEndian.AppendUint16(dst, c.flags)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(c.words)))
	for i := range groupsOf(c.n) {
		g := &c.groups[i]
		for _, v := range [...]uint32{g.bit, g.seg, g.off, g.offHi, g.stream, g.stride} {
			dst = binary.BigEndian.AppendUint32(dst, v)
		}
		dst = append(dst, g.widths[:]...)
	}
	dst = append(dst, make([]byte, pad8(packedHead+groupsOf(c.n)*packedGroupSize))...)
	for _, w := range c.words {
		dst = binary.LittleEndian.AppendUint64(dst, w)
	}
	return dst, nil
}

// packedFixed returns the encoded size of a block of n entries before its
// words: a multiple of 8, so that the words of a block that starts at a
// multiple of 8 do too.
func packedFixed(n uint32) int {
	size := packedHead + groupsOf(n)*packedGroupSize
	return size + pad8(size)
}

// groupsOf returns the number of groups that n entries take.
func groupsOf(n uint32) int { return int(n+packGroup-1) / packGroup }

// decodePackedBlock decodes a block that AppendBinary encoded. It accepts
// only what AppendBinary writes: 1 to CheckpointBlockEntries entries,
// groups laid out in order, field widths of at most 32 bits, the exact
// number of words and every bit past the entries' clear. So At never
// reads outside the words, and a block has exactly one encoding. The
// block uses b's own words where it can (see inPlace), so b must then
// stay as it is while the block is used; else they are copied to words
// if it has room for exactly them, or to a new slice.
func decodePackedBlock(b []byte, words []uint64) (*PackedBlock, error) {
	if len(b) < packedHead {
		return nil, decodeErr("packed block", "%d bytes is too short", len(b))
	}
	c := &PackedBlock{
		n:      binary.BigEndian.Uint32(b),
		length: binary.BigEndian.Uint32(b[4:]),
		kind:   binary.BigEndian.Uint16(b[8:]),
		flags:  binary.BigEndian.Uint16(b[10:]),
	}
	nWords := uint64(binary.BigEndian.Uint32(b[12:]))
	if c.n == 0 || c.n > CheckpointBlockEntries {
		return nil, decodeErr("packed block", "%d entries", c.n)
	}
	groups := groupsOf(c.n)
	fixed := packedFixed(c.n)
	if len(b) < fixed || uint64(len(b)-fixed) != 8*nWords {
		return nil, decodeErr("packed block", "%d entries and %d words in %d bytes", c.n, nWords, len(b))
	}
	var bit uint64
	p := b[packedHead:fixed]
	if !allZero(p[groups*packedGroupSize:]) {
		return nil, decodeErr("packed block", "padding not zero")
	}
	for i := range groups {
		g := &c.groups[i]
		g.bit, g.seg, g.off = binary.BigEndian.Uint32(p), binary.BigEndian.Uint32(p[4:]), binary.BigEndian.Uint32(p[8:])
		g.offHi, g.stream, g.stride = binary.BigEndian.Uint32(p[12:]), binary.BigEndian.Uint32(p[16:]), binary.BigEndian.Uint32(p[20:])
		copy(g.widths[:], p[24:packedGroupSize])
		p = p[packedGroupSize:]
		var width int
		for _, w := range g.widths {
			if w > 32 {
				return nil, decodeErr("packed block", "group %d: a field of %d bits", i, w)
			}
			width += int(w)
		}
		g.width = uint8(width)
		switch {
		case width == 0 && g.bit != 0:
			return nil, decodeErr("packed block", "group %d: no bits at bit %d", i, g.bit)
		case width > 0 && uint64(g.bit) != bit:
			return nil, decodeErr("packed block", "group %d at bit %d, want %d", i, g.bit, bit)
		}
		bit += packGroup * uint64(width)
	}
	if want := (bit+63)/64 + 2; nWords != want {
		return nil, decodeErr("packed block", "%d words for %d bits", nWords, bit)
	}
	if c.words = inPlace[uint64](b[fixed:]); c.words == nil {
		if uint64(len(words)) == nWords {
			c.words = words[:nWords:nWords]
		} else {
			c.words = make([]uint64, nWords)
		}
		for i := range c.words {
			c.words[i] = binary.LittleEndian.Uint64(b[fixed+8*i:])
		}
	}
	bad := false
	if r := bit % 64; r != 0 {
		bad = c.words[bit/64]>>r != 0
	}
	for _, w := range c.words[(bit+63)/64:] {
		bad = bad || w != 0
	}
	if bad {
		return nil, decodeErr("packed block", "bits set past the entries")
	}
	return c, nil
}
