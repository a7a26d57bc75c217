package segment

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
)

// ScanResult says how a segment's frame region ended.
type ScanResult struct {
	Header Header
	// FrameEnd is the offset just after the last whole frame: where the
	// footer starts in a sealed segment, or where the next frame goes.
	FrameEnd int64
	// Sealed is true when the frames ended at a footer frame (whose index
	// may still be damaged: the frames themselves were read).
	Sealed bool
	// Torn is set when the frames end in an incomplete or damaged frame that
	// no valid frame follows: a write that never completed. Only the
	// active segment may have one.
	Torn *CorruptError
}

// ScanFunc receives each event or marker frame in file order; rec is reused
// between calls. Returning an error stops the scan with that error.
type ScanFunc func(off int64, size int, rec *Record) error

// Scan walks the frames of a segment file held in data (the whole file,
// usually a read-only mapping) from offset from, or from the first frame if
// from is 0. A frame that is damaged but followed by a valid frame is
// corruption and returns a [*CorruptError]; damage with nothing valid after
// it is reported in ScanResult.Torn for the caller to judge.
func Scan(data []byte, id uint32, path string, from int64, fn ScanFunc) (ScanResult, error) {
	return ScanWith(data, id, path, ScanOptions{From: from}, fn)
}

// ScanOptions say where a scan starts and what its caller already knows.
type ScanOptions struct {
	// From is the offset of the first frame to read (0: the first frame).
	From int64
	// AfterSeq is the sequence of the last event before From. Damage is
	// corruption only if a later valid frame holds an event after the last
	// one seen; a scan that starts mid-file needs AfterSeq to judge its
	// first damage as a scan from the start would.
	AfterSeq uint64
	// Known, if set, returns each event's entity and scope from the
	// caller's index: decoded strings equal to them are shared, not copied.
	Known Known
}

// ScanWith is [Scan] with options.
func ScanWith(data []byte, id uint32, path string, opts ScanOptions, fn ScanFunc) (ScanResult, error) {
	from, known := opts.From, opts.Known
	var res ScanResult
	h, err := DecodeHeader(data)
	if errors.Is(err, ErrUnsupportedVersion) {
		return res, fmt.Errorf("%s: %w", path, err)
	}
	if err != nil {
		return res, &CorruptError{Segment: id, Path: path, Offset: 0, Reason: err.Error()}
	}
	if h.Segment != id {
		return res, &CorruptError{Segment: id, Path: path, Reason: fmt.Sprintf("header names segment %d", h.Segment)}
	}
	res.Header = h
	off := max(from, HeaderSize)
	if off > int64(len(data)) {
		return res, &CorruptError{Segment: id, Path: path, Offset: off, Reason: "scan start beyond end of file"}
	}
	var rec Record
	lastSeq := opts.AfterSeq // of the last event seen; a frame found after damage must follow it
	for {
		payload, size, st := DecodeFrame(data[off:])
		switch st {
		case FrameOK:
			if IsFooterPayload(payload) {
				res.FrameEnd, res.Sealed = off, true
				return res, nil
			}
			if err := decodeRecord(payload, &rec, known); err != nil {
				return res, &CorruptError{Segment: id, Path: path, Offset: off, Reason: err.Error()}
			}
			if !rec.IsMarker() {
				lastSeq = rec.Seq
			}
			if err := fn(off, size, &rec); err != nil {
				return res, err
			}
			off += int64(size)
			continue
		case FrameEnd:
			res.FrameEnd = off
			if next := findValidFrame(data, off+1, lastSeq); next >= 0 {
				return res, &CorruptError{Segment: id, Path: path, Offset: off, Reason: fmt.Sprintf("zeroed frame header followed by a valid frame at %d", next)}
			}
			return res, nil
		}
		res.FrameEnd = off
		if damagedFooterAt(data, off) {
			res.Sealed = true
			return res, nil
		}
		reason := "frame runs past the end of the file"
		if st == FrameBad {
			reason = "frame length or checksum is wrong"
		}
		if next := findValidFrame(data, off+1, lastSeq); next >= 0 {
			return res, &CorruptError{Segment: id, Path: path, Offset: off, Reason: fmt.Sprintf("%s, and a valid frame follows at %d", reason, next)}
		}
		res.Torn = &CorruptError{Segment: id, Path: path, Offset: off, Reason: reason}
		return res, nil
	}
}

// damagedFooterAt reports whether the damaged frame at off is the footer of
// a sealed segment: its body starts with the footer magic, or the trailer
// points at it.
func damagedFooterAt(data []byte, off int64) bool {
	if body := off + FrameHeaderSize; body+4 <= int64(len(data)) && IsFooterPayload(data[body:]) {
		return true
	}
	n := int64(len(data))
	if n-TrailerSize < off {
		return false
	}
	trailer := data[n-TrailerSize:]
	return bytes.Equal(trailer[8:], trailerMagic[:]) && int64(binary.BigEndian.Uint64(trailer[:8])) == off
}

// findValidFrame returns the offset of the first position at or after from
// where a whole frame starts that holds a footer, or an event record after
// sequence afterSeq, with a valid CRC; or -1. It is the evidence that
// separates corruption from a torn tail, so it looks at every byte; runs of
// zeros are skipped quickly, and the CRC is computed only where the payload
// starts like a record or a footer.
func findValidFrame(data []byte, from int64, afterSeq uint64) int64 {
	var rec Record
	n := int64(len(data))
	for p := from; p+FrameHeaderSize < n; p++ {
		if data[p] == 0 {
			// A frame's length has a non-zero byte within its first four,
			// so jump to just before the next non-zero byte.
			q := nextNonZero(data, p)
			if q >= n {
				return -1
			}
			if q-3 > p {
				p = q - 3
			}
		}
		if first := p + FrameHeaderSize; first >= n || (data[first] != recordArrayByte && data[first] != footerMagic[0]) {
			continue
		}
		payload, _, st := DecodeFrame(data[p:])
		if st != FrameOK {
			continue
		}
		if IsFooterPayload(payload) || (DecodeRecord(payload, &rec) == nil && (rec.IsMarker() || rec.Seq > afterSeq)) {
			return p
		}
	}
	return -1
}

// nextNonZero returns the index of the first non-zero byte at or after p,
// or len(data), reading a word at a time through zero runs.
func nextNonZero(data []byte, p int64) int64 {
	n := int64(len(data))
	for p < n && p%8 != 0 {
		if data[p] != 0 {
			return p
		}
		p++
	}
	for p+8 <= n && binary.LittleEndian.Uint64(data[p:]) == 0 {
		p += 8
	}
	for p < n && data[p] == 0 {
		p++
	}
	return p
}
