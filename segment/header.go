package segment

import (
	"encoding/binary"
	"fmt"
)

// FormatVersion is the segment format version this build writes and reads.
// Format 3 encodes the footer index with varints and deltas (format 2 wrote
// fixed-width entries); format 2 keyed streams by scope and entity (format 1
// by entity alone).
const FormatVersion = 3

// HeaderSize is the size of a segment file header.
const HeaderSize = 32

var headerMagic = [4]byte{'B', 'P', 'S', 'G'}

// Header is the fixed header at the start of every segment file:
//
//	magic "BPSG" | version u16 | flags u16 | segment id u32 | reserved u32 |
//	created unix µs i64 | reserved u32 | CRC-32C of the preceding 28 bytes u32
type Header struct {
	Version uint16
	Flags   uint16 // HeaderWrittenWhole, or 0
	Segment uint32
	Created int64 // unix microseconds
}

// HeaderWrittenWhole marks a segment written whole, footer included, before
// it took its name (compaction writes such files): one without a footer
// was cut after it was written, never torn by a crash, and what was cut may
// be acknowledged events. Readers before it took the flags for reserved
// zeros and ignored them.
const HeaderWrittenWhole = 1

// AppendHeader appends the encoding of h to dst.
func AppendHeader(dst []byte, h Header) []byte {
	start := len(dst)
	dst = append(dst, headerMagic[:]...)
	dst = binary.BigEndian.AppendUint16(dst, h.Version)
	dst = binary.BigEndian.AppendUint16(dst, h.Flags)
	dst = binary.BigEndian.AppendUint32(dst, h.Segment)
	dst = binary.BigEndian.AppendUint32(dst, 0)
	dst = binary.BigEndian.AppendUint64(dst, uint64(h.Created))
	dst = binary.BigEndian.AppendUint32(dst, 0)
	return binary.BigEndian.AppendUint32(dst, Checksum(dst[start:]))
}

// DecodeHeader decodes and checks the header at the start of b.
func DecodeHeader(b []byte) (Header, error) {
	if len(b) < HeaderSize {
		return Header{}, decodeErr("header", "%d bytes, want %d", len(b), HeaderSize)
	}
	if [4]byte(b[0:4]) != headerMagic {
		return Header{}, decodeErr("header", "bad magic %q", b[0:4])
	}
	if Checksum(b[:28]) != binary.BigEndian.Uint32(b[28:32]) {
		return Header{}, decodeErr("header", "checksum mismatch")
	}
	h := Header{
		Version: binary.BigEndian.Uint16(b[4:6]),
		Flags:   binary.BigEndian.Uint16(b[6:8]),
		Segment: binary.BigEndian.Uint32(b[8:12]),
		Created: int64(binary.BigEndian.Uint64(b[16:24])),
	}
	switch {
	case h.Version < FormatVersion:
		return h, fmt.Errorf("%w: segment format %d, written by an older batpak %s (this build reads %d; copy the events into a new store with the version that wrote them)",
			ErrUnsupportedVersion, h.Version, olderFormat(h.Version), FormatVersion)
	case h.Version > FormatVersion:
		return h, fmt.Errorf("%w: segment format %d (this build reads %d)", ErrUnsupportedVersion, h.Version, FormatVersion)
	case h.Flags&^HeaderWrittenWhole != 0:
		return h, fmt.Errorf("%w: segment header flags %#04x (this build knows %#04x)", ErrUnsupportedVersion, h.Flags, HeaderWrittenWhole)
	}
	return h, nil
}

// olderFormat says what separates an older segment format from this one.
func olderFormat(v uint16) string {
	if v == 2 {
		return "whose footers held a fixed-width index (format 3 writes it with varints and deltas)"
	}
	return "before streams were keyed by scope and entity"
}

// FileName returns the file name of segment id: ten digits and ".seg".
func FileName(id uint32) string { return fmt.Sprintf("%010d.seg", id) }

// ParseFileName returns the segment id encoded in a file name made by [FileName].
func ParseFileName(name string) (uint32, bool) {
	if len(name) != 14 || name[10:] != ".seg" {
		return 0, false
	}
	var id uint64
	for _, c := range name[:10] {
		if c < '0' || c > '9' {
			return 0, false
		}
		id = id*10 + uint64(c-'0')
	}
	if id == 0 || id > 1<<32-1 {
		return 0, false
	}
	return uint32(id), true
}
