package segment

import (
	"encoding/binary"
	"math"
	"slices"
	"unicode/utf8"
)

// Bits of a footer index entry's head (a uvarint). The seven most common
// variations of an entry take the low bits, so the head is one byte for
// every entry of a segment written by appends.
const (
	ixKind      = 1 << iota // kind present, else the kind of the entry before
	ixVersion               // version present, else one more than the stream's entry before
	ixOffset                // offset delta present, else the end of the entry before
	ixCorr                  // correlation present, else equal to the id
	ixSameCorr              // correlation of the entry before
	ixCause                 // causation present, else zero
	ixSameCause             // causation of the entry before
	ixFlags                 // event flags present, else zero
	ixSamePos               // offset and length of the entry before (stubs of one hole)
	ixSeq                   // sequence delta present, else one more than the entry before
	ixSegment               // segment present, else the segment of the entry before
	ixHeadBits  = 1<<11 - 1
)

// Smallest encodings of a row of each index table, to bound the counts by
// the bytes that remain before anything is allocated.
const (
	minIndexString  = 1                  // length
	minIndexEntry   = 1 + 1 + 10 + 1 + 1 // head, id time delta, rest of the id, timestamp delta, stream
	minIndexTail    = 3 + 32             // entity, scope, version, hash
	minIndexKey     = 3                  // length, first, count
	minIndexDeleted = 2                  // entity, scope
	// indexIDTimeBytes leading bytes of an id (a UUIDv7's millisecond
	// timestamp) are written as a delta from the entry before's.
	indexIDTimeBytes = 6
	maxIndexIDTime   = 1<<(8*indexIDTimeBytes) - 1
	// maxOffsetDelta bounds the distance between two frames' offsets and
	// ends, both below 2³³.
	maxOffsetDelta = 1 << 34
)

// AppendIndex appends the encoding of ix to dst (docs/format.md, "Index
// (footer)"); ix must satisfy [Index.Validate]. The encoding is canonical
// and, when every string index of ix is in range, [DecodeIndex] of it
// returns ix, which encodes to the same bytes again.
//
// Entries are encoded against the entry before: a sequence one more, the
// same segment and kind, an offset at the end of the frame before, a
// version one more than the stream's entry before and a correlation equal
// to the id are not written, and timestamps and id times are deltas. Any
// other value is written, so any index round-trips; a footer of
// consecutive events in frame order costs under 20 bytes per event.
func AppendIndex(dst []byte, ix *Index) []byte {
	var enc entryEncoder
	enc.buf = make([]byte, 0, len(ix.Entries)*24)
	for i := range ix.Entries {
		enc.add(&ix.Entries[i])
	}
	return appendIndexTables(dst, ix.Strings, &enc, ix)
}

// appendIndexTables appends an index of strings, the entries enc encoded,
// and the tails, keys and deleted streams of rest.
func appendIndexTables(dst []byte, strings []string, enc *entryEncoder, rest *Index) []byte {
	size := 5*binary.MaxVarintLen32 + len(enc.buf) + len(rest.Tails)*(minIndexTail+12) + len(rest.Deleted)*4
	for _, s := range strings {
		size += 3 + len(s)
	}
	for _, k := range rest.Keys {
		size += 3 + len(k.Key) + 12
	}
	dst = slices.Grow(dst, size)
	for _, n := range [...]int{len(strings), enc.n, len(rest.Tails), len(rest.Keys), len(rest.Deleted)} {
		dst = binary.AppendUvarint(dst, uint64(n))
	}
	for _, s := range strings {
		dst = binary.AppendUvarint(dst, uint64(len(s)))
		dst = append(dst, s...)
	}
	dst = append(dst, enc.buf...)
	for _, t := range rest.Tails {
		dst = binary.AppendUvarint(dst, uint64(t.Entity))
		dst = binary.AppendUvarint(dst, uint64(t.Scope))
		dst = binary.AppendUvarint(dst, t.Version)
		dst = append(dst, t.LastHash[:]...)
	}
	for _, k := range rest.Keys {
		dst = binary.AppendUvarint(dst, uint64(len(k.Key)))
		dst = append(dst, k.Key...)
		dst = binary.AppendUvarint(dst, k.First)
		dst = binary.AppendUvarint(dst, uint64(k.Count))
	}
	for _, d := range rest.Deleted {
		dst = binary.AppendUvarint(dst, uint64(d.Entity))
		dst = binary.AppendUvarint(dst, uint64(d.Scope))
	}
	return dst
}

// entryContext is what an entry is encoded against: the entry before and
// the streams seen so far, numbered in order of first appearance.
type entryContext struct {
	prev     IndexEntry // zero before the first entry
	end      int64      // offset + length of the entry before; HeaderSize (a first frame's offset) before the first
	versions []uint64   // by stream number: the version of the stream's entry before
}

func newEntryContext() entryContext { return entryContext{end: HeaderSize} }

func idTime(id *[16]byte) int64 {
	var b [8]byte
	copy(b[8-indexIDTimeBytes:], id[:indexIDTimeBytes])
	return int64(binary.BigEndian.Uint64(b[:]))
}

// entryEncoder encodes index entries one after the other into buf.
type entryEncoder struct {
	cx      entryContext
	streams map[StreamRef]int
	buf     []byte
	n       int // entries encoded
}

// add encodes e against the entries added before it.
func (x *entryEncoder) add(e *IndexEntry) {
	if x.streams == nil {
		x.cx, x.streams = newEntryContext(), make(map[StreamRef]int)
	}
	cx, dst, first := &x.cx, x.buf, x.n == 0
	ref := StreamRef{Entity: e.Entity, Scope: e.Scope}
	stream, seen := x.streams[ref]
	if !seen {
		stream = len(cx.versions)
		x.streams[ref] = stream
		cx.versions = append(cx.versions, 0)
	}
	var h uint64
	if e.Kind != cx.prev.Kind {
		h |= ixKind
	}
	if e.Version != cx.versions[stream]+1 {
		h |= ixVersion
	}
	switch {
	case e.Correlation == e.ID:
	case !first && e.Correlation == cx.prev.Correlation:
		h |= ixSameCorr
	default:
		h |= ixCorr
	}
	switch {
	case e.Causation == [16]byte{}:
	case !first && e.Causation == cx.prev.Causation:
		h |= ixSameCause
	default:
		h |= ixCause
	}
	if e.Flags != 0 {
		h |= ixFlags
	}
	switch {
	case !first && e.Offset == cx.prev.Offset && e.Length == cx.prev.Length:
		h |= ixSamePos
	case int64(e.Offset) != cx.end:
		h |= ixOffset
	}
	if e.Seq != cx.prev.Seq+1 {
		h |= ixSeq
	}
	if e.Segment != cx.prev.Segment {
		h |= ixSegment
	}

	dst = binary.AppendUvarint(dst, h)
	if h&ixSeq != 0 {
		dst = binary.AppendVarint(dst, int64(e.Seq-(cx.prev.Seq+1)))
	}
	dst = binary.AppendVarint(dst, idTime(&e.ID)-idTime(&cx.prev.ID))
	dst = append(dst, e.ID[indexIDTimeBytes:]...)
	if h&ixCorr != 0 {
		dst = append(dst, e.Correlation[:]...)
	}
	if h&ixCause != 0 {
		dst = append(dst, e.Causation[:]...)
	}
	dst = binary.AppendVarint(dst, e.Timestamp-cx.prev.Timestamp)
	dst = binary.AppendUvarint(dst, uint64(stream))
	if !seen {
		dst = binary.AppendUvarint(dst, uint64(e.Entity))
		dst = binary.AppendUvarint(dst, uint64(e.Scope))
	}
	if h&ixVersion != 0 {
		dst = binary.AppendUvarint(dst, e.Version)
	}
	if h&ixKind != 0 {
		dst = binary.AppendUvarint(dst, uint64(e.Kind))
	}
	if h&ixFlags != 0 {
		dst = binary.AppendUvarint(dst, uint64(e.Flags))
	}
	if h&ixSegment != 0 {
		dst = binary.AppendUvarint(dst, uint64(e.Segment))
	}
	if h&ixSamePos == 0 {
		if h&ixOffset != 0 {
			dst = binary.AppendVarint(dst, int64(e.Offset)-cx.end)
		}
		dst = binary.AppendUvarint(dst, uint64(e.Length))
	}
	cx.versions[stream] = e.Version
	cx.prev, cx.end = *e, int64(e.Offset)+int64(e.Length)
	x.buf = dst
	x.n++
}

// DecodeIndex decodes an index written by [AppendIndex]. Every count is
// checked against the bytes that remain before anything is allocated, every
// string index against the string table and every field against its width;
// malformed input returns a [*DecodeError] about the "index". The index
// does not alias b.
func DecodeIndex(b []byte) (*Index, error) {
	c := cursor{b: b}
	var n [5]uint64
	for i := range n {
		n[i] = c.uvarint()
		if n[i] > uint64(len(b)) { // also keeps the sum below from overflowing
			c.bad = true
		}
	}
	if c.bad {
		return nil, decodeErr("index", "malformed counts")
	}
	nStrings, nEntries, nTails, nKeys, nDeleted := n[0], n[1], n[2], n[3], n[4]
	if nStrings*minIndexString+nEntries*minIndexEntry+nTails*minIndexTail+nKeys*minIndexKey+nDeleted*minIndexDeleted > uint64(len(c.b)) {
		return nil, decodeErr("index", "counts %d/%d/%d/%d/%d exceed %d bytes", nStrings, nEntries, nTails, nKeys, nDeleted, len(c.b))
	}
	ix := &Index{
		Strings: make([]string, nStrings),
		Entries: make([]IndexEntry, nEntries),
		Tails:   make([]StreamTail, nTails),
		Keys:    make([]IdempotencyRecord, nKeys),
	}
	for i := range ix.Strings {
		s, ok := c.indexString()
		if !ok {
			return nil, decodeErr("index", "string %d: malformed length or past the end", i)
		}
		if !utf8.ValidString(s) {
			return nil, decodeErr("index", "string %d is not UTF-8", i)
		}
		ix.Strings[i] = s
	}
	if err := decodeIndexEntries(&c, ix.Entries, nStrings); err != nil {
		return nil, err
	}
	str := func(v uint64) uint32 {
		if v >= nStrings {
			c.bad = true
		}
		return uint32(v)
	}
	for i := range ix.Tails {
		t := &ix.Tails[i]
		t.Entity, t.Scope, t.Version = str(c.uvarint()), str(c.uvarint()), c.uvarint()
		t.LastHash = [32]byte(c.take(32))
		if c.bad {
			return nil, decodeErr("index", "tail %d: malformed, past the end or a string index out of %d", i, nStrings)
		}
	}
	for i := range ix.Keys {
		k := &ix.Keys[i]
		key, ok := c.indexString()
		k.Key, k.First = key, c.uvarint()
		count := c.uvarint()
		if !ok || c.bad || count > math.MaxUint32 {
			return nil, decodeErr("index", "key %d: malformed, past the end or out of range", i)
		}
		k.Count = uint32(count)
	}
	if nDeleted > 0 {
		ix.Deleted = make([]StreamRef, nDeleted)
		for i := range ix.Deleted {
			ix.Deleted[i] = StreamRef{Entity: str(c.uvarint()), Scope: str(c.uvarint())}
			if c.bad {
				return nil, decodeErr("index", "deleted stream %d: malformed or a string index out of %d", i, nStrings)
			}
		}
	}
	if len(c.b) != 0 {
		return nil, decodeErr("index", "%d trailing bytes", len(c.b))
	}
	return ix, nil
}

// decodeIndexEntries decodes len(entries) entries written by
// appendIndexEntries into entries.
func decodeIndexEntries(c *cursor, entries []IndexEntry, nStrings uint64) error {
	cx := newEntryContext()
	var streams []StreamRef
	known := make(map[StreamRef]struct{})
	for j := range entries {
		if len(c.b) < minIndexEntry {
			return entryErr(j, "need %d bytes, have %d", minIndexEntry, len(c.b))
		}
		h := c.uvarint()
		if h&^ixHeadBits != 0 || h&(ixCorr|ixSameCorr) == ixCorr|ixSameCorr ||
			h&(ixCause|ixSameCause) == ixCause|ixSameCause || h&(ixSamePos|ixOffset) == ixSamePos|ixOffset ||
			(j == 0 && h&(ixSameCorr|ixSameCause|ixSamePos) != 0) {
			return entryErr(j, "head 0x%x", h)
		}
		e := &entries[j]
		e.Seq = cx.prev.Seq + 1
		if h&ixSeq != 0 {
			e.Seq += uint64(c.varint())
		}
		t := c.varint()
		if t < -maxIndexIDTime || t > maxIndexIDTime { // keeps the sum from overflowing
			return entryErr(j, "id time delta %d", t)
		}
		t += idTime(&cx.prev.ID)
		if t < 0 || t > maxIndexIDTime {
			return entryErr(j, "id time %d", t)
		}
		var tb [8]byte
		binary.BigEndian.PutUint64(tb[:], uint64(t))
		copy(e.ID[:], tb[8-indexIDTimeBytes:])
		copy(e.ID[indexIDTimeBytes:], c.take(16-indexIDTimeBytes))
		switch {
		case h&ixCorr != 0:
			e.Correlation = c.id()
		case h&ixSameCorr != 0:
			e.Correlation = cx.prev.Correlation
		default:
			e.Correlation = e.ID
		}
		switch {
		case h&ixCause != 0:
			e.Causation = c.id()
		case h&ixSameCause != 0:
			e.Causation = cx.prev.Causation
		}
		e.Timestamp = cx.prev.Timestamp + c.varint()
		stream := c.uvarint()
		switch {
		case c.bad:
			return entryErr(j, "malformed or past the end")
		case stream > uint64(len(streams)):
			return entryErr(j, "stream %d of %d", stream, len(streams))
		case stream == uint64(len(streams)):
			entity, scope := c.uvarint(), c.uvarint()
			if entity >= nStrings || scope >= nStrings {
				return entryErr(j, "entity %d, scope %d: string index out of %d", entity, scope, nStrings)
			}
			ref := StreamRef{Entity: uint32(entity), Scope: uint32(scope)}
			if _, dup := known[ref]; dup {
				return entryErr(j, "stream %d/%d introduced twice", scope, entity)
			}
			known[ref] = struct{}{}
			streams = append(streams, ref)
			cx.versions = append(cx.versions, 0)
		}
		e.Entity, e.Scope = streams[stream].Entity, streams[stream].Scope
		e.Version = cx.versions[stream] + 1
		if h&ixVersion != 0 {
			e.Version = c.uvarint()
		}
		kind, flags, seg := uint64(cx.prev.Kind), uint64(0), uint64(cx.prev.Segment)
		if h&ixKind != 0 {
			kind = c.uvarint()
		}
		if h&ixFlags != 0 {
			flags = c.uvarint()
		}
		if h&ixSegment != 0 {
			seg = c.uvarint()
		}
		off, length := int64(cx.prev.Offset), uint64(cx.prev.Length)
		if h&ixSamePos == 0 {
			off = cx.end
			if h&ixOffset != 0 {
				d := c.varint()
				if d < -maxOffsetDelta || d > maxOffsetDelta { // keeps the sum from overflowing
					return entryErr(j, "offset delta %d", d)
				}
				off += d
			}
			length = c.uvarint()
		}
		switch {
		case c.bad:
			return entryErr(j, "malformed or past the end")
		case kind > math.MaxUint16 || flags > math.MaxUint16 || seg > math.MaxUint32 ||
			off < 0 || off > math.MaxUint32 || length > math.MaxUint32:
			return entryErr(j, "field out of range")
		}
		e.Kind, e.Flags, e.Segment = uint16(kind), uint16(flags), uint32(seg)
		e.Offset, e.Length = uint32(off), uint32(length)
		cx.versions[stream] = e.Version
		cx.prev, cx.end = *e, off+int64(length)
	}
	return nil
}

func entryErr(j int, format string, args ...any) error {
	return decodeErr("index", "entry %d: "+format, append([]any{j}, args...)...)
}

// take returns the next n bytes; when fewer remain it sets bad and returns
// n zero bytes.
func (c *cursor) take(n int) []byte {
	if c.bad || len(c.b) < n {
		c.bad, c.b = true, nil
		return make([]byte, n)
	}
	v := c.b[:n:n]
	c.b = c.b[n:]
	return v
}

// indexString reads a uvarint length and that many bytes as a string (a
// copy), refusing lengths over [MaxIndexString].
func (c *cursor) indexString() (string, bool) {
	n := c.uvarint()
	if c.bad || n > MaxIndexString || n > uint64(len(c.b)) {
		c.bad, c.b = true, nil
		return "", false
	}
	return string(c.take(int(n))), true
}

func (c *cursor) id() [16]byte { return [16]byte(c.take(16)) }
