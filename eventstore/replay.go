package eventstore

import (
	"context"
	"errors"
	"iter"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/ctxerr"
	"github.com/batpak-go/batpak/segment"
)

// errStopScan ends a segment scan early; it never escapes Replay.
var errStopScan = errors.New("stop scan")

// Replay yields the events in region from global sequence from (0 or 1:
// the first), like Query, but reads the segment files sequentially with the
// cold-start scanner instead of looking up each event in the index: the
// fast path for projections catching up on a long history. It stops at the
// newest event visible when it was called.
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
		first, end := v.at(from).pos.Segment, v.at(last).pos.Segment
		for id := first; id <= end; id++ {
			more, err := s.replaySegment(id, from, last, func(rec *segment.Record, pos segment.Position) bool {
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
}

// replaySegment scans segment id for the visible events with sequences in
// [from, last]. It maps the file and takes its positions from the index
// together, under the compaction lock, so both describe the same file even
// if compaction replaces it during the scan. It returns false once fn did.
func (s *Store) replaySegment(id uint32, from, last uint64, fn func(*segment.Record, segment.Position) bool) (bool, error) {
	var data []byte
	var release func() error
	var err error
	if s.readOnly {
		// The file held since open, which the index describes, whatever a
		// writer renamed over its path since.
		data, release, err = s.reader.MapHeld(id)
	} else {
		s.compactMu.RLock()
		data, release, err = segment.MapFile(s.fs, s.segmentPath(id))
	}
	v := s.ix.snapshot()
	if !s.readOnly {
		s.compactMu.RUnlock()
	}
	if err != nil {
		return false, err
	}
	defer func() { _ = release() }()
	return s.scanSegment(data, v, id, from, last, fn)
}

// scanSegment is replaySegment over data, the segment's bytes that v's
// positions describe.
func (s *Store) scanSegment(data []byte, v view, id uint32, from, last uint64, fn func(*segment.Record, segment.Position) bool) (bool, error) {
	var start int64
	if e := v.at(from); e.pos.Segment == id {
		start = int64(e.pos.Offset)
	}
	if e := v.at(last); e.pos.Segment == id {
		data = data[:min(int64(len(data)), int64(e.pos.Offset)+int64(e.pos.Length))]
	}
	more := true
	_, err := segment.ScanWith(data, id, s.segmentPath(id), segment.ScanOptions{From: start, Known: v.known}, func(off int64, size int, rec *segment.Record) error {
		if rec.IsMarker() || rec.Seq < from {
			return nil
		}
		if rec.Seq > last {
			return errStopScan
		}
		if !v.visible(v.at(rec.Seq)) {
			return nil
		}
		if !fn(rec, segment.Position{Segment: id, Offset: uint32(off), Length: uint32(size)}) {
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
