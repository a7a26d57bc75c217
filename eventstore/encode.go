package eventstore

import (
	"fmt"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// encode validates r against the staged and published stream states and
// encodes its frames into st.scratch and its events into st.pending, with
// offsets relative to the scratch. It changes nothing else in st.
func (p *commitPipeline) encode(st *stage, r *request) error {
	st.scratch = st.scratch[:0]
	clear(st.pending)
	st.pending = st.pending[:0]
	local := make(map[streamID]streamTip, 1)
	now := p.env.cfg.clock()
	ts := now.UnixMicro()
	seq := st.nextSeq
	n := len(r.items)
	if r.atomic {
		p.appendMarker(st, segment.KindBatchBegin, seq, n, ts)
	}
	var root [16]byte
	for i := range r.items {
		it := &r.items[i]
		tip, err := p.tip(st, local, idOf(it.coord))
		if err != nil {
			return err
		}
		if tip.deleted {
			return fmt.Errorf("%w: %s", batpak.ErrStreamDeleted, it.coord)
		}
		if !it.expected.Accepts(tip.version) {
			return &batpak.VersionConflictError{Stream: it.coord, Expected: it.expected, Actual: tip.version}
		}
		if tip.version >= p.env.cfg.streamEvents {
			return fmt.Errorf("%w: %s holds %d events", ErrStreamFull, it.coord, tip.version)
		}
		rec := segment.Record{
			Seq:       seq + uint64(i),
			Kind:      uint16(it.kind),
			Version:   tip.version + 1,
			Timestamp: ts,
			ID:        p.ids.Next(now),
			Causation: it.causation,
			Entity:    it.coord.Entity,
			Scope:     it.coord.Scope,
			PrevHash:  tip.hash,
			Metadata:  it.meta,
			Payload:   it.payload,
		}
		if i == 0 {
			rec.IdempotencyKey = r.key
			root = rec.ID
		}
		corr, err := p.correlationFor(st, it, root)
		if err != nil {
			return fmt.Errorf("eventstore: the correlation of cause %x: %w", it.causation, err)
		}
		rec.Correlation = corr
		rec.Hash = p.hasher.Sum(&rec)
		local[streamID{scope: rec.Scope, entity: rec.Entity}] = streamTip{version: rec.Version, hash: rec.Hash}
		off := len(st.scratch)
		st.recBuf = segment.AppendRecord(st.recBuf[:0], &rec)
		if st.scratch, err = segment.AppendFrame(st.scratch, st.recBuf); err != nil {
			return fmt.Errorf("%w: %w", batpak.ErrPayloadTooLarge, err)
		}
		st.pending = append(st.pending, stagedEvent{rec: rec, pos: segment.Position{Offset: uint32(off), Length: uint32(len(st.scratch) - off)}})
	}
	if r.atomic {
		p.appendMarker(st, segment.KindBatchCommit, seq+uint64(n)-1, n, ts)
	}
	if int64(len(st.scratch)) > p.env.cfg.segmentMaxBytes-segment.HeaderSize {
		return fmt.Errorf("%w: request of %d bytes does not fit a segment of %d", batpak.ErrPayloadTooLarge, len(st.scratch), p.env.cfg.segmentMaxBytes)
	}
	return nil
}

func (p *commitPipeline) appendMarker(st *stage, k uint16, seq uint64, n int, ts int64) {
	m := segment.Record{Seq: seq, Kind: k, Version: uint64(n), Timestamp: ts}
	st.recBuf = segment.AppendRecord(st.recBuf[:0], &m)
	st.scratch, _ = segment.AppendFrame(st.scratch, st.recBuf)
}

// tip returns the current version and hash of stream id: this request's
// own earlier events first, then the chunk's, then the published index.
// It fails only for a last hash that neither the checkpoint nor the
// stream's last frame gives intact (see memIndex.lastHashLocked).
func (p *commitPipeline) tip(st *stage, local map[streamID]streamTip, id streamID) (streamTip, error) {
	if t, ok := local[id]; ok {
		return t, nil
	}
	if t, ok := st.streams[id]; ok {
		t.deleted = t.deleted || st.deleted[id]
		return t, nil
	}
	ix := p.env.ix
	str := ix.lookup(id) // only the commit mutex's holder mutates the index
	if str == nil {
		return streamTip{}, nil
	}
	h, ok := ix.streams.lastHash(str)
	if !ok {
		var err error
		ix.mu.Lock()
		h, err = ix.lastHashLocked(str)
		ix.mu.Unlock()
		if err != nil {
			return streamTip{}, err
		}
	}
	return streamTip{version: str.version(), hash: h, deleted: str.isDeleted() || st.deleted[id]}, nil
}

// correlationFor picks an event's correlation id: the explicit one, else the
// correlation of its cause (if known), else the request's first event.
// Reading the cause's frame may fail: the request then fails.
func (p *commitPipeline) correlationFor(st *stage, it *item, root [16]byte) ([16]byte, error) {
	if it.correlation != [16]byte{} {
		return it.correlation, nil
	}
	if it.causation != [16]byte{} {
		if c, ok := st.newIDs[it.causation]; ok {
			return c, nil
		}
		seq, err := p.env.lookupID(it.causation)
		if err != nil || seq == 0 {
			return root, err
		}
		v := p.env.ix.snapshot()
		m, err := p.env.metaAt(&v, seq)
		return m.corr, err
	}
	return root, nil
}

// place moves r's encoded frames from the scratch into the chunk buffer,
// fixing positions and recording the new stream tips.
func (p *commitPipeline) place(st *stage, r *request) {
	base := uint32(p.w.End()) + uint32(len(st.buf))
	first := len(st.events)
	for _, ev := range st.pending {
		ev.pos.Segment = p.w.ID()
		ev.pos.Offset += base
		st.streams[streamID{scope: ev.rec.Scope, entity: ev.rec.Entity}] = streamTip{version: ev.rec.Version, hash: ev.rec.Hash}
		st.newIDs[ev.rec.ID] = ev.rec.Correlation
		st.events = append(st.events, ev)
	}
	st.buf = append(st.buf, st.scratch...)
	st.nextSeq += uint64(len(r.items))
	if r.delete.Entity != "" {
		st.deleted[idOf(r.delete)] = true
	}
	if r.key != "" {
		st.keys[r.key] = len(st.reqs)
	}
	st.reqs = append(st.reqs, stagedRequest{r: r, first: first, n: len(st.events) - first, dupOf: -1})
}
