package segment

import (
	"bytes"
	"encoding/binary"
	"fmt"
)

// TrailerSize is the size of the trailer that ends a sealed segment:
// the footer frame's offset (u64 BE) and the trailer magic.
const TrailerSize = 16

var (
	footerMagic  = [4]byte{'B', 'P', 'F', 'T'}
	trailerMagic = [8]byte{'B', 'P', 'S', 'G', 'E', 'N', 'D', 0}
)

// AppendFooter appends the footer frame and trailer for a segment whose
// frames end at offset frameEnd (where the footer frame starts).
func AppendFooter(dst []byte, segmentID uint32, frameEnd int64, ix *Index) ([]byte, error) {
	return appendFooter(dst, segmentID, frameEnd, ix, func(body []byte) []byte { return AppendIndex(body, ix) })
}

// appendFooter is AppendFooter with the index ix encoded by appendIndex;
// ix is validated.
func appendFooter(dst []byte, segmentID uint32, frameEnd int64, ix *Index, appendIndex func([]byte) []byte) ([]byte, error) {
	if err := ix.Validate(); err != nil {
		return dst, err
	}
	body := append([]byte(nil), footerMagic[:]...)
	body = binary.BigEndian.AppendUint16(body, FormatVersion)
	body = binary.BigEndian.AppendUint32(body, segmentID)
	body = appendIndex(body)
	dst, err := AppendFrame(dst, body)
	if err != nil {
		return dst, err
	}
	dst = binary.BigEndian.AppendUint64(dst, uint64(frameEnd))
	return append(dst, trailerMagic[:]...), nil
}

// IsFooterPayload reports whether a frame payload is a footer, the frame
// that ends a sealed segment's frame region.
func IsFooterPayload(p []byte) bool { return bytes.HasPrefix(p, footerMagic[:]) }

// ReadFooter locates, checks and decodes the footer of the sealed segment in
// data (the whole file). It returns the offset where the frames end. Any
// doubt (no trailer, bad CRC, an offset that disagrees with the file size)
// is an error: the caller then scans the frames instead.
func ReadFooter(data []byte, segmentID uint32) (*Index, int64, error) {
	n := len(data)
	if n < HeaderSize+FrameHeaderSize+TrailerSize {
		return nil, 0, decodeErr("footer", "file of %d bytes has no room for a footer", n)
	}
	trailer := data[n-TrailerSize:]
	if [8]byte(trailer[8:]) != trailerMagic {
		return nil, 0, decodeErr("footer", "no trailer magic")
	}
	off := binary.BigEndian.Uint64(trailer[:8])
	if off < HeaderSize || off > uint64(n-TrailerSize-FrameHeaderSize) {
		return nil, 0, decodeErr("footer", "footer offset %d outside the file", off)
	}
	payload, size, st := DecodeFrame(data[off : n-TrailerSize])
	if st != FrameOK {
		return nil, 0, decodeErr("footer", "footer frame is damaged")
	}
	if int(off)+size != n-TrailerSize {
		return nil, 0, decodeErr("footer", "footer frame ends at %d, trailer starts at %d", int(off)+size, n-TrailerSize)
	}
	ix, err := decodeFooterPayload(payload, segmentID)
	if err != nil {
		return nil, 0, err
	}
	return ix, int64(off), nil
}

func decodeFooterPayload(p []byte, segmentID uint32) (*Index, error) {
	if len(p) < 10 || !IsFooterPayload(p) {
		return nil, decodeErr("footer", "bad footer magic")
	}
	switch v := binary.BigEndian.Uint16(p[4:6]); {
	case v < FormatVersion:
		return nil, fmt.Errorf("%w: footer format %d, written by an older batpak %s", ErrUnsupportedVersion, v, olderFormat(v))
	case v > FormatVersion:
		return nil, fmt.Errorf("%w: footer format %d (this build reads %d)", ErrUnsupportedVersion, v, FormatVersion)
	}
	if id := binary.BigEndian.Uint32(p[6:10]); id != segmentID {
		return nil, decodeErr("footer", "footer names segment %d, file is segment %d", id, segmentID)
	}
	return DecodeIndex(p[10:])
}
