package segment

import (
	"fmt"
	"io"

	"github.com/batpak-go/batpak/vfs"
	"github.com/edsrzf/mmap-go"
)

// ScanReader is [ScanWith] over the first size bytes of r, read into buf
// piece by piece with r.ReadAt instead of mapped. Where reading a fresh
// mapping costs a page-table entry per page on first touch, a read from the
// page cache into a buffer that stays in the CPU cache is several times
// faster, and scales across goroutines.
//
// It reads whole valid frames and the footer itself. At anything else (the
// end of the frames, damage, a frame larger than buf, a bad header) it calls whole for
// the same size bytes and finishes with ScanWith from that frame, with the
// last sequence seen as AfterSeq, so every verdict on damage is ScanWith's.
// fn sees the frames in the same order and with the same arguments.
func ScanReader(r io.ReaderAt, size int64, buf []byte, whole func() ([]byte, error), id uint32, path string, opts ScanOptions, fn ScanFunc) (ScanResult, error) {
	var res ScanResult
	finish := func(from int64, afterSeq uint64) (ScanResult, error) {
		data, err := whole()
		if err != nil {
			return res, err
		}
		if int64(len(data)) > size {
			data = data[:size]
		}
		o := opts
		o.From, o.AfterSeq = from, afterSeq
		return ScanWith(data, id, path, o, fn)
	}
	if size < HeaderSize || len(buf) < HeaderSize {
		return finish(opts.From, opts.AfterSeq)
	}
	if err := readFull(r, buf[:HeaderSize], 0); err != nil {
		return res, fmt.Errorf("read %s: %w", path, err)
	}
	h, err := DecodeHeader(buf[:HeaderSize])
	if err != nil || h.Segment != id {
		return finish(opts.From, opts.AfterSeq)
	}
	res.Header = h
	off := max(opts.From, HeaderSize)
	if off > size {
		return finish(opts.From, opts.AfterSeq)
	}
	var rec Record
	lastSeq := opts.AfterSeq
	base, n := off, 0 // buf[:n] holds the bytes at base
	for {
		w := buf[off-base : n]
		payload, fsize, st := DecodeFrame(w)
		if st != FrameOK {
			if off == size {
				// No bytes left: ScanWith ends here too, with nothing
				// after to look at.
				res.FrameEnd = off
				return res, nil
			}
			// A footer, whole or damaged, ends the frames whatever its
			// CRC, as in ScanWith: its index need not be read.
			if len(w) >= FrameHeaderSize+len(footerMagic) && !allZero(w[:FrameHeaderSize]) && IsFooterPayload(w[FrameHeaderSize:]) {
				res.FrameEnd, res.Sealed = off, true
				return res, nil
			}
			// The frame may run past the bytes read so far: read from it.
			if base+int64(n) < size && (off > base || n < len(buf)) {
				m := int(min(int64(len(buf)), size-off))
				if err := readFull(r, buf[:m], off); err != nil {
					return res, fmt.Errorf("read %s: %w", path, err)
				}
				base, n = off, m
				continue
			}
			return finish(off, lastSeq)
		}
		if IsFooterPayload(payload) {
			res.FrameEnd, res.Sealed = off, true
			return res, nil
		}
		if err := decodeRecord(payload, &rec, opts.Known); err != nil {
			return res, &CorruptError{Segment: id, Path: path, Offset: off, Reason: err.Error()}
		}
		if !rec.IsMarker() {
			lastSeq = rec.Seq
		}
		if err := fn(off, fsize, &rec); err != nil {
			return res, err
		}
		off += int64(fsize)
	}
}

// readFull reads len(b) bytes at off, or fails.
func readFull(r io.ReaderAt, b []byte, off int64) error {
	n, err := r.ReadAt(b, off)
	if n == len(b) {
		return nil
	}
	if err == nil || err == io.EOF {
		err = io.ErrUnexpectedEOF
	}
	return err
}

// MapOpen maps the whole of the open file f read-only for [ScanReader]'s
// whole, or reads it into memory on a file system that cannot map. f stays
// open; release unmaps.
func MapOpen(f vfs.File) (data []byte, release func() error, err error) {
	fi, err := f.Stat()
	if err != nil {
		return nil, nil, err
	}
	if of := vfs.OSFile(f); of != nil && fi.Size() > 0 {
		m, err := mmap.Map(of, mmap.RDONLY, 0)
		if err != nil {
			return nil, nil, fmt.Errorf("map %s: %w", of.Name(), err)
		}
		return m, m.Unmap, nil
	}
	data = make([]byte, fi.Size())
	if _, err := f.ReadAt(data, 0); err != nil && err != io.EOF {
		return nil, nil, err
	}
	return data, func() error { return nil }, nil
}
