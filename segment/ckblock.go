package segment

import (
	"encoding/binary"
	"math"
)

const (
	// CheckpointBlockBits sets the entries of a checkpoint block: every
	// block but the last holds CheckpointBlockEntries, and each is checked
	// and decoded on its own.
	CheckpointBlockBits    = 14
	CheckpointBlockEntries = 1 << CheckpointBlockBits

	// Bits of an entry's head byte.
	blockHasFlags   = 4
	blockHasSegment = 8
	blockHeadBits   = blockHasFlags | blockHasSegment

	// minEntrySize is the smallest encoded entry: head and four one-byte
	// varints.
	minEntrySize = 1 + 4
)

// appendBlock appends the encoding of a checkpoint block to dst:
//
//	head u8 | stream uvarint | kind uvarint | [event flags uvarint] |
//	[segment uvarint] | offset delta varint | length uvarint
//
// The offset delta is taken from the end of the frame before in the same
// segment (from zero where the segment is given: on a block's first entry
// and wherever the segment changes).
func appendBlock(dst []byte, entries []IndexEntry) []byte {
	var seg uint32
	var end int64
	for j := range entries {
		e := &entries[j]
		var h byte
		if e.Flags != 0 {
			h |= blockHasFlags
		}
		if j == 0 || e.Segment != seg {
			h |= blockHasSegment
			seg, end = e.Segment, 0
		}
		dst = append(dst, h)
		dst = binary.AppendUvarint(dst, uint64(e.Entity))
		dst = binary.AppendUvarint(dst, uint64(e.Kind))
		if h&blockHasFlags != 0 {
			dst = binary.AppendUvarint(dst, uint64(e.Flags))
		}
		if h&blockHasSegment != 0 {
			dst = binary.AppendUvarint(dst, uint64(e.Segment))
		}
		dst = binary.AppendVarint(dst, int64(e.Offset)-end)
		dst = binary.AppendUvarint(dst, uint64(e.Length))
		end = int64(e.Offset) + int64(e.Length)
	}
	return dst
}

// cursor reads varints; after a malformed one, bad is set and every
// further read returns zero.
type cursor struct {
	b   []byte
	bad bool
}

func (c *cursor) uvarint() uint64 {
	if len(c.b) > 0 && c.b[0] < 0x80 {
		v := uint64(c.b[0])
		c.b = c.b[1:]
		return v
	}
	v, n := binary.Uvarint(c.b)
	if n <= 0 {
		c.bad, c.b = true, nil
		return 0
	}
	c.b = c.b[n:]
	return v
}

func (c *cursor) varint() int64 {
	u := c.uvarint()
	return int64(u>>1) ^ -int64(u&1)
}

// decodeBlock decodes the entries of a block written by appendBlock,
// numbering them from first, checks every field's range and hands each to
// fn with its index in the block; an entry's scope is its stream's.
func decodeBlock(b []byte, first uint64, n int, streams []CheckpointStream, fn func(j int, e *IndexEntry)) error {
	c := cursor{b: b}
	var end int64
	var seg uint64
	var e IndexEntry
	for j := range n {
		if len(c.b) < minEntrySize {
			return decodeErr("checkpoint block", "entry %d: need %d bytes, have %d", j, minEntrySize, len(c.b))
		}
		h := c.b[0]
		c.b = c.b[1:]
		if h&^blockHeadBits != 0 || (j == 0 && h&blockHasSegment == 0) {
			return decodeErr("checkpoint block", "entry %d: head 0x%02x", j, h)
		}
		e.Seq = first + uint64(j)
		stream, kind := c.uvarint(), c.uvarint()
		var flags uint64
		if h&blockHasFlags != 0 {
			flags = c.uvarint()
		}
		if h&blockHasSegment != 0 {
			seg, end = c.uvarint(), 0
		}
		off := end + c.varint()
		length := c.uvarint()
		switch {
		case c.bad:
			return decodeErr("checkpoint block", "entry %d: malformed varint", j)
		case stream >= uint64(len(streams)):
			return decodeErr("checkpoint block", "entry %d: stream %d of %d", j, stream, len(streams))
		case kind > math.MaxUint16 || flags > math.MaxUint16 || seg > math.MaxUint32 ||
			off < 0 || off > math.MaxUint32 || length > math.MaxUint32:
			return decodeErr("checkpoint block", "entry %d: field out of range", j)
		}
		e.Kind, e.Flags = uint16(kind), uint16(flags)
		e.Entity, e.Scope = uint32(stream), streams[stream].Scope
		e.Segment, e.Offset, e.Length = uint32(seg), uint32(off), uint32(length)
		end = off + int64(length)
		fn(j, &e)
	}
	if len(c.b) != 0 {
		return decodeErr("checkpoint block", "%d trailing bytes", len(c.b))
	}
	return nil
}
