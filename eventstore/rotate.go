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
	p.prep.mu.Lock()
	defer p.prep.mu.Unlock()
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
	p.prep.reset(p.activeFirstSeq, p.metaFrom)
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
	p.prep.mu.Lock()
	defer p.prep.mu.Unlock()
	reader.SetActive(id, w.File())
	p.activeSegment.Store(id)
	p.activeEnd.Store(w.End())
	p.activeFirstSeq = firstSeq
	p.activeMetas.reset()
	p.metaFrom = ix.lastSeq() + 1
	p.prep.reset(firstSeq, p.metaFrom)
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
// sealed (memory-mapped) segment. Caller holds prep.mu.
func (p *commitPipeline) seal() error {
	env := &p.env
	if p.unsynced > 0 {
		env.stats.syncs.Add(1)
	}
	if err := p.prep.sealActive(p); err != nil {
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
	env.log.Debug("segment sealed", zap.Uint32("segment", id), zap.Int("events", p.prep.b.Len()))
	return nil
}

// trimActive gives back the space reserved after the active segment's
// frames, on Close.
func (p *commitPipeline) trimActive() error {
	if p.w == nil {
		return nil
	}
	return p.w.Trim()
}

// closeWriter closes the active segment's file, after stop.
func (p *commitPipeline) closeWriter() error {
	if p.w == nil {
		return nil
	}
	return p.w.Close()
}
