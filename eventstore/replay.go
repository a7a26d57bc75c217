package eventstore

import (
	"errors"
	"iter"

	"github.com/batpak-go/batpak/segment"
)

// errStopScan ends a segment scan early; it never escapes Replay.
var errStopScan = errors.New("stop scan")

// Replay yields the events in region from global sequence from (0 or 1:
// the first), like Query, but reads the segment files sequentially with the
// cold-start scanner instead of looking up each event in the index: the
// fast path for projections catching up on a long history. It stops at the
// newest event visible when it was called.
func (s *Store) Replay(region Region, from uint64) iter.Seq2[Record, error] {
	return func(yield func(Record, error) bool) {
		if err := s.checkOpen(); err != nil {
			yield(Record{}, err)
			return
		}
		entries := s.ix.snapshot()
		last := entries.len()
		from = max(from, region.FromSequence, 1)
		if region.ToSequence != 0 {
			last = min(last, region.ToSequence)
		}
		if from > last {
			return
		}
		start, end := entries.at(from).pos, entries.at(last).pos
		stopped := false
		for id := start.Segment; id <= end.Segment && !stopped; id++ {
			err := s.replaySegment(id, start, end, func(rec *segment.Record, pos segment.Position) bool {
				if rec.IsMarker() || rec.Seq < from {
					return true
				}
				r := recordFromSegment(rec, pos)
				if !region.Match(&r) {
					return true
				}
				if !yield(r, nil) {
					stopped = true
					return false
				}
				return true
			})
			if err != nil {
				yield(Record{}, err)
				return
			}
		}
	}
}

// replaySegment scans segment id: from start's offset in the first segment,
// up to the end of the frame at end in the last one.
func (s *Store) replaySegment(id uint32, start, end segment.Position, fn func(*segment.Record, segment.Position) bool) error {
	data, release, err := segment.MapFile(s.fs, s.segmentPath(id))
	if err != nil {
		return err
	}
	defer func() { _ = release() }()
	var from int64
	if id == start.Segment {
		from = int64(start.Offset)
	}
	if id == end.Segment {
		data = data[:int64(end.Offset)+int64(end.Length)]
	}
	_, err = segment.Scan(data, id, s.segmentPath(id), from, func(off int64, size int, rec *segment.Record) error {
		if !fn(rec, segment.Position{Segment: id, Offset: uint32(off), Length: uint32(size)}) {
			return errStopScan
		}
		return nil
	})
	if errors.Is(err, errStopScan) {
		return nil
	}
	return err
}
