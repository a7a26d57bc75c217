package eventstore

import (
	"fmt"
	"slices"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak/segment"
)

// Where segments begin and end: the pipeline appends to one active segment
// at a time, and seals it (footer index, sync) before it starts the next.

// needsRotation reports whether n more bytes would overflow the active
// segment (or there is none yet). A segment holding no frames is never
// rotated, so a request larger than a segment still goes somewhere.
func (p *commitPipeline) needsRotation(n int) bool {
	if p.w == nil {
		return true
	}
	end := p.w.End() + int64(len(p.stage.buf))
	return end > segment.HeaderSize && end+int64(n) > p.env.cfg.segmentMaxBytes
}

// rotate seals the active segment (footer index, sync) and starts the next.
func (p *commitPipeline) rotate() error {
	if p.w != nil {
		if p.w.End() == segment.HeaderSize {
			return nil // empty: keep using it
		}
		if err := p.seal(); err != nil {
			return err
		}
	}
	env := &p.env
	id := p.nextSegment
	w, err := segment.Create(env.fs, env.dir, id, env.cfg.clock().UnixMicro(), env.cfg.preallocSize(), env.cfg.fileMode)
	if err != nil {
		return err
	}
	p.w = w
	p.nextSegment++
	p.activeFirstSeq = env.ix.lastSeq() + 1
	p.activeKeys = nil
	p.activeMetas.reset()
	p.metaFrom = p.activeFirstSeq
	env.reader.SetActive(id, w.File())
	p.activeSegment.Store(id)
	p.activeEnd.Store(w.End())
	env.stats.segments.Add(1)
	env.log.Debug("segment created", zap.Uint32("segment", id))
	return nil
}

// resume makes w, the last segment as recovery left it, the active
// segment. Its events start at firstSeq; the idempotency keys of ix from
// there on go into its footer. Recovery calls it before start, with the
// reader it has built.
func (p *commitPipeline) resume(w *segment.Writer, firstSeq uint64, ix *memIndex, reader *segment.Reader) {
	id := w.ID()
	p.w = w
	reader.SetActive(id, w.File())
	p.activeSegment.Store(id)
	p.activeEnd.Store(w.End())
	p.activeFirstSeq = firstSeq
	p.activeMetas.reset()
	p.metaFrom = ix.lastSeq() + 1
	for _, k := range ix.keys {
		if k.First >= firstSeq {
			p.activeKeys = append(p.activeKeys, k)
		}
	}
	slices.SortFunc(p.activeKeys, func(a, b segment.IdempotencyRecord) int { return int(a.First) - int(b.First) })
}

// preallocSize is how much space a new or reopened segment file reserves.
func (c *config) preallocSize() int64 {
	if c.preallocate {
		return c.segmentMaxBytes
	}
	return 0
}

// seal writes the active segment's footer and hands it to the reader as a
// sealed (memory-mapped) segment.
func (p *commitPipeline) seal() error {
	env := &p.env
	if p.unsynced > 0 {
		env.stats.syncs.Add(1)
	}
	ix, err := p.footerIndex()
	if err != nil {
		return fmt.Errorf("eventstore: seal segment %d: %w", p.w.ID(), err)
	}
	if err := p.w.Seal(ix); err != nil {
		return fmt.Errorf("eventstore: seal segment %d: %w", p.w.ID(), err)
	}
	p.unsynced = 0
	id := p.w.ID()
	env.reader.Seal(id)
	p.sealedThrough.Store(id) // compaction may take it from now on
	if err := p.w.Close(); err != nil {
		env.log.Warn("close sealed segment", zap.Uint32("segment", id), zap.Error(err))
	}
	p.w = nil
	env.log.Debug("segment sealed", zap.Uint32("segment", id), zap.Int("events", len(ix.Entries)))
	return nil
}

// footerIndex builds the footer of the active segment from the index, the
// metas this pipeline kept and, for events published before the store was
// opened, the segment's frames.
func (p *commitPipeline) footerIndex() (*segment.Index, error) {
	ix := p.env.ix
	v := ix.snapshot()
	before := make([]eventMeta, 0, p.metaFrom-p.activeFirstSeq)
	for seq := p.activeFirstSeq; seq < p.metaFrom; seq++ {
		m, err := p.env.metaAt(&v, seq)
		if err != nil {
			return nil, err
		}
		before = append(before, m)
	}
	meta := func(i int) *eventMeta {
		if i < len(before) {
			return &before[i]
		}
		return p.activeMetas.at(i - len(before))
	}
	ix.mu.RLock()
	defer ix.mu.RUnlock()
	var strs segment.StringTable
	out := &segment.Index{Keys: append([]segment.IdempotencyRecord(nil), p.activeKeys...)}
	if last := ix.lastSeq(); last >= p.activeFirstSeq {
		out.Entries = make([]segment.IndexEntry, 0, last-p.activeFirstSeq+1)
	}
	if known := uint64(len(before) + p.activeMetas.len()); known != ix.lastSeq()+1-p.activeFirstSeq {
		return nil, fmt.Errorf("footer of %d events, %d known", ix.lastSeq()+1-p.activeFirstSeq, known)
	}
	touched := make(map[uint32]struct{})
	for i, seq := 0, p.activeFirstSeq; seq <= ix.lastSeq(); i, seq = i+1, seq+1 {
		e := ix.entries.at(seq)
		out.Entries = append(out.Entries, indexEntry(seq, e, meta(i), ix.streams.id(ix.streams.at(e.stream)), &strs))
		touched[e.stream] = struct{}{}
	}
	out.Tails = make([]segment.StreamTail, 0, len(touched))
	for si := range touched {
		str := ix.streams.at(si)
		id := ix.streams.id(str)
		out.Tails = append(out.Tails, segment.StreamTail{Entity: strs.ID(id.entity), Scope: strs.ID(id.scope), Version: str.version(), LastHash: str.lastHash})
	}
	out.Deleted = ix.deletedRefs(out.Deleted, &strs)
	out.Strings = strs.Strings
	return out, nil
}

// closeWriter closes the active segment's file, after stop.
// trimActive gives back the space reserved after the active segment's
// frames, on Close.
func (p *commitPipeline) trimActive() error {
	if p.w == nil {
		return nil
	}
	return p.w.Trim()
}

func (p *commitPipeline) closeWriter() error {
	if p.w == nil {
		return nil
	}
	return p.w.Close()
}
