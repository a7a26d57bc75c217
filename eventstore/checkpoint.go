package eventstore

import (
	"fmt"
	"os"
	"path/filepath"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak/segment"
)

// CheckpointFileName is the checkpoint file in the store directory.
const CheckpointFileName = "checkpoint"

// snapshot is a consistent view of the index for a checkpoint, taken by the
// writer after a sync so it covers only durable events. It does not copy
// the streams' tips: writeSnapshot reads them later, as they were at the
// snapshot's last sequence (see tips).
type snapshot struct {
	entries entryLog
	streams streamLog
	deleted []uint32 // the index's deleted streams when it was taken
	keys    []segment.IdempotencyRecord
	segment uint32
	end     int64
	lastID  [16]byte
	sorted  bool // ids increase with the sequence
}

// takeSnapshot snapshots the index, which must be durable up to frame end
// end of segment seg (see watermark; seg 0: the store is empty). It runs
// under the commit mutex after a sync, or after the pipeline stopped.
func (s *Store) takeSnapshot(seg uint32, end int64) *snapshot {
	ix := s.ix
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	sn := &snapshot{entries: ix.entries, streams: ix.streams, deleted: ix.deleted, lastID: ix.lastID, sorted: ix.idsSorted}
	sn.keys = make([]segment.IdempotencyRecord, 0, len(ix.keys))
	for _, k := range ix.keys {
		sn.keys = append(sn.keys, k)
	}
	sn.segment, sn.end = seg, end
	return sn
}

// watermark returns where the frames a checkpoint written now would cover
// end: the active segment's end, or, with none (the last segment is
// sealed and the next not yet made), where the frames of the segment
// holding the last event end, at its footer. Not at that event's frame:
// the commit marker of its batch, and tombstones, may follow it, and a
// scan from a watermark before a commit marker would find the marker
// without its batch. The pipeline must not be committing.
func (s *Store) watermark() (uint32, int64, error) {
	if seg, end := s.pipe.position(); seg != 0 {
		return seg, end, nil
	}
	n := s.ix.lastSeq()
	if n == 0 {
		return 0, 0, nil
	}
	id := s.ix.entries.at(n).Pos.Segment
	data, release, err := segment.MapFile(s.fs, s.segmentPath(id))
	if err != nil {
		return 0, 0, fmt.Errorf("eventstore: checkpoint: %w", err)
	}
	defer func() { _ = release() }()
	_, end, err := segment.ReadFooter(data, id)
	if err != nil {
		return 0, 0, fmt.Errorf("eventstore: checkpoint: where the frames of sealed segment %d end: %w", id, err)
	}
	return id, end, nil
}

// checkpointInBackground is the commit pipeline's periodic checkpoint: it
// snapshots the index, durable up to frame end end of segment seg, and
// writes it on another goroutine, which calls done when finished. It runs
// under the commit mutex.
func (s *Store) checkpointInBackground(seg uint32, end int64, done func()) bool {
	// The snapshot is taken and written under ckptMu, which Compact holds
	// while it moves frames: a snapshot taken before a compaction and
	// written after it would record the old offsets. If a compaction runs
	// now, a later commit tries again.
	if !s.ckptMu.TryLock() {
		return false
	}
	sn := s.takeSnapshot(seg, end)
	s.ckptWG.Add(1)
	go func() {
		defer s.ckptWG.Done()
		defer done()
		defer s.ckptMu.Unlock()
		if err := s.writeSnapshot(sn); err != nil {
			s.log.Warn("periodic checkpoint failed", zap.Error(err))
		}
	}()
	return true
}

// hasCheckpoint reports whether the checkpoint file exists: Compact removes
// it, and Close must then write it again even if nothing was appended.
func (s *Store) hasCheckpoint() bool {
	f, err := s.fs.OpenFile(filepath.Join(s.dir, CheckpointFileName), os.O_RDONLY, 0)
	if err != nil {
		return false
	}
	_ = f.Close()
	return true
}

// writeCheckpoint writes a checkpoint of everything published. The
// pipeline must have stopped and the active segment been synced.
func (s *Store) writeCheckpoint() error {
	s.ckptMu.Lock()
	defer s.ckptMu.Unlock()
	seg, end, err := s.watermark()
	if err != nil {
		return err
	}
	return s.writeSnapshot(s.takeSnapshot(seg, end))
}

// writeSnapshot encodes sn and replaces the checkpoint file atomically:
// temp file, sync, rename, sync directory. The caller holds ckptMu, since
// before sn was taken.
func (s *Store) writeSnapshot(sn *snapshot) error {
	if sn.entries.len() == 0 {
		return nil
	}
	// Lists and last hashes still the old checkpoint's are checked before
	// they are written under a new checksum.
	s.ix.settleLists()
	if err := s.ix.settleHashes(); err != nil {
		return fmt.Errorf("eventstore: write checkpoint: %w", err)
	}
	c := &segment.Checkpoint{
		LastSeq: sn.entries.len(), Segment: sn.segment, FrameEnd: uint64(sn.end),
		LastID: sn.lastID, IDsUnsorted: !sn.sorted,
		Streams: make([]segment.CheckpointStream, sn.streams.len()),
		Scopes:  sn.streams.scopes,
		Keys:    sn.keys,
	}
	if err := s.tips(sn, c.Streams); err != nil {
		return fmt.Errorf("eventstore: write checkpoint: %w", err)
	}
	if err := c.Validate(); err != nil {
		return err
	}
	// Full chunks are written as the index holds them; the last block is
	// packed from the snapshot's plain chunk.
	parts := segment.CheckpointParts(c, func(i int) *segment.PackedBlock {
		if i < len(sn.entries.packed) {
			return sn.entries.packed[i]
		}
		return segment.PackEntries(sn.entries.tail[:sn.entries.n&(entryChunk-1)])
	}, s.seqsAt(sn, c.Streams))
	if err := s.replaceFile(CheckpointFileName, parts); err != nil {
		return fmt.Errorf("eventstore: write checkpoint: %w", err)
	}
	s.stats.checkpoints.Add(1)
	return nil
}

// tipsStep is how many streams tips reads under one hold of the index's
// read lock: appends publish between two holds.
const tipsStep = 4096

// tips fills out, one row a stream of sn, with each stream's name, version
// and last hash as they were at sn's last sequence, and whether it was
// deleted then. It walks the streams a step at a time under the index's
// read lock, so that a checkpoint of millions of streams does not hold up
// the appends published meanwhile: a stream's sequences only grow, so its
// version then is the number of them up to the last sequence, and its last
// hash is its current one unless it has events after that; for those few
// streams the hash is read from the frame (or stub) of the event at that
// version. The caller holds ckptMu, so no compaction moves a frame before
// it is read.
func (s *Store) tips(sn *snapshot, out []segment.CheckpointStream) error {
	deleted := make(map[uint32]bool, len(sn.deleted))
	for _, i := range sn.deleted {
		deleted[i] = true
	}
	last := sn.entries.len()
	type moved struct {
		i   uint32 // a stream with events after last
		seq uint64 // its last event up to last
	}
	var later []moved
	for lo := uint32(0); lo < uint32(len(out)); lo += tipsStep {
		s.ix.mu.RLock()
		for i := lo; i < min(lo+tipsStep, uint32(len(out))); i++ {
			st := sn.streams.at(i)
			l := st.list()
			n := l.len()
			if n > 0 && l.last() > last {
				if n = l.search(last + 1); n > 0 {
					later = append(later, moved{i, l.at(n - 1)})
				}
			}
			h, ok := sn.streams.lastHash(st)
			if !ok {
				s.ix.mu.RUnlock()
				return fmt.Errorf("the last hash of %v: its checkpoint chunk is damaged, and settleHashes did not replace it", sn.streams.id(st))
			}
			out[i] = segment.CheckpointStream{Entity: st.entity(), Scope: st.scope, Version: uint64(n), LastHash: h, Deleted: deleted[i]}
		}
		s.ix.mu.RUnlock()
	}
	v := view{entryLog: sn.entries, streams: sn.streams}
	for _, m := range later {
		h, err := s.hashOf(&v, m.seq)
		if err != nil {
			return err
		}
		out[m.i].LastHash = h
	}
	return nil
}

// seqsAt returns, for the checkpoint of sn whose streams are rows, the
// sequences of stream i up to sn's last: the first rows[i].Version of its
// list. Streams are asked for in order; it reads their lists under the
// index's read lock tipsStep at a time. A list's first elements never
// change, so they are read after the lock is let go.
func (s *Store) seqsAt(sn *snapshot, rows []segment.CheckpointStream) func(i int) ([]uint32, bool) {
	var lists [tipsStep]seqList
	return func(i int) ([]uint32, bool) {
		if i%tipsStep == 0 {
			s.ix.mu.RLock()
			for j := range min(tipsStep, len(rows)-i) {
				lists[j] = sn.streams.at(uint32(i + j)).list()
			}
			s.ix.mu.RUnlock()
		}
		l := lists[i%tipsStep]
		n := int(rows[i].Version)
		if l.wide {
			n *= 2
		}
		return l.w[:n], l.wide
	}
}

// hashOf reads the hash of event seq of v from its frame, or from its stub
// in a hole frame.
func (s *Store) hashOf(v *view, seq uint64) ([32]byte, error) {
	pos := v.at(seq).Pos
	var rec segment.Record
	rec.Entity, rec.Scope = v.known(seq)
	if err := s.readFrame(pos, &rec); err != nil {
		return [32]byte{}, err
	}
	if rec.Kind == segment.KindHole {
		st, err := s.stubAt(pos, &rec, seq)
		if err != nil {
			return [32]byte{}, err
		}
		if st != nil {
			return st.Hash, nil
		}
	} else if rec.Seq == seq && !rec.IsMarker() {
		return rec.Hash, nil
	}
	return [32]byte{}, &segment.CorruptError{Segment: pos.Segment, Path: s.segmentPath(pos.Segment), Offset: int64(pos.Offset),
		Reason: fmt.Sprintf("the frame the index gives for sequence %d holds neither it nor its stub", seq)}
}
