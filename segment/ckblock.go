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
	blockHasCorr    = 1
	blockHasCause   = 2
	blockHasFlags   = 4
	blockHasSegment = 8
	blockSameCorr   = 16 // the correlation of the entry before
	blockSameCause  = 32 // the causation of the entry before
	blockHeadBits   = 63

	// minEntrySize is the smallest encoded entry: head, id and six one-byte
	// varints.
	minEntrySize = 1 + 16 + 6
)

// appendBlock appends the encoding of a checkpoint block to dst:
//
//	head u8 | id (16) | [correlation (16)] | [causation (16)] |
//	timestamp delta varint | stream uvarint | scope uvarint | kind uvarint |
//	[event flags uvarint] | [segment uvarint] | offset delta varint | length uvarint
//
// A correlation equal to the id, or to the entry before's correlation, is
// not written (a batch shares one); nor is a zero causation or one equal
// to the entry before's. Deltas are taken from the entry before in the block (the first from
// zero); the offset delta from the end of the frame before in the same
// segment (from zero after the segment changes).
func appendBlock(dst []byte, entries []IndexEntry) []byte {
	var ts int64
	var seg uint32
	var end int64
	for j := range entries {
		e := &entries[j]
		var h byte
		switch {
		case e.Correlation == e.ID:
		case j > 0 && e.Correlation == entries[j-1].Correlation:
			h |= blockSameCorr
		default:
			h |= blockHasCorr
		}
		switch {
		case e.Causation == [16]byte{}:
		case j > 0 && e.Causation == entries[j-1].Causation:
			h |= blockSameCause
		default:
			h |= blockHasCause
		}
		if e.Flags != 0 {
			h |= blockHasFlags
		}
		if j == 0 || e.Segment != seg {
			h |= blockHasSegment
			seg, end = e.Segment, 0
		}
		dst = append(dst, h)
		dst = append(dst, e.ID[:]...)
		if h&blockHasCorr != 0 {
			dst = append(dst, e.Correlation[:]...)
		}
		if h&blockHasCause != 0 {
			dst = append(dst, e.Causation[:]...)
		}
		dst = binary.AppendVarint(dst, e.Timestamp-ts)
		dst = binary.AppendUvarint(dst, uint64(e.Entity))
		dst = binary.AppendUvarint(dst, uint64(e.Scope))
		dst = binary.AppendUvarint(dst, uint64(e.Kind))
		if h&blockHasFlags != 0 {
			dst = binary.AppendUvarint(dst, uint64(e.Flags))
		}
		if h&blockHasSegment != 0 {
			dst = binary.AppendUvarint(dst, uint64(e.Segment))
		}
		dst = binary.AppendVarint(dst, int64(e.Offset)-end)
		dst = binary.AppendUvarint(dst, uint64(e.Length))
		ts, end = e.Timestamp, int64(e.Offset)+int64(e.Length)
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

func (c *cursor) id() (v [16]byte) {
	if len(c.b) < 16 {
		c.bad, c.b = true, nil
		return v
	}
	v = [16]byte(c.b)
	c.b = c.b[16:]
	return v
}

// decodeBlock decodes the entries of a block written by appendBlock,
// numbering them from first, checks every field's range and hands each to
// fn with its index in the block.
func decodeBlock(b []byte, first uint64, n int, nStreams, nScopes int, fn func(j int, e *IndexEntry)) error {
	c := cursor{b: b}
	var ts, end int64
	var seg uint64
	var e IndexEntry
	for j := range n {
		if len(c.b) < minEntrySize {
			return decodeErr("checkpoint block", "entry %d: need %d bytes, have %d", j, minEntrySize, len(c.b))
		}
		h := c.b[0]
		c.b = c.b[1:]
		if h&^blockHeadBits != 0 || h&(blockHasCorr|blockSameCorr) == blockHasCorr|blockSameCorr ||
			h&(blockHasCause|blockSameCause) == blockHasCause|blockSameCause ||
			(j == 0 && h&(blockSameCorr|blockSameCause) != 0) || (j == 0 && h&blockHasSegment == 0) {
			return decodeErr("checkpoint block", "entry %d: head 0x%02x", j, h)
		}
		e.Seq, e.ID = first+uint64(j), c.id()
		switch {
		case h&blockHasCorr != 0:
			e.Correlation = c.id()
		case h&blockSameCorr == 0:
			e.Correlation = e.ID
		}
		switch {
		case h&blockHasCause != 0:
			e.Causation = c.id()
		case h&blockSameCause == 0:
			e.Causation = [16]byte{}
		}
		ts += c.varint()
		stream, scope, kind := c.uvarint(), c.uvarint(), c.uvarint()
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
		case stream >= uint64(nStreams) || scope >= uint64(nScopes):
			return decodeErr("checkpoint block", "entry %d: stream %d of %d, scope %d of %d", j, stream, nStreams, scope, nScopes)
		case kind > math.MaxUint16 || flags > math.MaxUint16 || seg > math.MaxUint32 ||
			off < 0 || off > math.MaxUint32 || length > math.MaxUint32:
			return decodeErr("checkpoint block", "entry %d: field out of range", j)
		}
		e.Timestamp, e.Kind, e.Flags = ts, uint16(kind), uint16(flags)
		e.Entity, e.Scope = uint32(stream), uint32(scope)
		e.Segment, e.Offset, e.Length = uint32(seg), uint32(off), uint32(length)
		end = off + int64(length)
		fn(j, &e)
	}
	if len(c.b) != 0 {
		return decodeErr("checkpoint block", "%d trailing bytes", len(c.b))
	}
	return nil
}
