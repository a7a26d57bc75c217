package segment

import (
	"encoding/binary"
	"fmt"
	"slices"
	"unicode/utf8"
)

// IndexEntry locates one event and carries what the in-memory index needs,
// so a cold start can rebuild the index from footers and checkpoints without
// reading frames.
type IndexEntry struct {
	Seq         uint64
	Version     uint64
	Timestamp   int64
	ID          [16]byte
	Correlation [16]byte // equal to ID for a root event
	Causation   [16]byte // zero for a root event
	Kind        uint16
	Flags       uint16
	Entity      uint32 // index into Index.Strings
	Scope       uint32 // index into Index.Strings
	Segment     uint32
	Offset      uint32 // of the frame in its segment
	Length      uint32 // of the whole frame
}

// StreamTail is the last version and hash of one stream's chain.
type StreamTail struct {
	Entity   uint32 // index into Index.Strings
	Scope    uint32 // index into Index.Strings
	Version  uint64
	LastHash [32]byte
}

// IdempotencyRecord maps an idempotency key to the events its request wrote:
// Count consecutive sequences starting at First.
type IdempotencyRecord struct {
	Key   string
	First uint64
	Count uint32
}

// EntryDeleted in IndexEntry.Flags marks an event removed by compaction:
// only its stub remains (sequence, id, stream, version and hashes), at the
// position of the hole frame that holds it.
const EntryDeleted uint16 = 0x8000

// EntryLost, set together with EntryDeleted, marks the stub of an event
// that was lost to damage and replaced by a repair, not removed on purpose.
const EntryLost uint16 = 0x4000

// HoleLostKey in a hole record's metadata marks stubs of events lost to
// damage (see [EntryLost]); compaction's holes do not carry it.
const HoleLostKey = "lost"

// Index is the table of contents of a run of events: a segment's footer, or
// the whole store in a checkpoint.
type Index struct {
	Strings []string
	Entries []IndexEntry
	Tails   []StreamTail
	Keys    []IdempotencyRecord
	// Deleted lists streams deleted by a tombstone.
	Deleted []StreamRef
}

// StreamRef names a stream by its entity and scope (indexes into
// Index.Strings): a stream is identified by both.
type StreamRef struct {
	Entity, Scope uint32
}

const (
	tailSize       = 4 + 4 + 8 + 32
	entryFixedSize = 8 + 8 + 8 + 16 + 1 + 2 + 2 + 4*5
	entryHasCorr   = 1
	entryHasCause  = 2
	// MaxIndexString is the longest string or idempotency key an index holds.
	MaxIndexString = 1<<16 - 1
)

// Validate checks that ix can be encoded: every string and key fits the
// 16-bit length [AppendIndex] writes.
func (ix *Index) Validate() error {
	for i, s := range ix.Strings {
		if len(s) > MaxIndexString {
			return fmt.Errorf("segment: index string %d is %d bytes, limit %d", i, len(s), MaxIndexString)
		}
	}
	for _, k := range ix.Keys {
		if len(k.Key) > MaxIndexString {
			return fmt.Errorf("segment: index key of %d bytes, limit %d", len(k.Key), MaxIndexString)
		}
	}
	return nil
}

// AppendIndex appends the binary encoding of ix to dst, which must satisfy
// [Index.Validate]:
//
//	counts (4 × u32) | strings (u16 len + bytes) | entries | tails | keys |
//	[deleted count u32 | (entity u32, scope u32) ...]   (only when streams were deleted)
//
// All integers are big-endian. An entry's correlation and causation ids are
// present only when a flag byte says so (root events omit both).
func AppendIndex(dst []byte, ix *Index) []byte {
	size := 16 + len(ix.Entries)*(entryFixedSize+32) + len(ix.Tails)*tailSize + len(ix.Keys)*14
	for _, s := range ix.Strings {
		size += 2 + len(s)
	}
	for _, k := range ix.Keys {
		size += len(k.Key)
	}
	dst = slices.Grow(dst, size)
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ix.Strings)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ix.Entries)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ix.Tails)))
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(ix.Keys)))
	for _, s := range ix.Strings {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(s)))
		dst = append(dst, s...)
	}
	for i := range ix.Entries {
		e := &ix.Entries[i]
		dst = binary.BigEndian.AppendUint64(dst, e.Seq)
		dst = binary.BigEndian.AppendUint64(dst, e.Version)
		dst = binary.BigEndian.AppendUint64(dst, uint64(e.Timestamp))
		dst = append(dst, e.ID[:]...)
		var f byte
		if e.Correlation != e.ID {
			f |= entryHasCorr
		}
		if e.Causation != ([16]byte{}) {
			f |= entryHasCause
		}
		dst = append(dst, f)
		if f&entryHasCorr != 0 {
			dst = append(dst, e.Correlation[:]...)
		}
		if f&entryHasCause != 0 {
			dst = append(dst, e.Causation[:]...)
		}
		dst = binary.BigEndian.AppendUint16(dst, e.Kind)
		dst = binary.BigEndian.AppendUint16(dst, e.Flags)
		for _, v := range [...]uint32{e.Entity, e.Scope, e.Segment, e.Offset, e.Length} {
			dst = binary.BigEndian.AppendUint32(dst, v)
		}
	}
	for _, t := range ix.Tails {
		dst = binary.BigEndian.AppendUint32(dst, t.Entity)
		dst = binary.BigEndian.AppendUint32(dst, t.Scope)
		dst = binary.BigEndian.AppendUint64(dst, t.Version)
		dst = append(dst, t.LastHash[:]...)
	}
	for _, k := range ix.Keys {
		dst = binary.BigEndian.AppendUint16(dst, uint16(len(k.Key)))
		dst = append(dst, k.Key...)
		dst = binary.BigEndian.AppendUint64(dst, k.First)
		dst = binary.BigEndian.AppendUint32(dst, k.Count)
	}
	if len(ix.Deleted) > 0 { // absent when empty, so the encoding stays canonical
		dst = binary.BigEndian.AppendUint32(dst, uint32(len(ix.Deleted)))
		for _, d := range ix.Deleted {
			dst = binary.BigEndian.AppendUint32(dst, d.Entity)
			dst = binary.BigEndian.AppendUint32(dst, d.Scope)
		}
	}
	return dst
}

// DecodeIndex decodes an index written by [AppendIndex]. Every count is
// checked against the bytes that remain before anything is allocated, and
// every string index against the string table.
func DecodeIndex(b []byte) (*Index, error) {
	r := reader{b: b, what: "index"}
	nStrings, nEntries, nTails, nKeys := r.u32(), r.u32(), r.u32(), r.u32()
	if r.err != nil {
		return nil, r.err
	}
	// Lower bounds on the encoded size of each table.
	if uint64(nStrings)*2+uint64(nEntries)*entryFixedSize+uint64(nTails)*tailSize+uint64(nKeys)*14 > uint64(len(r.b)) {
		return nil, decodeErr("index", "counts %d/%d/%d/%d exceed %d bytes", nStrings, nEntries, nTails, nKeys, len(r.b))
	}
	ix := &Index{
		Strings: make([]string, nStrings),
		Entries: make([]IndexEntry, nEntries),
		Tails:   make([]StreamTail, nTails),
		Keys:    make([]IdempotencyRecord, nKeys),
	}
	for i := range ix.Strings {
		ix.Strings[i] = string(r.bytes(int(r.u16())))
		if r.err == nil && !utf8.ValidString(ix.Strings[i]) {
			return nil, decodeErr("index", "string %d is not UTF-8", i)
		}
	}
	str := func(i uint32) uint32 {
		if i >= nStrings && r.err == nil {
			r.err = decodeErr("index", "string index %d out of %d", i, nStrings)
		}
		return i
	}
	for i := range ix.Entries {
		e := &ix.Entries[i]
		e.Seq, e.Version, e.Timestamp = r.u64(), r.u64(), int64(r.u64())
		copy(e.ID[:], r.bytes(16))
		f := r.u8()
		e.Correlation = e.ID
		if f&entryHasCorr != 0 {
			copy(e.Correlation[:], r.bytes(16))
		}
		if f&entryHasCause != 0 {
			copy(e.Causation[:], r.bytes(16))
		}
		e.Kind, e.Flags = r.u16(), r.u16()
		e.Entity, e.Scope = str(r.u32()), str(r.u32())
		e.Segment, e.Offset, e.Length = r.u32(), r.u32(), r.u32()
		if r.err != nil {
			return nil, r.err
		}
	}
	for i := range ix.Tails {
		t := &ix.Tails[i]
		t.Entity, t.Scope, t.Version = str(r.u32()), str(r.u32()), r.u64()
		copy(t.LastHash[:], r.bytes(32))
	}
	for i := range ix.Keys {
		k := &ix.Keys[i]
		k.Key = string(r.bytes(int(r.u16())))
		k.First, k.Count = r.u64(), r.u32()
	}
	if r.err != nil {
		return nil, r.err
	}
	if len(r.b) > 0 {
		n := r.u32()
		if r.err == nil && (n == 0 || uint64(n)*8 > uint64(len(r.b))) {
			return nil, decodeErr("index", "deleted-stream count %d in %d bytes", n, len(r.b))
		}
		ix.Deleted = make([]StreamRef, n)
		for i := range ix.Deleted {
			ix.Deleted[i] = StreamRef{Entity: str(r.u32()), Scope: str(r.u32())}
		}
		if r.err != nil {
			return nil, r.err
		}
	}
	if len(r.b) != 0 {
		return nil, decodeErr("index", "%d trailing bytes", len(r.b))
	}
	return ix, nil
}

// reader is a sticky-error big-endian reader: after the first short read
// every further read returns zeros and r.err holds the reason.
type reader struct {
	b    []byte
	err  error
	what string
}

func (r *reader) bytes(n int) []byte {
	if r.err != nil {
		return make([]byte, n)
	}
	if n > len(r.b) {
		r.err = decodeErr(r.what, "need %d bytes, have %d", n, len(r.b))
		return make([]byte, n)
	}
	v := r.b[:n]
	r.b = r.b[n:]
	return v
}

func (r *reader) u8() byte    { return r.bytes(1)[0] }
func (r *reader) u16() uint16 { return binary.BigEndian.Uint16(r.bytes(2)) }
func (r *reader) u32() uint32 { return binary.BigEndian.Uint32(r.bytes(4)) }
func (r *reader) u64() uint64 { return binary.BigEndian.Uint64(r.bytes(8)) }

// StringTable interns strings for an [Index] under construction.
type StringTable struct {
	Strings []string
	ids     map[string]uint32
}

// ID returns the index of s, adding it if new.
func (t *StringTable) ID(s string) uint32 {
	if id, ok := t.ids[s]; ok {
		return id
	}
	if t.ids == nil {
		t.ids = make(map[string]uint32)
	}
	id := uint32(len(t.Strings))
	t.ids[s] = id
	t.Strings = append(t.Strings, s)
	return id
}

func (e *IndexEntry) String() string {
	return fmt.Sprintf("seq %d @%d:%d+%d", e.Seq, e.Segment, e.Offset, e.Length)
}
