package eventstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak/segment"
)

// Whether Open trusts the checkpoint, and the durable floor it proves;
// loadckpt.go decodes a trusted one into the index.

// How much of the checkpoint's segment around its frame end a load asks the
// kernel to read ahead: the last covered frame and the frames after it.
const prefetchBack, prefetchAhead = 64 << 10, 1 << 20

// loadCheckpoint loads a valid checkpoint into the index and returns it, or
// returns nil (index untouched) when there is none or it cannot be trusted.
//
// A valid checkpoint naming a segment after the last one on disk proves
// that segment files holding acknowledged events are gone: that is an
// error (ErrCorrupt, like a missing middle segment), never silent loss.
func (s *Store) loadCheckpoint(ids []uint32) (*segment.Checkpoint, durableFloor, error) {
	var floor durableFloor
	path := filepath.Join(s.dir, CheckpointFileName)
	if !s.readOnly {
		_ = s.fs.Remove(path + ".tmp")
	}
	data, release, err := segment.MapFile(s.fs, path)
	if err != nil {
		if !errors.Is(err, os.ErrNotExist) {
			s.coldStart.CheckpointIgnored = err.Error()
		}
		return nil, floor, nil
	}
	used := false // the index keeps the mapping
	defer func() {
		if !used {
			_ = release()
		}
	}()
	ignore := func(reason string) (*segment.Checkpoint, durableFloor, error) {
		s.coldStart.CheckpointIgnored = reason
		s.log.Warn("ignoring checkpoint", zap.String("reason", reason))
		return nil, floor, nil
	}
	c, err := segment.OpenCheckpointBlocks(data)
	if err != nil {
		return ignore(err.Error())
	}
	blocks := checkBlocksAsync(c)
	defer blocks.wait() // before the release above: they read data
	if err := c.CheckTables(); err != nil {
		return ignore(err.Error())
	}
	// The checkpoint is whole (its CRCs hold), so the store wrote it, after
	// a sync: whatever else is wrong with it, its watermark is durable.
	floor = durableFloor{segment: c.Segment, end: int64(c.FrameEnd)}
	// While the blocks decode, have the disk fetch what comes next: the
	// last covered frame (checked below) and the frames after it.
	segment.Prefetch(s.fs, s.segmentPath(c.Segment), int64(c.FrameEnd)-prefetchBack, prefetchBack+prefetchAhead)
	if c.LastSeq == 0 {
		return ignore("empty")
	}
	if len(ids) == 0 || c.Segment > ids[len(ids)-1] {
		// A read-only open may race a writer that created the segment
		// after the listing: only a file that is really absent is missing.
		f, err := s.fs.OpenFile(s.segmentPath(c.Segment), os.O_RDONLY, 0)
		if errors.Is(err, os.ErrNotExist) {
			return nil, floor, &segment.CorruptError{Segment: c.Segment, Path: s.segmentPath(c.Segment),
				Reason: fmt.Sprintf("segment file is missing (the checkpoint covers %d events up to it)", c.LastSeq)}
		}
		if f != nil {
			_ = f.Close()
		}
		return ignore(fmt.Sprintf("names segment %d, created after the directory was listed", c.Segment))
	}
	if c.Segment < ids[0] {
		return ignore(fmt.Sprintf("names segment %d, which does not exist", c.Segment))
	}
	base := &mapped{data: data}
	ix, err := indexFromCheckpoint(c, base, blocks)
	if err != nil {
		return ignore(err.Error())
	}
	// The last covered frame must still be on disk as it was, and so must
	// the frames after it up to the watermark.
	last := ix.entries.at(c.LastSeq)
	lastEnd := int64(last.Pos.Offset) + int64(last.Pos.Length)
	var reason string
	switch {
	case last.Pos.Segment == c.Segment && lastEnd <= int64(c.FrameEnd):
		reason = s.checkFrame(c.LastSeq, c.LastID, last, int64(c.FrameEnd))
	case last.Pos.Segment+1 == c.Segment:
		// The watermark's segment holds no event yet: tombstones only, or
		// nothing (a blank last segment was replaced).
		reason = s.checkFrame(c.LastSeq, c.LastID, last, lastEnd)
		if reason == "" {
			reason = s.checkMarkers(c.Segment, segment.HeaderSize, int64(c.FrameEnd))
		}
	default:
		reason = "watermark disagrees with its last entry"
	}
	if reason != "" {
		return ignore(reason)
	}
	// The streams' sequences and last hashes and the packed chunks'
	// words lie in data.
	base.keep(release)
	used = true
	ix.listRepaired = func(id streamID, found, version int, why error) {
		s.stats.listsRebuilt.Add(1)
		s.log.Warn("checkpoint: a stream's sequences were wrong and were rebuilt from its blocks",
			zap.String("entity", id.entity), zap.String("scope", id.scope), zap.Int("version", version),
			zap.Int("found", found), zap.Error(why))
	}
	ix.hashReread = func(v *view, seq uint64) ([32]byte, error) {
		s.stats.hashesReread.Add(1)
		entity, scope := v.known(seq)
		s.log.Warn("checkpoint: a chunk of the streams' last hashes failed its checksum; a stream's last hash is read from its last frame",
			zap.String("entity", entity), zap.String("scope", scope), zap.Uint64("sequence", seq))
		return s.hashOf(v, seq)
	}
	s.ix = ix
	s.coldStart.EventsFromCheckpoint = c.LastSeq
	return &c.Checkpoint, floor, nil
}

// holds reports whether the frame rec holds event seq with id: the event
// itself, or its stub in a hole frame (compaction removed the event).
func holds(rec *segment.Record, seq uint64, id [16]byte) bool {
	if rec.Kind != segment.KindHole {
		return rec.Seq == seq && rec.ID == id
	}
	stubs, err := segment.DecodeStubs(rec.Payload)
	if err != nil {
		return false
	}
	for _, st := range stubs {
		if st.Seq == seq {
			return st.ID == id
		}
	}
	return false
}

// durableFloor is the point below which a checkpoint proves the log was
// durable: every segment before segment, and segment up to end. Damage or a
// cut below it is corruption, never a torn write.
type durableFloor struct {
	segment uint32
	end     int64
}

// below returns why a segment whose frames stop at cut (after a torn or
// incomplete tail) or end at frameEnd breaks the floor, or "".
func (f durableFloor) below(id uint32, cut, frameEnd int64) string {
	switch {
	case f.segment == 0 || id != f.segment:
		return ""
	case cut >= 0 && cut < f.end:
		return fmt.Sprintf("damaged below the checkpoint's durable watermark %d", f.end)
	case frameEnd < f.end:
		return fmt.Sprintf("frames end at %d, below the checkpoint's durable watermark %d", frameEnd, f.end)
	}
	return ""
}

// checkFrame verifies that the frame entry e of event seq points at holds
// that event (with id), and that the frames between it and the watermark frameEnd (a
// batch's COMMIT marker, tombstones) are still whole: a tail cut after the
// checkpoint was written must not be covered up by it.
func (s *Store) checkFrame(seq uint64, id [16]byte, e entry, frameEnd int64) string {
	p := e.Pos
	n := frameEnd - int64(p.Offset)
	if p.Length > segment.MaxFramePayload+segment.FrameHeaderSize || n < int64(p.Length) || n > int64(p.Length)+maxMarkerBytes {
		return "watermark disagrees with its last entry"
	}
	buf, err := s.readSegment(p.Segment, int64(p.Offset), n)
	if err != nil {
		return fmt.Sprintf("last covered frame unreadable: %v", err)
	}
	payload, size, st := segment.DecodeFrame(buf)
	var rec segment.Record
	if st != segment.FrameOK || size != int(p.Length) || segment.DecodeRecord(payload, &rec) != nil || !holds(&rec, seq, id) {
		return "last covered frame does not match"
	}
	return markersOnly(buf[size:])
}

// maxMarkerBytes bounds the system frames a checkpoint's watermark may
// lie beyond its last event; past it, open recovers without the checkpoint.
const maxMarkerBytes = 1 << 20

// checkMarkers verifies that the frames of segment seg from from to the
// watermark to are whole system frames (tombstones, batch markers).
func (s *Store) checkMarkers(seg uint32, from, to int64) string {
	if to < from || to-from > maxMarkerBytes {
		return "watermark disagrees with its last entry"
	}
	buf, err := s.readSegment(seg, from, to-from)
	if err != nil {
		return fmt.Sprintf("frames before the watermark unreadable: %v", err)
	}
	return markersOnly(buf)
}

// readSegment reads n bytes of segment seg at off.
func (s *Store) readSegment(seg uint32, off, n int64) ([]byte, error) {
	f, err := s.fs.OpenFile(s.segmentPath(seg), os.O_RDONLY, 0)
	if err != nil {
		return nil, err
	}
	defer func() { _ = f.Close() }()
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		return nil, err
	}
	return buf, nil
}

// markersOnly reports why buf is not a run of whole system frames, or "".
func markersOnly(buf []byte) string {
	var rec segment.Record
	for off := 0; off < len(buf); {
		payload, size, st := segment.DecodeFrame(buf[off:])
		if st != segment.FrameOK || segment.DecodeRecord(payload, &rec) != nil || !rec.IsMarker() {
			return "frames between the last covered event and the watermark are damaged"
		}
		off += size
	}
	return ""
}
