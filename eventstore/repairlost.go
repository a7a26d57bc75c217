package eventstore

import (
	"cmp"
	"encoding/binary"
	"fmt"
	"slices"
	"sort"

	"github.com/batpak-go/batpak/segment"
)

// What a repair lost, and what it was: the sequences that no kept frame
// holds, named from the evidence that is left (footers, the checkpoint, a
// damaged frame whose hash still verifies, the streams' chains).

// lostEvent is one event a repair could not save, and the stub it leaves.
type lostEvent struct {
	stub      segment.Stub
	hashKnown bool
	known     bool   // its stream is known
	source    string // of what is known
	removed   bool   // compaction had removed it already: its stub was lost
	region    *region
}

// evidence is what a footer, the checkpoint or a damaged frame still says
// about an event.
type evidence struct {
	entity, scope string
	id            [16]byte
	kind          uint16
	version       uint64
	hash          [32]byte
	hashKnown     bool
	removed       bool
	source        string
	region        *region // for a damaged frame: the region it starts
}

// rstream is a stream's tip while planning.
type rstream struct {
	version uint64
	hash    [32]byte
	seq     uint64 // of the tip
	first   uint64 // of its first event or stub
	// lostTip is the tip when it is a lost event whose hash is unknown:
	// the next version's previous hash fills it in.
	lostTip *lostEvent
}

// gap is a run of versions of one stream that lie in lost sequences
// strictly between low and high.
type gap struct {
	entity, scope  string
	from, count    uint64 // versions from..from+count-1
	low, high      uint64
	prev, nextPrev [32]byte // the hashes the run links from and to
	assigned       []*lostEvent
	ambiguous      bool
}

func (g *gap) need() uint64 { return g.count - uint64(len(g.assigned)) }

// damagedFrameEvidence looks at the damaged frame that starts region r:
// if its record still decodes and its event hash recomputes, the damage
// hit only what the hash does not cover (the frame's length or CRC, the
// sequence, the idempotency key), and the record tells which event was
// lost, if its sequence is one of those lost in r. The payload is taken
// as the frame's length says, or as running to the next frame (a damaged
// length).
func (p *repairPlan) damagedFrameEvidence(r *region, data []byte) {
	body := r.start + segment.FrameHeaderSize
	if r.end <= body {
		return
	}
	var rec segment.Record
	for _, end := range []int64{body + int64(binary.BigEndian.Uint32(data[r.start:])), r.end} {
		if end > r.end || segment.DecodeRecord(data[body:end], &rec) != nil || rec.IsMarker() ||
			rec.Seq <= p.placed || p.hasher.Sum(&rec) != rec.Hash {
			continue
		}
		if _, ok := p.evidence[rec.Seq]; !ok {
			p.evidence[rec.Seq] = evidence{entity: rec.Entity, scope: rec.Scope, id: rec.ID, kind: rec.Kind,
				version: rec.Version, hash: rec.Hash, hashKnown: true, source: "damaged frame", region: r}
		}
		return
	}
}

// footerEvidence returns what entry i of a valid footer says.
func footerEvidence(ix *segment.Index, i int) evidence {
	e := &ix.Entries[i]
	ev := evidence{entity: ix.Strings[e.Entity], scope: ix.Strings[e.Scope], id: e.ID, kind: e.Kind,
		version: e.Version, removed: e.Flags&segment.EntryDeleted != 0, source: "footer"}
	for _, t := range ix.Tails {
		if t.Entity == e.Entity && t.Version == e.Version {
			ev.hash, ev.hashKnown = t.LastHash, true
		}
	}
	return ev
}

// addFooterEvidence keeps what the valid footer of a damaged segment says,
// for lost events found after the segment.
func (p *repairPlan) addFooterEvidence(ix *segment.Index) {
	for i, e := range ix.Entries {
		if e.Seq > p.placed {
			p.evidence[e.Seq] = footerEvidence(ix, i)
		}
	}
}

// lookup returns what is known about lost event seq: from the footer of
// the segment being read, of a damaged segment, from a damaged frame, or
// from the checkpoint.
func (p *repairPlan) lookup(seq uint64) (evidence, bool) {
	if ix := p.curFooter; ix != nil {
		if i, ok := slices.BinarySearchFunc(ix.Entries, seq, func(e segment.IndexEntry, s uint64) int {
			return cmp.Compare(e.Seq, s)
		}); ok {
			ev := footerEvidence(ix, i)
			if old, ok := p.evidence[seq]; ok && old.hashKnown && !ev.hashKnown {
				ev.hash, ev.hashKnown = old.hash, true
			}
			return ev, true
		}
	}
	if ev, ok := p.evidence[seq]; ok {
		return ev, true
	}
	c := p.ckpt
	if c == nil || seq == 0 || seq > c.LastSeq {
		return evidence{}, false
	}
	e := &c.Entries[seq-1]
	st := &c.Streams[e.Entity]
	ev := evidence{entity: st.Entity, scope: c.Scopes[e.Scope], id: e.ID, kind: e.Kind, version: e.Version,
		removed: e.Flags&segment.EntryDeleted != 0, source: "checkpoint"}
	if st.Version == e.Version {
		ev.hash, ev.hashKnown = st.LastHash, true
	}
	return ev, true
}

// apply takes one kept event or stub: the sequences before it that no kept
// frame holds were lost, and its stream must continue.
func (p *repairPlan) apply(ev planEvent) {
	p.loseUpTo(ev.sp, ev.at, ev.seq)
	st := p.stream(streamID{scope: ev.scope, entity: ev.entity}, ev.seq)
	switch {
	case ev.version == st.version+1:
		if lt := st.lostTip; lt != nil && !lt.hashKnown {
			lt.stub.Hash, lt.hashKnown = ev.prevHash, true
		} else if ev.prevHash != st.hash {
			p.fail(ev.sp, ev.off, "%q version %d does not link to the previous event's hash", ev.entity, ev.version)
		}
	case ev.version > st.version+1:
		p.gaps = append(p.gaps, &gap{entity: ev.entity, scope: ev.scope, from: st.version + 1, count: ev.version - st.version - 1,
			low: st.seq, high: ev.seq, prev: st.hash, nextPrev: ev.prevHash})
	default:
		p.fail(ev.sp, ev.off, "%q version %d follows version %d", ev.entity, ev.version, st.version)
	}
	st.version, st.hash, st.seq, st.lostTip = ev.version, ev.hash, ev.seq, nil
	p.placed, p.openEnd = ev.seq, nil
}

func (p *repairPlan) stream(id streamID, seq uint64) *rstream {
	st, ok := p.streams[id]
	if !ok {
		st = &rstream{first: seq}
		p.streams[id] = st
	}
	return st
}

// loseUpTo records the sequences between the last one placed and seq as
// lost: in the first region after the last kept event, or, with no
// damaged bytes to show for them, at offset at of segment sp.
func (p *repairPlan) loseUpTo(sp *segPlan, at int64, seq uint64) {
	if seq > p.placed+1 {
		r := p.pending
		if e := p.openEnd; r == nil && e != nil {
			r = p.addRegion(e, e.frameEnd, e.size, "the frames end early, without a footer", nil)
		}
		if r == nil {
			r = p.addRegion(sp, at, at, "sequences missing without damaged bytes", nil)
		}
		for s := p.placed + 1; s < seq; s++ {
			p.lose(r, s)
		}
	}
	p.pending = nil
}

// lose records lost event seq in region r, with what is known about it.
func (p *repairPlan) lose(r *region, seq uint64) {
	l := &lostEvent{stub: segment.Stub{Seq: seq}, region: r}
	p.lost = append(p.lost, l)
	r.lost = append(r.lost, l)
	p.placed = seq
	ev, ok := p.lookup(seq)
	if ok && ev.region != nil && ev.region != r {
		ok = false // a damaged frame speaks only for its own region
	}
	if !ok {
		p.unresolved = append(p.unresolved, l)
		return
	}
	id := streamID{scope: ev.scope, entity: ev.entity}
	st, exists := p.streams[id]
	if !exists {
		st = &rstream{}
	}
	switch {
	case ev.version == st.version+1:
		l.stub.PrevHash = st.hash
	case ev.version > st.version+1:
		// Earlier versions were lost too, where nothing tells: the chain
		// of their stubs links from the stream's tip to this one.
		p.gaps = append(p.gaps, &gap{entity: ev.entity, scope: ev.scope, from: st.version + 1,
			count: ev.version - st.version - 1, low: st.seq, high: seq, prev: st.hash})
	default: // contradicts what was read: not used
		p.unresolved = append(p.unresolved, l)
		return
	}
	if !exists {
		st.first = seq
		p.streams[id] = st
	}
	l.known, l.source, l.removed = true, ev.source, ev.removed
	l.stub.ID, l.stub.Entity, l.stub.Scope, l.stub.Kind, l.stub.Version = ev.id, ev.entity, ev.scope, ev.kind, ev.version
	l.stub.Hash, l.hashKnown = ev.hash, ev.hashKnown
	st.version, st.hash, st.seq, st.lostTip = ev.version, ev.hash, seq, nil
	if !ev.hashKnown {
		st.lostTip = l
	}
}

// finish records the events a checkpoint proves but no segment holds.
func (p *repairPlan) finish() {
	if p.ckpt == nil || p.ckpt.LastSeq <= p.placed {
		return
	}
	r := p.pending
	for i := len(p.segs) - 1; r == nil && i >= 0; i-- {
		sp := p.segs[i]
		if sp.blank {
			if i > 0 {
				continue
			}
			// Only a blank segment: it is written anew.
			sp.blank, sp.missing = false, true
			sp.header = segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Segment: sp.id, Created: p.now})
			sp.frameEnd, sp.cut = segment.HeaderSize, segment.HeaderSize
		}
		r = p.addRegion(sp, sp.cut, sp.cut, fmt.Sprintf("the checkpoint covers %d events, the segments hold %d", p.ckpt.LastSeq, p.placed), nil)
	}
	for s := p.placed + 1; s <= p.ckpt.LastSeq; s++ {
		p.lose(r, s)
	}
	p.pending = nil
}

// resolve works out the streams of the lost events nothing else told
// about: each run of versions a stream skips over lies in the lost
// sequences between its neighbours. Where only one assignment fits it is
// taken; where several do, the earliest-ending run takes the earliest
// sequence (marked ambiguous). Lost events left over get streams of their
// own. Then every deletion a footer or the checkpoint knows of but no kept
// tombstone records is written again.
func (p *repairPlan) resolve() {
	candidates := func(g *gap) []*lostEvent {
		i := sort.Search(len(p.unresolved), func(i int) bool { return p.unresolved[i].stub.Seq > g.low })
		var out []*lostEvent
		for ; i < len(p.unresolved) && p.unresolved[i].stub.Seq < g.high; i++ {
			if !p.unresolved[i].known {
				out = append(out, p.unresolved[i])
			}
		}
		return out
	}
	for changed := true; changed; {
		changed = false
		for _, g := range p.gaps {
			if g.need() == 0 {
				continue
			}
			c := candidates(g)
			if uint64(len(c)) < g.need() {
				p.impossible = fmt.Sprintf("%q skips versions %d-%d, but fewer events were lost between sequences %d and %d",
					g.entity, g.from, g.from+g.count-1, g.low, g.high)
				return
			}
			if uint64(len(c)) == g.need() {
				p.assign(g, c)
				changed = true
			}
		}
	}
	for _, l := range p.unresolved {
		if l.known {
			continue
		}
		var best *gap
		for _, g := range p.gaps {
			if g.need() > 0 && g.low < l.stub.Seq && l.stub.Seq < g.high && (best == nil || g.high < best.high) {
				best = g
			}
		}
		if best != nil {
			best.ambiguous = true
			p.assign(best, []*lostEvent{l})
		}
	}
	for _, g := range p.gaps {
		if g.need() > 0 {
			p.impossible = fmt.Sprintf("%q skips versions %d-%d that no lost event can have been", g.entity, g.from, g.from+g.count-1)
			return
		}
		for i, l := range g.assigned {
			l.stub.Entity, l.stub.Scope, l.stub.Version = g.entity, g.scope, g.from+uint64(i)
			if i == 0 {
				l.stub.PrevHash = g.prev
			}
			if i == len(g.assigned)-1 {
				l.stub.Hash, l.hashKnown = g.nextPrev, true
			}
			l.source = "chain"
			if g.ambiguous {
				l.source = "chain, ambiguous"
			}
		}
	}
	for _, l := range p.unresolved {
		if !l.known {
			name := lostStreamName(l.stub.Seq)
			l.stub.Entity, l.stub.Version = name, 1
			l.region.tombstones = append(l.region.tombstones, streamID{scope: l.stub.Scope, entity: name})
		}
	}
	p.rewriteDeletions()
}

func (p *repairPlan) assign(g *gap, ls []*lostEvent) {
	for _, l := range ls {
		l.known = true
		g.assigned = append(g.assigned, l)
	}
}

// rewriteDeletions writes again each deletion whose tombstone was lost, in
// the last region after the stream's first event.
func (p *repairPlan) rewriteDeletions() {
	var regions []*region
	for _, sp := range p.segs {
		regions = append(regions, sp.regions...)
	}
	names := make([]streamID, 0, len(p.known))
	for name := range p.known {
		if !p.deleted[name] {
			names = append(names, name)
		}
	}
	slices.SortFunc(names, streamID.compare)
	for _, name := range names {
		st, ok := p.streams[name]
		placed := false
		for i := len(regions) - 1; ok && i >= 0 && !placed; i-- {
			if r := regions[i]; st.first <= r.afterSeq+uint64(len(r.lost)) && st.first > 0 {
				r.tombstones = append(r.tombstones, name)
				placed = true
			}
		}
		if !placed {
			p.lostTombs = append(p.lostTombs, name)
		}
	}
}
