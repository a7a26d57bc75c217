package segment

import (
	"encoding/binary"
	"hash/crc32"
)

// FrameHeaderSize is the size of a frame's length and CRC prefix.
const FrameHeaderSize = 8

// MaxFramePayload is the hard upper bound on one frame's payload. A length
// above it is corruption, never an allocation.
const MaxFramePayload = 64 << 20

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Checksum returns the CRC-32C of b, the checksum used by frames.
func Checksum(b []byte) uint32 { return crc32.Checksum(b, castagnoli) }

// AppendFrame appends the frame for payload to dst.
func AppendFrame(dst, payload []byte) ([]byte, error) {
	if len(payload) > MaxFramePayload {
		return dst, ErrFrameTooLarge
	}
	dst = binary.BigEndian.AppendUint32(dst, uint32(len(payload)))
	dst = binary.BigEndian.AppendUint32(dst, Checksum(payload))
	return append(dst, payload...), nil
}

// FrameStatus classifies the bytes at a frame position.
type FrameStatus int

const (
	// FrameOK: a whole frame with a valid CRC.
	FrameOK FrameStatus = iota
	// FrameEnd: end of data: no bytes left, or a zero header (preallocated space).
	FrameEnd
	// FrameTruncated: the header or payload runs past the end of the data.
	FrameTruncated
	// FrameBad: an impossible length or a CRC mismatch.
	FrameBad
)

// DecodeFrame reads the frame at the start of b. It returns the payload (a
// sub-slice of b), the total frame size and the status. Nothing is allocated,
// and the length is checked against len(b) and [MaxFramePayload] first.
func DecodeFrame(b []byte) (payload []byte, size int, status FrameStatus) {
	if len(b) == 0 {
		return nil, 0, FrameEnd
	}
	if len(b) < FrameHeaderSize {
		if allZero(b) {
			return nil, 0, FrameEnd
		}
		return nil, 0, FrameTruncated
	}
	n := binary.BigEndian.Uint32(b[0:4])
	sum := binary.BigEndian.Uint32(b[4:8])
	if n == 0 {
		if sum == 0 {
			return nil, 0, FrameEnd
		}
		return nil, 0, FrameBad
	}
	if n > MaxFramePayload {
		return nil, 0, FrameBad
	}
	end := FrameHeaderSize + int(n)
	if end > len(b) {
		return nil, 0, FrameTruncated
	}
	payload = b[FrameHeaderSize:end]
	if Checksum(payload) != sum {
		return nil, 0, FrameBad
	}
	return payload, end, FrameOK
}

func allZero(b []byte) bool {
	for _, c := range b {
		if c != 0 {
			return false
		}
	}
	return true
}
