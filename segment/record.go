package segment

import (
	"sort"
)

// System kinds (category 0x0) written by the store itself. They never reach
// readers as events.
const (
	KindBatchBegin  uint16 = 0x0001 // Version holds the number of items, Seq the first item's sequence
	KindBatchCommit uint16 = 0x0002 // Version holds the number of items, Seq the last item's sequence
	// KindTombstone deletes the stream named by Entity; Seq is the last
	// sequence when it was written. It takes no sequence of its own.
	KindTombstone uint16 = 0x0003
	// KindHole stands for events removed by compaction: Payload holds their
	// stubs (see [AppendStubs]), Seq the first one's sequence and Version
	// their count; Metadata says why they were removed.
	KindHole uint16 = 0x0004
)

// IsSystemKind reports whether k is in the reserved system category 0x0.
func IsSystemKind(k uint16) bool { return k>>12 == 0 }

// Record is the content of one frame: an event, or a batch marker when Kind
// is a system kind. On disk it is a msgpack array of recordFields elements in
// the order of the fields below; any msgpack library can read it.
type Record struct {
	Seq            uint64 // global sequence (markers: see KindBatchBegin/KindBatchCommit)
	Kind           uint16
	Flags          uint16
	Version        uint64 // stream version, from 1
	Timestamp      int64  // unix microseconds
	ID             [16]byte
	Correlation    [16]byte
	Causation      [16]byte
	Entity         string
	Scope          string
	PrevHash       [32]byte
	Hash           [32]byte
	IdempotencyKey string
	Metadata       map[string]string
	Payload        []byte // the event's msgpack-encoded payload
}

const recordFields = 15

// recordArrayByte is the first byte of every record the writer encodes.
const recordArrayByte = 0x90 | recordFields

// IsMarker reports whether r is a batch marker rather than an event.
func (r *Record) IsMarker() bool { return IsSystemKind(r.Kind) }

// AppendRecord appends the msgpack encoding of r to dst. Integers use
// their shortest forms; an all-zero id or hash is written as nil, and so
// is a correlation equal to the id (a root's); metadata keys are written
// sorted, so equal records encode equally.
func AppendRecord(dst []byte, r *Record) []byte {
	dst = append(dst, recordArrayByte)
	dst = appendUint(dst, r.Seq)
	dst = appendUint(dst, uint64(r.Kind))
	dst = appendUint(dst, uint64(r.Flags))
	dst = appendUint(dst, r.Version)
	dst = appendI64(dst, r.Timestamp)
	dst = appendID(dst, r.ID[:])
	dst = appendCorrelation(dst, &r.Correlation, &r.ID)
	dst = appendID(dst, r.Causation[:])
	dst = appendStr(dst, r.Entity)
	dst = appendStr(dst, r.Scope)
	dst = appendID(dst, r.PrevHash[:])
	dst = appendID(dst, r.Hash[:])
	dst = appendStr(dst, r.IdempotencyKey)
	dst = appendMapHeader(dst, len(r.Metadata))
	for _, k := range SortedKeys(r.Metadata) {
		dst = appendStr(dst, k)
		dst = appendStr(dst, r.Metadata[k])
	}
	return appendBin(dst, r.Payload)
}

// SortedKeys returns the keys of m in ascending order.
func SortedKeys(m map[string]string) []string {
	if len(m) == 0 {
		return nil
	}
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	return keys
}

// DecodeRecord decodes a frame payload into r. Strings and the payload are
// copied, so r does not alias b; but an entity or scope equal to the one r
// holds already is kept rather than copied again, so a caller that sets
// them beforehand (from its index, or by decoding one stream's records into
// the same r) allocates only the payload. Malformed input returns a
// [*DecodeError].
func DecodeRecord(b []byte, r *Record) error { return decodeRecord(b, r, nil) }

// Known returns the entity and scope an index holds for event seq, or
// empty strings for a sequence it does not know.
type Known func(seq uint64) (entity, scope string)

// keep returns b as a string: old if they are equal, else a copy.
func keep(b []byte, old string) string {
	if string(b) == old {
		return old
	}
	return string(b)
}

// decodeRecord is DecodeRecord; known, if not nil, sets r's entity and
// scope as soon as the sequence is decoded.
func decodeRecord(b []byte, r *Record, known Known) error {
	d := decoder{b: b}
	if err := decodeHead(&d, r, known); err != nil {
		return err
	}
	return decodeTail(&d, r)
}

// DecodeRecordHead decodes only the head of a record: its sequence, kind,
// flags, version, timestamp, id, correlation and causation. It allocates
// nothing and leaves the rest of r as it is.
func DecodeRecordHead(b []byte, r *Record) error {
	d := decoder{b: b}
	return decodeHead(&d, r, nil)
}

// decodeHead decodes the record's array header and fields 0 to 7.
func decodeHead(d *decoder, r *Record, known Known) error {
	n, err := d.arrayLen()
	if err != nil {
		return err
	}
	if n != recordFields {
		return decodeErr("record", "array of %d elements, want %d", n, recordFields)
	}
	if r.Seq, err = d.uint(); err != nil {
		return err
	}
	if known != nil {
		r.Entity, r.Scope = known(r.Seq)
	}
	if r.Kind, err = d.uint16(); err != nil {
		return err
	}
	if r.Flags, err = d.uint16(); err != nil {
		return err
	}
	if r.Version, err = d.uint(); err != nil {
		return err
	}
	if r.Timestamp, err = d.int(); err != nil {
		return err
	}
	if err = d.fixedBin(r.ID[:]); err != nil {
		return err
	}
	if err = d.fixedBin(r.Correlation[:]); err != nil {
		return err
	}
	if r.Correlation == ([16]byte{}) {
		r.Correlation = r.ID
	}
	return d.fixedBin(r.Causation[:])
}

// decodeTail decodes fields 8 to 14 of a record, after decodeHead.
func decodeTail(d *decoder, r *Record) error {
	entity, err := d.rawStr()
	if err != nil {
		return err
	}
	r.Entity = keep(entity, r.Entity)
	scope, err := d.rawStr()
	if err != nil {
		return err
	}
	r.Scope = keep(scope, r.Scope)
	if err = d.fixedBin(r.PrevHash[:]); err != nil {
		return err
	}
	if err = d.fixedBin(r.Hash[:]); err != nil {
		return err
	}
	if r.IdempotencyKey, err = d.str(); err != nil {
		return err
	}
	m, err := d.mapLen()
	if err != nil {
		return err
	}
	r.Metadata = nil
	if m > 0 {
		if m > d.left()/2 { // every entry takes at least two bytes
			return decodeErr("record", "metadata map of %d entries in %d bytes", m, d.left())
		}
		r.Metadata = make(map[string]string, m)
		for range m {
			k, err := d.str()
			if err != nil {
				return err
			}
			v, err := d.str()
			if err != nil {
				return err
			}
			r.Metadata[k] = v
		}
	}
	p, err := d.bin()
	if err != nil {
		return err
	}
	r.Payload = nil
	if len(p) > 0 {
		r.Payload = make([]byte, len(p))
		copy(r.Payload, p)
	}
	if d.left() != 0 {
		return decodeErr("record", "%d trailing bytes", d.left())
	}
	return nil
}
