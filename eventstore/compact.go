package eventstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"time"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// CompactOption configures [Store.Compact].
type CompactOption func(*compactConfig)

type compactConfig struct {
	keep   func(*batpak.Record) bool
	reason string
}

// RetainIf removes, from sealed segments, every event for which keep
// returns false (a retention policy, e.g. events older than a year).
func RetainIf(keep func(*batpak.Record) bool) CompactOption {
	return func(c *compactConfig) { c.keep = keep }
}

// WithReason records why events were removed; it is stored with their stubs.
func WithReason(reason string) CompactOption { return func(c *compactConfig) { c.reason = reason } }

// CompactReport says what a compaction did.
type CompactReport struct {
	SegmentsExamined  int
	SegmentsRewritten int
	EventsRemoved     uint64
	BytesBefore       int64 // of the rewritten segments
	BytesAfter        int64
	Duration          time.Duration
}

// Compact rewrites sealed segments without the events of deleted streams
// and those a [RetainIf] policy drops, while reads, cursors and appends go
// on. Each removed run of events becomes one hole frame of stubs (sequence,
// id, stream, version, previous hash and hash), so global sequences and
// stream versions stay dense and every hash chain stays verifiable across
// the gap; the frames that stay are copied byte for byte. Each segment is
// written to a temporary file, synced and renamed over the original, so a
// crash at any point leaves every segment either as it was or compacted,
// never a mix that loses an event. The checkpoint is removed first (it
// would describe old offsets) and written again on the next close. Only
// sealed segments are compacted, never one the writer may still append to.
func (s *Store) Compact(ctx context.Context, opts ...CompactOption) (*CompactReport, error) {
	var cfg compactConfig
	for _, o := range opts {
		o(&cfg)
	}
	if cfg.reason == "" {
		cfg.reason = "compaction"
	}
	if err := s.checkWritable(); err != nil {
		return nil, err
	}
	start := time.Now()
	s.compactRun.Lock()
	defer s.compactRun.Unlock()
	s.ckptMu.Lock() // no checkpoint may be written while offsets move
	defer s.ckptMu.Unlock()
	// The streams' lists are checked before the checkpoint they were
	// loaded from is removed (and compaction reads them).
	s.ix.settleLists()
	if err := s.fs.Remove(filepath.Join(s.dir, CheckpointFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	if err := s.fs.SyncDir(s.dir); err != nil {
		return nil, err
	}
	ids, err := s.listSegments()
	if err != nil {
		return nil, err
	}
	// Only sealed segments: the writer never writes to them again. The
	// active segment, and a segment created after the listing, are not.
	sealed := s.pipe.sealedThrough.Load()
	ids = slices.DeleteFunc(ids, func(id uint32) bool { return id > sealed })
	rep := &CompactReport{}
	for _, id := range ids {
		if err := ctx.Err(); err != nil {
			return rep, err
		}
		if s.closed.Load() {
			return rep, batpak.ErrClosed
		}
		rep.SegmentsExamined++
		if err := s.compactSegment(id, &cfg, rep); err != nil {
			return rep, fmt.Errorf("eventstore: compact segment %d: %w", id, err)
		}
	}
	rep.Duration = time.Since(start)
	s.log.Info("compaction done", zap.Int("rewritten", rep.SegmentsRewritten), zap.Uint64("removed", rep.EventsRemoved),
		zap.Int64("bytes_before", rep.BytesBefore), zap.Int64("bytes_after", rep.BytesAfter))
	return rep, nil
}

// compactSegment rewrites one sealed segment if anything in it must go.
func (s *Store) compactSegment(id uint32, cfg *compactConfig, rep *CompactReport) error {
	path := s.segmentPath(id)
	data, release, err := segment.MapFile(s.fs, path)
	if err != nil {
		return err
	}
	defer func() { _ = release() }()
	v := s.ix.snapshot()
	b := &segmentBuilder{id: id, now: s.cfg.clock().UnixMicro(), reason: cfg.reason, v: v, updates: make(map[uint64]entry),
		metas: make(map[uint64]eventMeta), tombstoned: make(map[streamID]bool), deletedHere: make(map[streamID]bool)}
	b.buf = segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Flags: segment.HeaderWrittenWhole, Segment: id, Created: b.now})
	removed := uint64(0)
	res, err := segment.Scan(data, id, path, 0, func(off int64, size int, rec *segment.Record) error {
		frame := data[off : off+int64(size)]
		switch rec.Kind {
		case segment.KindBatchBegin:
			b.endBatch(nil)
			b.batch = &compactBatch{begin: frame}
			return nil
		case segment.KindBatchCommit:
			b.endBatch(frame)
			return nil
		case segment.KindTombstone:
			b.endBatch(nil)
			b.copyFrame(rec, frame)
			b.tombstoned[streamID{scope: rec.Scope, entity: rec.Entity}] = true
			return nil
		case segment.KindHole:
			b.endBatch(nil)
			stubs, err := segment.DecodeStubs(rec.Payload)
			if err != nil {
				return err
			}
			b.stubs = append(b.stubs, stubs...)
			return nil
		}
		if rec.Seq == 0 || rec.Seq > v.len() {
			return fmt.Errorf("event %d is not in the index", rec.Seq)
		}
		e := v.at(rec.Seq)
		drop := !v.visible(e)
		if v.streams.at(e.Stream).isDeleted() {
			b.deletedHere[streamID{scope: rec.Scope, entity: rec.Entity}] = true
		}
		if !drop && cfg.keep != nil {
			r := s.record(rec, segment.Position{Segment: id, Offset: uint32(off), Length: uint32(size)})
			drop = !cfg.keep(&r)
		}
		var stub *segment.Stub
		if drop {
			removed++
			stub = &segment.Stub{Seq: rec.Seq, ID: rec.ID, Entity: rec.Entity, Scope: rec.Scope,
				Kind: rec.Kind, Version: rec.Version, PrevHash: rec.PrevHash, Hash: rec.Hash,
				Timestamp: rec.Timestamp, Correlation: rec.Correlation, Causation: rec.Causation}
		}
		b.event(rec, frame, stub)
		return nil
	})
	if err != nil {
		return err
	}
	b.endBatch(nil)
	if res.Torn != nil {
		// A sealed segment is whole: a cut or damaged frame at its end is
		// damage for Repair, never something to rewrite away.
		return res.Torn
	}
	if removed == 0 {
		return nil
	}
	b.flushHole()
	b.keepTombstones()
	footer, err := s.footerFor(b)
	if err != nil {
		return err
	}
	if b.buf, err = segment.AppendFooter(b.buf, id, int64(len(b.buf)), footer); err != nil {
		return err
	}
	tmp := path + ".compact"
	if err := s.writeFileSynced(tmp, b.buf); err != nil {
		return err
	}
	// Swap the file and the index positions together: readers that find a
	// position and a file that disagree retry under this lock.
	s.compactMu.Lock()
	defer s.compactMu.Unlock()
	if err := s.fs.Rename(tmp, path); err != nil {
		_ = s.fs.Remove(tmp)
		return err
	}
	// The path holds the compacted file from now on, whether or not the
	// directory sync succeeds: the index and the reader must follow it.
	syncErr := s.fs.SyncDir(s.dir)
	s.ix.mu.Lock()
	s.ix.entries = s.ix.entries.withUpdates(b.updates)
	s.ix.mu.Unlock()
	if err := s.reader.Replace(id); err != nil {
		s.log.Warn("unmap compacted segment", zap.Uint32("segment", id), zap.Error(err))
	}
	if syncErr != nil {
		s.fail(syncErr) // the rename may or may not be durable: only a reopen can tell
		return s.failure()
	}
	rep.SegmentsRewritten++
	rep.EventsRemoved += removed
	rep.BytesBefore += int64(len(data))
	rep.BytesAfter += int64(len(b.buf))
	return nil
}

// segmentBuilder assembles a compacted segment.
type segmentBuilder struct {
	id      uint32
	now     int64
	reason  string
	v       view
	buf     []byte
	stubs   []segment.Stub // the run of removed events not yet written
	updates map[uint64]entry
	metas   map[uint64]eventMeta // what the footer needs beyond the entries
	seqs    []uint64             // of every event and stub, in order
	// tombstoned: streams whose tombstone frame is in the segment;
	// deletedHere: deleted streams with events in it.
	tombstoned, deletedHere map[streamID]bool
	batch                   *compactBatch // the batch whose COMMIT marker is still to come
}

// keepTombstones ends the segment with a tombstone of each deleted stream
// that has events in it but no tombstone. Its own tombstone may be in a
// later segment that is lost later on: the footer's list of deleted
// streams then records the deletion, and a footer can be damaged and
// rewritten from the frames, so the frames must record it too.
func (b *segmentBuilder) keepTombstones() {
	ids := make([]streamID, 0, len(b.deletedHere))
	for id := range b.deletedHere {
		if !b.tombstoned[id] {
			ids = append(ids, id)
		}
	}
	slices.SortFunc(ids, streamID.compare)
	var last uint64
	for _, seq := range b.seqs {
		last = max(last, seq)
	}
	for _, id := range ids {
		t := segment.Record{Seq: last, Kind: segment.KindTombstone, Timestamp: b.now, Entity: id.entity, Scope: id.scope}
		b.buf, _ = segment.AppendFrame(b.buf, segment.AppendRecord(nil, &t))
		b.tombstoned[id] = true
	}
}

// compactBatch is a batch of the segment being compacted, held until its
// COMMIT marker: a batch whose events all stay keeps its markers, so that
// the frames alone still say which events one request wrote (a scan of
// the segment, if its footer is lost, records each idempotency key with
// its request's count); one that loses an event loses its markers, and a
// hole stands in the segment for what went.
type compactBatch struct {
	begin []byte // the BEGIN marker's frame
	items []compactItem
}

// compactItem is an event of a batch being compacted: its frame, or its
// stub if it goes.
type compactItem struct {
	rec   segment.Record
	frame []byte
	stub  segment.Stub
	gone  bool // removed: stub stands for it
}

// event keeps an event's frame, or adds its stub (not nil: it goes) to the
// pending hole; an event of the open batch waits for the batch's end.
func (b *segmentBuilder) event(rec *segment.Record, frame []byte, stub *segment.Stub) {
	switch {
	case b.batch != nil:
		it := compactItem{rec: *rec, frame: frame}
		if stub != nil {
			it.stub, it.gone = *stub, true
		}
		b.batch.items = append(b.batch.items, it)
	case stub != nil:
		b.stubs = append(b.stubs, *stub)
	default:
		b.copyFrame(rec, frame)
	}
}

// endBatch writes the events of the open batch, if any, between its
// markers if every one of them stays and commit (its COMMIT marker's
// frame) is not nil, and closes it.
func (b *segmentBuilder) endBatch(commit []byte) {
	batch := b.batch
	if batch == nil {
		return
	}
	b.batch = nil
	whole := commit != nil && len(batch.items) > 0
	for i := range batch.items {
		whole = whole && !batch.items[i].gone
	}
	if whole {
		b.flushHole()
		b.buf = append(b.buf, batch.begin...)
	}
	for i := range batch.items {
		it := &batch.items[i]
		var stub *segment.Stub
		if it.gone {
			stub = &it.stub
		}
		b.event(&it.rec, it.frame, stub)
	}
	if whole {
		b.buf = append(b.buf, commit...)
	}
}

// copyFrame keeps a frame as it is, after the pending hole.
func (b *segmentBuilder) copyFrame(rec *segment.Record, frame []byte) {
	b.flushHole()
	off := len(b.buf)
	b.buf = append(b.buf, frame...)
	if rec.IsMarker() {
		return
	}
	e := b.v.at(rec.Seq)
	e.Pos = segment.Position{Segment: b.id, Offset: uint32(off), Length: uint32(len(frame))}
	b.updates[rec.Seq] = e
	b.metas[rec.Seq] = eventMeta{eventIDs: eventIDs{id: rec.ID, corr: rec.Correlation, cause: rec.Causation}, ts: rec.Timestamp, version: rec.Version}
	b.seqs = append(b.seqs, rec.Seq)
}

// flushHole writes the pending stubs as one hole frame.
func (b *segmentBuilder) flushHole() {
	if len(b.stubs) == 0 {
		return
	}
	m := segment.Record{Seq: b.stubs[0].Seq, Kind: segment.KindHole, Version: uint64(len(b.stubs)), Timestamp: b.now,
		Metadata: map[string]string{"reason": b.reason}, Payload: segment.AppendStubs(nil, b.stubs)}
	off := len(b.buf)
	b.buf, _ = segment.AppendFrame(b.buf, segment.AppendRecord(nil, &m))
	pos := segment.Position{Segment: b.id, Offset: uint32(off), Length: uint32(len(b.buf) - off)}
	for _, st := range b.stubs {
		e := b.v.at(st.Seq)
		e.Pos, e.Flags = pos, e.Flags|segment.EntryDeleted
		b.updates[st.Seq] = e
		b.metas[st.Seq] = eventMeta{eventIDs: stubIDs(&st), ts: st.Timestamp, version: st.Version}
		b.seqs = append(b.seqs, st.Seq)
	}
	b.stubs = b.stubs[:0]
}

// footerFor builds the footer index of a compacted segment: every event and
// stub with its new position, the stream tails at the segment's end, the
// idempotency keys whose events start in it, and the deleted streams.
func (s *Store) footerFor(b *segmentBuilder) (*segment.Index, error) {
	ix := s.ix
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var strs segment.StringTable
	out := &segment.Index{}
	tails := make(map[uint32]segment.StreamTail)
	slices.Sort(b.seqs)
	for _, seq := range b.seqs {
		e, m := b.updates[seq], b.metas[seq]
		id := ix.streams.id(ix.streams.at(e.Stream))
		out.Entries = append(out.Entries, indexEntry(seq, e, &m, id, &strs))
		tails[e.Stream] = segment.StreamTail{Entity: strs.ID(id.entity), Scope: strs.ID(id.scope), Version: m.version}
	}
	if len(b.seqs) > 0 {
		lo, hi := b.seqs[0], b.seqs[len(b.seqs)-1]
		for _, k := range ix.keys {
			if k.First >= lo && k.First <= hi {
				out.Keys = append(out.Keys, k)
			}
		}
		slices.SortFunc(out.Keys, func(a, b segment.IdempotencyRecord) int { return int(a.First) - int(b.First) })
	}
	// Each tail needs the hash of the stream's last event in this segment:
	// read it from the frame (or stub) that holds it.
	for si, t := range tails {
		hash, err := s.hashAt(b, si, t.Version)
		if err != nil {
			return nil, err
		}
		t.LastHash = hash
		out.Tails = append(out.Tails, t)
	}
	out.Deleted = ix.deletedRefs(out.Deleted, &strs)
	out.Strings = strs.Strings
	return out, out.Validate()
}

// hashAt returns the hash of version version of stream si as written in the
// segment being built.
func (s *Store) hashAt(b *segmentBuilder, si uint32, version uint64) ([32]byte, error) {
	seq := s.ix.streams.at(si).list().at(int(version - 1))
	e := b.updates[seq]
	frame := b.buf[e.Pos.Offset : e.Pos.Offset+e.Pos.Length]
	payload, _, st := segment.DecodeFrame(frame)
	if st != segment.FrameOK {
		return [32]byte{}, errors.New("compacted frame does not decode")
	}
	var rec segment.Record
	if err := segment.DecodeRecord(payload, &rec); err != nil {
		return [32]byte{}, err
	}
	if rec.Kind != segment.KindHole {
		return rec.Hash, nil
	}
	stubs, err := segment.DecodeStubs(rec.Payload)
	if err != nil {
		return [32]byte{}, err
	}
	for _, st := range stubs {
		if st.Seq == seq {
			return st.Hash, nil
		}
	}
	return [32]byte{}, fmt.Errorf("stub of sequence %d missing", seq)
}
