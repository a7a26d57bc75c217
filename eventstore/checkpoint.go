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
// writer after a sync so it covers only durable events.
type snapshot struct {
	entries entryLog
	streams streamLog
	tips    []streamTip
	keys    []segment.IdempotencyRecord
	segment uint32
	end     int64
	lastID  [16]byte
	sorted  bool // ids increase with the sequence
}

// takeSnapshot snapshots the index, which must be durable up to frame end
// end of segment seg, the active segment (seg 0: there is none; the last
// event's frame end then). It runs under the commit mutex after a sync, or
// after the pipeline stopped.
func (s *Store) takeSnapshot(seg uint32, end int64) *snapshot {
	ix := s.ix
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	sn := &snapshot{entries: ix.entries, streams: ix.streams, tips: make([]streamTip, ix.streams.len()),
		lastID: ix.lastID, sorted: ix.idsSorted}
	for i := range ix.streams.len() {
		st := ix.streams.at(i)
		sn.tips[i] = streamTip{version: st.version(), hash: st.lastHash, deleted: st.isDeleted()}
	}
	sn.keys = make([]segment.IdempotencyRecord, 0, len(ix.keys))
	for _, k := range ix.keys {
		sn.keys = append(sn.keys, k)
	}
	if seg != 0 {
		sn.segment, sn.end = seg, end
	} else if n := ix.entries.len(); n > 0 {
		p := ix.entries.at(n).pos
		sn.segment, sn.end = p.Segment, int64(p.Offset)+int64(p.Length)
	}
	return sn
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
	return s.writeSnapshot(s.takeSnapshot(s.pipe.position()))
}

// writeSnapshot encodes sn and replaces the checkpoint file atomically:
// temp file, sync, rename, sync directory. The caller holds ckptMu, since
// before sn was taken.
func (s *Store) writeSnapshot(sn *snapshot) error {
	if sn.entries.len() == 0 {
		return nil
	}
	c := &segment.Checkpoint{
		LastSeq: sn.entries.len(), Segment: sn.segment, FrameEnd: uint64(sn.end),
		LastID: sn.lastID, IDsUnsorted: !sn.sorted,
		Streams: make([]segment.CheckpointStream, sn.streams.len()),
		Scopes:  sn.streams.scopes,
		Keys:    sn.keys,
	}
	for i := range sn.streams.len() {
		st, t := sn.streams.at(i), &sn.tips[i]
		c.Streams[i] = segment.CheckpointStream{Entity: st.entity, Scope: st.scope, Version: t.version, LastHash: t.hash, Deleted: t.deleted}
	}
	if err := c.Validate(); err != nil {
		return err
	}
	parts := segment.EncodeCheckpointParts(c, func(first uint64, dst []segment.IndexEntry) {
		for i := range dst {
			seq := first + uint64(i)
			e := sn.entries.at(seq)
			dst[i] = segment.IndexEntry{
				Seq: seq, Kind: e.kind, Flags: e.flags, Entity: e.stream, Scope: c.Streams[e.stream].Scope,
				Segment: e.pos.Segment, Offset: e.pos.Offset, Length: e.pos.Length,
			}
		}
	})
	if err := s.replaceFile(CheckpointFileName, parts...); err != nil {
		return fmt.Errorf("eventstore: write checkpoint: %w", err)
	}
	s.stats.checkpoints.Add(1)
	return nil
}
