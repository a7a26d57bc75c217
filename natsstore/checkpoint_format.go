package natsstore

import (
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"

	"github.com/google/uuid"
)

// An index checkpoint is a chain of blocks, each the index entries of a
// span of consecutive stream sequences (ckBlockEvents; the last block of a
// chain may hold fewer). A block is immutable once full, so a checkpoint grows
// by writing the blocks past the last full one; it is self-contained (its
// own string table, timestamps as deltas within the block), so blocks are
// decoded in parallel and in any order.
//
// Block layout (integers big-endian unless uvarint/varint):
//
//	magic "BPIX" | format u16 | flags u16 (0)
//	created i64      the stream's creation time, unix ns: a block of another stream by the same name never matches
//	first u64        stream sequence of the first entry (1 + a multiple of span)
//	span u32         entries of a full block: the next block begins at first + span
//	count u32        entries, at most span
//	strings u32      entries of the string table
//	bodyLen u32      bytes from here to the CRC
//	strings × (uvarint length, bytes)            entities and scopes
//	count × entry
//	CRC-32C (Castagnoli) u32 of everything before it
//
// An entry of a message the index skipped (not an event, see foreign.go):
//
//	flags u8         ckSkipped alone
//	uvarint entity   0: on no stream's subject; i: string i-1
//	uvarint scope    only if entity is not 0: string scope-1 (the subject's stream)
//
// An entry of an event:
//
//	flags u8         ckCorrIsID, ckCorrAsPrev, ckCause, ckStart, ckKey; no other bit
//	uvarint entity, uvarint scope                indexes into the string table
//	id [16]
//	corr [16]        unless ckCorrIsID (corr = id) or ckCorrAsPrev (corr = the previous entry's)
//	cause [16]       with ckCause
//	uvarint parts    with ckStart: the events of the request this entry begins
//	uvarint length, key bytes                    with ckKey (only with ckStart): the request's idempotency key
//	varint ts        minus the previous entry's (the first: minus 0), unix µs
//	uvarint kind
//	hash [32]
//
// Versions and previous hashes are not stored: a stream's version is its
// number of entries so far and its previous hash the hash of its previous
// entry, which the loader recomputes as it applies the chain in order.
//
// Format 2 goes with the store format 2 (format.go): a skipped message's
// entry names the whole stream of its subject, scope and entity; format 1
// named an entity only. A block of another format is not read.
const (
	ckFormat      = 2
	ckBlockEvents = 1 << 16
	ckMaxSpan     = 1 << 20
	ckHeadSize    = 4 + 2 + 2 + 8 + 8 + 4 + 4 + 4 + 4
	// ckMinEntry is the smallest encoded entry, a skipped message's flags
	// and entity (0: none); ckMinEvent an event's: flags, entity, scope,
	// id, ts, kind, hash.
	ckMinEntry = 1 + 1
	ckMinEvent = 1 + 1 + 1 + 16 + 1 + 1 + 32
)

var ckMagic = [4]byte{'B', 'P', 'I', 'X'}

// Entry flags.
const (
	ckCorrIsID   = 1 << 0
	ckCorrAsPrev = 1 << 1
	ckCause      = 1 << 2
	ckStart      = 1 << 3
	ckKey        = 1 << 4
	ckSkipped    = 1 << 5
	ckAllFlags   = ckCorrIsID | ckCorrAsPrev | ckCause | ckStart | ckKey
)

// errCheckpointCorrupt is matched by every decoding error.
var errCheckpointCorrupt = errors.New("natsstore: corrupt index checkpoint block")

// castagnoli is the CRC-32C table of the blocks' checksums (the embedded
// store's frames use the same CRC).
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

func ckChecksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// ckEntry is one decoded index entry.
type ckEntry struct {
	skipped       bool // a message that is not an event: only entity and scope (or "") are set
	entity, scope string
	id, corr      uuid.UUID
	cause         uuid.UUID
	ts            int64
	kind          uint16
	hash          [32]byte
	parts         uint32 // on a request's first event: its events; 0 on the others
	key           string // the request's idempotency key, if hasKey
	hasKey        bool
}

// ckBlock is one decoded block.
type ckBlock struct {
	created int64
	first   uint64
	span    uint64
	entries []ckEntry
}

func (b *ckBlock) last() uint64 { return b.first + uint64(len(b.entries)) - 1 }

// encodeCheckpointBlock encodes b. Its entries must be in stream order
// from b.first; a key is written only on a request's first entry.
func encodeCheckpointBlock(b *ckBlock) []byte {
	strs := make(map[string]uint64)
	var table []byte
	nStrings := uint32(0)
	ref := func(s string) uint64 {
		i, ok := strs[s]
		if !ok {
			i = uint64(len(strs))
			strs[s] = i
			table = binary.AppendUvarint(table, uint64(len(s)))
			table = append(table, s...)
			nStrings++
		}
		return i
	}
	var body []byte
	var prevTS int64
	var prevCorr uuid.UUID
	for i := range b.entries {
		e := &b.entries[i]
		if e.skipped {
			body = append(body, ckSkipped)
			if e.entity == "" {
				body = append(body, 0)
			} else {
				body = binary.AppendUvarint(body, ref(e.entity)+1)
				body = binary.AppendUvarint(body, ref(e.scope))
			}
			continue
		}
		var flags byte
		switch {
		case e.corr == e.id:
			flags |= ckCorrIsID
		case i > 0 && e.corr == prevCorr:
			flags |= ckCorrAsPrev
		}
		if e.cause != uuid.Nil {
			flags |= ckCause
		}
		if e.parts > 0 {
			flags |= ckStart
			if e.hasKey {
				flags |= ckKey
			}
		}
		body = append(body, flags)
		body = binary.AppendUvarint(body, ref(e.entity))
		body = binary.AppendUvarint(body, ref(e.scope))
		body = append(body, e.id[:]...)
		if flags&(ckCorrIsID|ckCorrAsPrev) == 0 {
			body = append(body, e.corr[:]...)
		}
		if flags&ckCause != 0 {
			body = append(body, e.cause[:]...)
		}
		if flags&ckStart != 0 {
			body = binary.AppendUvarint(body, uint64(e.parts))
		}
		if flags&ckKey != 0 {
			body = binary.AppendUvarint(body, uint64(len(e.key)))
			body = append(body, e.key...)
		}
		body = binary.AppendVarint(body, e.ts-prevTS)
		body = binary.AppendUvarint(body, uint64(e.kind))
		body = append(body, e.hash[:]...)
		prevTS, prevCorr = e.ts, e.corr
	}
	out := make([]byte, 0, ckHeadSize+len(table)+len(body)+4)
	out = append(out, ckMagic[:]...)
	out = binary.BigEndian.AppendUint16(out, ckFormat)
	out = binary.BigEndian.AppendUint16(out, 0)
	out = binary.BigEndian.AppendUint64(out, uint64(b.created))
	out = binary.BigEndian.AppendUint64(out, b.first)
	out = binary.BigEndian.AppendUint32(out, uint32(b.span))
	out = binary.BigEndian.AppendUint32(out, uint32(len(b.entries)))
	out = binary.BigEndian.AppendUint32(out, nStrings)
	out = binary.BigEndian.AppendUint32(out, uint32(len(table)+len(body)))
	out = append(out, table...)
	out = append(out, body...)
	return binary.BigEndian.AppendUint32(out, ckChecksum(out))
}

// decodeCheckpointBlock checks and decodes a block. It never trusts a
// count or a length before checking it against the bytes there are, so a
// damaged or hostile block costs no more memory than a small multiple of
// its size.
func decodeCheckpointBlock(data []byte) (*ckBlock, error) {
	bad := func(format string, args ...any) error {
		return fmt.Errorf("%w: %s", errCheckpointCorrupt, fmt.Sprintf(format, args...))
	}
	if len(data) < ckHeadSize+4 {
		return nil, bad("%d bytes", len(data))
	}
	if [4]byte(data[:4]) != ckMagic {
		return nil, bad("bad magic")
	}
	if v := binary.BigEndian.Uint16(data[4:]); v != ckFormat {
		return nil, bad("format %d, this version reads %d", v, ckFormat)
	}
	n := len(data) - 4
	if ckChecksum(data[:n]) != binary.BigEndian.Uint32(data[n:]) {
		return nil, bad("checksum mismatch")
	}
	if f := binary.BigEndian.Uint16(data[6:]); f != 0 {
		return nil, bad("flags %#x", f)
	}
	b := &ckBlock{
		created: int64(binary.BigEndian.Uint64(data[8:])),
		first:   binary.BigEndian.Uint64(data[16:]),
	}
	b.span = uint64(binary.BigEndian.Uint32(data[24:]))
	count := uint64(binary.BigEndian.Uint32(data[28:]))
	nStrings := uint64(binary.BigEndian.Uint32(data[32:]))
	bodyLen := uint64(binary.BigEndian.Uint32(data[36:]))
	switch {
	case bodyLen != uint64(n-ckHeadSize):
		return nil, bad("body of %d bytes in %d", bodyLen, n-ckHeadSize)
	case b.span == 0 || b.span > ckMaxSpan:
		return nil, bad("span of %d events", b.span)
	case b.first == 0 || (b.first-1)%b.span != 0:
		return nil, bad("first sequence %d with a span of %d", b.first, b.span)
	case count == 0 || count > b.span:
		return nil, bad("%d entries in a span of %d", count, b.span)
	case count*ckMinEntry+nStrings*2 > bodyLen:
		return nil, bad("%d entries and %d strings in %d bytes", count, nStrings, bodyLen)
	}
	r := ckReader{b: data[ckHeadSize:n]}
	strs := make([]string, nStrings)
	for i := range strs {
		strs[i] = string(r.bytes(r.uvarint()))
		if r.err == nil && strs[i] == "" {
			return nil, bad("string %d is empty", i)
		}
	}
	str := func() string {
		i := r.uvarint()
		if r.err == nil && i >= uint64(len(strs)) {
			r.err = fmt.Errorf("string %d of %d", i, len(strs))
		}
		if r.err != nil {
			return ""
		}
		return strs[i]
	}
	// Room for as many events as the body can hold; blocks of skipped
	// messages, two bytes each, grow it.
	b.entries = make([]ckEntry, 0, min(count, bodyLen/ckMinEvent))
	var prevTS int64
	var prevCorr uuid.UUID
	for i := range int(count) {
		b.entries = append(b.entries, ckEntry{})
		e := &b.entries[i]
		flags := r.u8()
		if flags == ckSkipped {
			e.skipped = true
			if j := r.uvarint(); j > 0 {
				if r.err == nil && j > uint64(len(strs)) {
					return nil, bad("entry %d: string %d of %d", i, j-1, len(strs))
				}
				if r.err == nil {
					e.entity = strs[j-1]
				}
				e.scope = str()
			}
			if r.err != nil {
				return nil, bad("entry %d: %v", i, r.err)
			}
			continue
		}
		if r.err == nil && (flags&^ckAllFlags != 0 || flags&(ckCorrIsID|ckCorrAsPrev) == ckCorrIsID|ckCorrAsPrev ||
			(flags&ckKey != 0 && flags&ckStart == 0) || (i == 0 && flags&ckCorrAsPrev != 0)) {
			return nil, bad("entry %d: flags %#x", i, flags)
		}
		e.entity, e.scope = str(), str()
		copy(e.id[:], r.bytes(16))
		switch {
		case flags&ckCorrIsID != 0:
			e.corr = e.id
		case flags&ckCorrAsPrev != 0:
			e.corr = prevCorr
		default:
			copy(e.corr[:], r.bytes(16))
		}
		if flags&ckCause != 0 {
			copy(e.cause[:], r.bytes(16))
			if r.err == nil && e.cause == uuid.Nil {
				return nil, bad("entry %d: nil cause", i)
			}
		}
		if flags&ckStart != 0 {
			p := r.uvarint()
			if r.err == nil && (p == 0 || p > 1<<32-1) {
				return nil, bad("entry %d: request of %d events", i, p)
			}
			e.parts = uint32(p)
		}
		if flags&ckKey != 0 {
			e.key, e.hasKey = string(r.bytes(r.uvarint())), true
		}
		e.ts = prevTS + r.varint()
		k := r.uvarint()
		if r.err == nil && k > 0xFFFF {
			return nil, bad("entry %d: kind %d", i, k)
		}
		e.kind = uint16(k)
		copy(e.hash[:], r.bytes(32))
		if r.err != nil {
			return nil, bad("entry %d: %v", i, r.err)
		}
		prevTS, prevCorr = e.ts, e.corr
	}
	if r.err != nil {
		return nil, bad("%v", r.err)
	}
	if len(r.b) != 0 {
		return nil, bad("%d bytes after the last entry", len(r.b))
	}
	return b, nil
}

// ckReader reads a block's body; the first error sticks and reads after
// it return zero values.
type ckReader struct {
	b   []byte
	err error
}

func (r *ckReader) fail(what string) {
	if r.err == nil {
		r.err = fmt.Errorf("truncated %s", what)
	}
	r.b = nil
}

func (r *ckReader) u8() byte {
	if len(r.b) < 1 {
		r.fail("byte")
		return 0
	}
	c := r.b[0]
	r.b = r.b[1:]
	return c
}

func (r *ckReader) bytes(n uint64) []byte {
	if n > uint64(len(r.b)) {
		r.fail("bytes")
		return nil
	}
	p := r.b[:n:n]
	r.b = r.b[n:]
	return p
}

func (r *ckReader) uvarint() uint64 {
	v, n := binary.Uvarint(r.b)
	if n <= 0 {
		r.fail("uvarint")
		return 0
	}
	r.b = r.b[n:]
	return v
}

func (r *ckReader) varint() int64 {
	v, n := binary.Varint(r.b)
	if n <= 0 {
		r.fail("varint")
		return 0
	}
	r.b = r.b[n:]
	return v
}
