package segment

import (
	"encoding/binary"
	"math"
)

// The msgpack subset records, stubs and markers use: unsigned integers in
// their shortest form, int64, strings, binary, arrays and maps. The writer side appends; the
// decoder reads every msgpack form of those types, bounds-checked.

// appendUint appends v in the shortest msgpack form that holds it.
func appendUint(dst []byte, v uint64) []byte {
	switch {
	case v < 0x80:
		return append(dst, byte(v))
	case v <= math.MaxUint8:
		return append(dst, 0xcc, byte(v))
	case v <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xcd), uint16(v))
	case v <= math.MaxUint32:
		return binary.BigEndian.AppendUint32(append(dst, 0xce), uint32(v))
	}
	return binary.BigEndian.AppendUint64(append(dst, 0xcf), v)
}

func appendI64(dst []byte, v int64) []byte {
	return binary.BigEndian.AppendUint64(append(dst, 0xd3), uint64(v))
}

func appendStr(dst []byte, s string) []byte {
	switch n := len(s); {
	case n < 32:
		dst = append(dst, 0xa0|byte(n))
	case n <= math.MaxUint8:
		dst = append(dst, 0xd9, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xda), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xdb), uint32(n))
	}
	return append(dst, s...)
}

func appendBin(dst []byte, b []byte) []byte {
	switch n := len(b); {
	case n <= math.MaxUint8:
		dst = append(dst, 0xc4, byte(n))
	case n <= math.MaxUint16:
		dst = binary.BigEndian.AppendUint16(append(dst, 0xc5), uint16(n))
	default:
		dst = binary.BigEndian.AppendUint32(append(dst, 0xc6), uint32(n))
	}
	return append(dst, b...)
}

// appendID writes a fixed-size id or hash, or msgpack nil when it is all
// zeros (a root's causation, a stream's first previous hash, markers).
func appendID(dst []byte, b []byte) []byte {
	if allZero(b) {
		return append(dst, 0xc0)
	}
	return appendBin(dst, b)
}

// appendCorrelation appends a correlation id: nil when it is the event's
// own id (a root), which a decoder reads back as that id.
func appendCorrelation(dst []byte, corr, id *[16]byte) []byte {
	if *corr == *id {
		return append(dst, 0xc0)
	}
	return appendID(dst, corr[:])
}

func appendMapHeader(dst []byte, n int) []byte {
	switch {
	case n < 16:
		return append(dst, 0x80|byte(n))
	case n <= math.MaxUint16:
		return binary.BigEndian.AppendUint16(append(dst, 0xde), uint16(n))
	default:
		return binary.BigEndian.AppendUint32(append(dst, 0xdf), uint32(n))
	}
}

// decoder reads the msgpack subset records use. Every read is bounds-checked.
// It advances an offset rather than reslicing, and the forms the writer
// uses have inlined fast paths; the other forms take the general path.
type decoder struct {
	b []byte
	p int // offset of the next byte
}

// left returns the number of bytes not read yet.
func (d *decoder) left() int { return len(d.b) - d.p }

func (d *decoder) take(n int) ([]byte, error) {
	if n < 0 || n > d.left() {
		return nil, d.short(n)
	}
	v := d.b[d.p : d.p+n : d.p+n]
	d.p += n
	return v, nil
}

func (d *decoder) short(n int) error {
	return decodeErr("record", "need %d bytes, have %d", n, d.left())
}

func (d *decoder) byte() (byte, error) {
	if d.p >= len(d.b) {
		return 0, d.short(1)
	}
	c := d.b[d.p]
	d.p++
	return c, nil
}

// fixed reports whether the next value has type byte c followed by n bytes,
// and if so returns those bytes and moves past them.
func (d *decoder) fixed(c byte, n int) ([]byte, bool) {
	if d.p+1+n > len(d.b) || d.b[d.p] != c {
		return nil, false
	}
	v := d.b[d.p+1 : d.p+1+n]
	d.p += 1 + n
	return v, true
}

func (d *decoder) uint() (uint64, error) {
	if v, ok := d.fixed(0xcf, 8); ok {
		return binary.BigEndian.Uint64(v), nil
	}
	return d.anyUint()
}

func (d *decoder) anyUint() (uint64, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	var w int
	switch {
	case c <= 0x7f:
		return uint64(c), nil
	case c == 0xcc:
		w = 1
	case c == 0xcd:
		w = 2
	case c == 0xce:
		w = 4
	case c == 0xcf:
		w = 8
	default:
		return 0, decodeErr("record", "type byte 0x%02x is not an unsigned integer", c)
	}
	v, err := d.take(w)
	if err != nil {
		return 0, err
	}
	return bigEndian(v), nil
}

func bigEndian(v []byte) uint64 {
	var u uint64
	for _, x := range v {
		u = u<<8 | uint64(x)
	}
	return u
}

func (d *decoder) uint16() (uint16, error) {
	if v, ok := d.fixed(0xcd, 2); ok {
		return binary.BigEndian.Uint16(v), nil
	}
	u, err := d.anyUint()
	if err != nil {
		return 0, err
	}
	if u > math.MaxUint16 {
		return 0, decodeErr("record", "%d does not fit 16 bits", u)
	}
	return uint16(u), nil
}

func (d *decoder) int() (int64, error) {
	if v, ok := d.fixed(0xd3, 8); ok {
		return int64(binary.BigEndian.Uint64(v)), nil
	}
	if d.p < len(d.b) {
		c := d.b[d.p]
		switch {
		case c >= 0xe0:
			d.p++
			return int64(int8(c)), nil
		case c >= 0xd0 && c <= 0xd3:
			d.p++
			v, err := d.take(1 << (c - 0xd0))
			if err != nil {
				return 0, err
			}
			shift := 64 - 8*uint(len(v))
			return int64(bigEndian(v)<<shift) >> shift, nil
		}
	}
	u, err := d.anyUint()
	if err != nil {
		return 0, err
	}
	if u > math.MaxInt64 {
		return 0, decodeErr("record", "%d overflows int64", u)
	}
	return int64(u), nil
}

func (d *decoder) length(c byte, w int) (int, error) {
	v, err := d.take(w)
	if err != nil {
		return 0, err
	}
	n := int(bigEndian(v))
	if n > d.left() {
		return 0, decodeErr("record", "length %d after 0x%02x exceeds the %d bytes left", n, c, d.left())
	}
	return n, nil
}

func (d *decoder) arrayLen() (int, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x90:
		return int(c & 0x0f), nil
	case c == 0xdc:
		return d.length(c, 2)
	case c == 0xdd:
		return d.length(c, 4)
	}
	return 0, decodeErr("record", "type byte 0x%02x is not an array", c)
}

func (d *decoder) mapLen() (int, error) {
	c, err := d.byte()
	if err != nil {
		return 0, err
	}
	switch {
	case c&0xf0 == 0x80:
		return int(c & 0x0f), nil
	case c == 0xc0:
		return 0, nil
	case c == 0xde:
		return d.length(c, 2)
	case c == 0xdf:
		return d.length(c, 4)
	}
	return 0, decodeErr("record", "type byte 0x%02x is not a map", c)
}

// rawStr returns the bytes of a string (nil for msgpack nil) without copying.
func (d *decoder) rawStr() ([]byte, error) {
	if d.p < len(d.b) && d.b[d.p]&0xe0 == 0xa0 { // fixstr
		d.p++
		return d.take(int(d.b[d.p-1] & 0x1f))
	}
	c, err := d.byte()
	if err != nil {
		return nil, err
	}
	var n int
	switch c {
	case 0xd9:
		n, err = d.length(c, 1)
	case 0xda:
		n, err = d.length(c, 2)
	case 0xdb:
		n, err = d.length(c, 4)
	case 0xc0:
		return nil, nil
	default:
		return nil, decodeErr("record", "type byte 0x%02x is not a string", c)
	}
	if err != nil {
		return nil, err
	}
	return d.take(n)
}

func (d *decoder) str() (string, error) {
	b, err := d.rawStr()
	return string(b), err
}

func (d *decoder) bin() ([]byte, error) {
	c, err := d.byte()
	if err != nil {
		return nil, err
	}
	var n int
	switch c {
	case 0xc4:
		n, err = d.length(c, 1)
	case 0xc5:
		n, err = d.length(c, 2)
	case 0xc6:
		n, err = d.length(c, 4)
	case 0xc0:
		return nil, nil
	default:
		return nil, decodeErr("record", "type byte 0x%02x is not binary", c)
	}
	if err != nil {
		return nil, err
	}
	return d.take(n)
}

// fixedBin reads a binary field of exactly len(dst) bytes, or nil for zeros.
func (d *decoder) fixedBin(dst []byte) error {
	if d.p+2+len(dst) <= len(d.b) && d.b[d.p] == 0xc4 && int(d.b[d.p+1]) == len(dst) {
		d.p += 2 + copy(dst, d.b[d.p+2:])
		return nil
	}
	if d.p < len(d.b) && d.b[d.p] == 0xc0 {
		d.p++
		clear(dst)
		return nil
	}
	b, err := d.bin()
	if err != nil {
		return err
	}
	if len(b) != len(dst) {
		return decodeErr("record", "binary field of %d bytes, want %d", len(b), len(dst))
	}
	copy(dst, b)
	return nil
}
