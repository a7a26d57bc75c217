package segment

import (
	"encoding/binary"
	"fmt"
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

// MaxIndexString is the longest string or idempotency key an index holds.
const MaxIndexString = 1<<16 - 1

// Validate checks that ix can be encoded: no string or key is longer than
// [MaxIndexString].
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

// uvarint reads a uvarint in its shortest form: any other form is an
// error, so that a value has one encoding.
func (r *reader) uvarint() uint64 {
	if r.err != nil {
		return 0
	}
	v, n := binary.Uvarint(r.b)
	if n <= 0 || (n > 1 && r.b[n-1] == 0) {
		r.err = decodeErr(r.what, "malformed uvarint")
		return 0
	}
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
