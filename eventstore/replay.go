package eventstore

import (
	"bytes"
	"context"
	"errors"
	"io"
	"iter"
	"os"
	"sync"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/ctxerr"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// errStopScan ends a segment scan early; it never escapes Replay.
var errStopScan = errors.New("stop scan")

// Replay yields the events in region from global sequence from (0 or 1:
// the first), like Query, but reads the segment files sequentially with the
// cold-start scanner instead of looking up each event in the index: the
// fast path for projections catching up on a long history. It stops at the
// newest event visible when it was called.
//
// On more than one core, and for more than a thousand events, Replay reads
// ahead of the loop in up to two goroutines (readahead.go), so that
// checking and decoding the frames overlaps with the loop's own work; the
// records, their order and where an error comes are the same either way.
// Breaking out of the loop stops them, and the loop ends only after they
// have exited and closed their files.
func (s *Store) Replay(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error] {
	return func(yield func(batpak.Record, error) bool) {
		if err := s.checkRead(ctx); err != nil {
			yield(batpak.Record{}, err)
			return
		}
		v := s.ix.snapshot()
		last := v.len()
		from = max(from, region.FromSequence, 1)
		if region.ToSequence != 0 {
			last = min(last, region.ToSequence)
		}
		if from > last {
			return
		}
		first, end := v.at(from).Pos.Segment, v.at(last).Pos.Segment
		if n := readAheadProducers(first, end, last-from+1); n > 0 {
			s.replayAhead(ctx, region, from, last, first, end, n, yield)
			return
		}
		s.replayInline(ctx, region, from, last, first, end, yield)
	}
}

// replayInline is Replay in the reading goroutine: it scans a segment while
// the consumer waits.
func (s *Store) replayInline(ctx context.Context, region batpak.Region, from, last uint64, first, end uint32, yield func(batpak.Record, error) bool) {
	for id := first; id <= end; id++ {
		more, err := s.replaySegment(id, from, last, func(rec *segment.Record, pos segment.Position, _ *stream) bool {
			r := s.record(rec, pos)
			if err := ctxerr.Of(ctx); err != nil {
				yield(batpak.Record{}, err)
				return false
			}
			if !region.Match(&r) {
				return true
			}
			r, err := s.readable(r)
			return yield(r, err) && err == nil
		})
		if err != nil {
			yield(batpak.Record{}, s.readFailed(err))
			return
		}
		if !more {
			return
		}
	}
}

// scanFunc receives each visible event of a segment scan with its position
// and its stream; returning false stops the scan.
type scanFunc func(rec *segment.Record, pos segment.Position, st *stream) bool

// replaySegment scans segment id for the visible events with sequences in
// [from, last]. It opens the file and takes its positions from the index
// together, under the compaction lock, so both describe the same file even
// if compaction replaces it during the scan. It returns false once fn did.
func (s *Store) replaySegment(id uint32, from, last uint64, fn scanFunc) (bool, error) {
	var f vfs.File
	var held []byte // a read-only store's file on a file system that cannot map
	var release func() error
	var err error
	if s.readOnly {
		// The file held since open, which the index describes, whatever a
		// writer renamed over its path since.
		if f, err = s.reader.OpenHeld(id); err == nil && f == nil {
			held, release, err = s.reader.MapHeld(id)
		}
	} else {
		s.compactMu.RLock()
		f, err = s.fs.OpenFile(s.segmentPath(id), os.O_RDONLY, 0)
	}
	v := s.ix.snapshot()
	if !s.readOnly {
		s.compactMu.RUnlock()
	}
	if err != nil {
		return false, err
	}
	if held != nil {
		defer func() { _ = release() }()
		return s.scanSegment(bytes.NewReader(held), int64(len(held)), func() ([]byte, error) { return held, nil }, v, id, from, last, fn)
	}
	defer func() { _ = f.Close() }()
	fi, err := f.Stat()
	if err != nil {
		return false, err
	}
	// The whole file, mapped only if the scan meets anything but whole
	// valid frames.
	var data []byte
	defer func() {
		if release != nil {
			_ = release()
		}
	}()
	whole := func() ([]byte, error) {
		if data == nil {
			m, rel, err := segment.MapOpen(f)
			if err != nil {
				return nil, err
			}
			data, release = m, rel
		}
		return data, nil
	}
	return s.scanSegment(f, fi.Size(), whole, v, id, from, last, fn)
}

// scanSegment is replaySegment over the size bytes of r, the segment that
// v's positions describe; whole returns them all at once.
func (s *Store) scanSegment(r io.ReaderAt, size int64, whole func() ([]byte, error), v view, id uint32, from, last uint64, fn scanFunc) (bool, error) {
	var start int64
	if e := v.at(from); e.Pos.Segment == id {
		start = int64(e.Pos.Offset)
	}
	if e := v.at(last); e.Pos.Segment == id {
		size = min(size, int64(e.Pos.Offset)+int64(e.Pos.Length))
	}
	buf := scanBufs.Get().(*[]byte)
	defer scanBufs.Put(buf)
	more := true
	_, err := segment.ScanReader(r, size, *buf, whole, id, s.segmentPath(id), segment.ScanOptions{From: start, Known: v.known}, func(off int64, size int, rec *segment.Record) error {
		if rec.IsMarker() || rec.Seq < from {
			return nil
		}
		if rec.Seq > last {
			return errStopScan
		}
		e := v.at(rec.Seq)
		if !v.visible(e) {
			return nil
		}
		if !fn(rec, segment.Position{Segment: id, Offset: uint32(off), Length: uint32(size)}, v.streams.at(e.Stream)) {
			more = false
			return errStopScan
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		err = nil
	}
	return more, err
}

// scanBufSize is the buffer a replay reads a segment through: whole frames
// are read from it while it stays in the CPU's cache. A larger frame is
// read from a mapping of the file.
const scanBufSize = 256 << 10

var scanBufs = sync.Pool{New: func() any { b := make([]byte, scanBufSize); return &b }}
