package segment

// Stub is what compaction keeps of a removed event: enough to keep global
// sequences dense, stream versions dense and hash chains verifiable, and
// the event's place in time and in the causal graph, so that an index
// rebuilt from frames alone knows every event it knew before.
type Stub struct {
	Seq         uint64
	ID          [16]byte
	Entity      string
	Scope       string
	Kind        uint16
	Version     uint64
	PrevHash    [32]byte
	Hash        [32]byte
	Timestamp   int64    // unix microseconds; 0 when a repair does not know it
	Correlation [16]byte // zero when unknown
	Causation   [16]byte // zero for a root or when unknown
}

const stubFields = 11

// AppendStubs appends the msgpack encoding of stubs (an array of 11-element
// arrays) to dst: the payload of a [KindHole] frame.
func AppendStubs(dst []byte, stubs []Stub) []byte {
	switch n := len(stubs); {
	case n < 16:
		dst = append(dst, 0x90|byte(n))
	case n <= 0xffff:
		dst = append(dst, 0xdc, byte(n>>8), byte(n))
	default:
		dst = append(dst, 0xdd, byte(n>>24), byte(n>>16), byte(n>>8), byte(n))
	}
	for i := range stubs {
		s := &stubs[i]
		dst = append(dst, 0x90|stubFields)
		dst = appendUint(dst, s.Seq)
		dst = appendBin(dst, s.ID[:])
		dst = appendStr(dst, s.Entity)
		dst = appendStr(dst, s.Scope)
		dst = appendUint(dst, uint64(s.Kind))
		dst = appendUint(dst, s.Version)
		dst = appendID(dst, s.PrevHash[:])
		dst = appendID(dst, s.Hash[:])
		dst = appendI64(dst, s.Timestamp)
		dst = appendCorrelation(dst, &s.Correlation, &s.ID)
		dst = appendID(dst, s.Causation[:])
	}
	return dst
}

// DecodeStubs decodes a [KindHole] payload. Malformed input returns a
// [*DecodeError]; the count is checked against the input before allocating.
func DecodeStubs(b []byte) ([]Stub, error) {
	d := decoder{b: b}
	n, err := d.arrayLen()
	if err != nil {
		return nil, err
	}
	if n > len(b)/(1+stubFields) {
		return nil, decodeErr("stubs", "%d stubs in %d bytes", n, len(b))
	}
	out := make([]Stub, n)
	for i := range out {
		s := &out[i]
		m, err := d.arrayLen()
		if err != nil {
			return nil, err
		}
		if m != stubFields {
			return nil, decodeErr("stubs", "stub of %d fields, want %d", m, stubFields)
		}
		if s.Seq, err = d.uint(); err != nil {
			return nil, err
		}
		if err = d.fixedBin(s.ID[:]); err != nil {
			return nil, err
		}
		if s.Entity, err = d.str(); err != nil {
			return nil, err
		}
		if s.Scope, err = d.str(); err != nil {
			return nil, err
		}
		if s.Kind, err = d.uint16(); err != nil {
			return nil, err
		}
		if s.Version, err = d.uint(); err != nil {
			return nil, err
		}
		if err = d.fixedBin(s.PrevHash[:]); err != nil {
			return nil, err
		}
		if err = d.fixedBin(s.Hash[:]); err != nil {
			return nil, err
		}
		if s.Timestamp, err = d.int(); err != nil {
			return nil, err
		}
		if err = d.fixedBin(s.Correlation[:]); err != nil {
			return nil, err
		}
		if s.Correlation == ([16]byte{}) {
			s.Correlation = s.ID
		}
		if err = d.fixedBin(s.Causation[:]); err != nil {
			return nil, err
		}
	}
	if d.left() != 0 {
		return nil, decodeErr("stubs", "%d trailing bytes", d.left())
	}
	return out, nil
}
