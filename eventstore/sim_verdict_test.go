package eventstore_test

// The verdict on damage in the simulation (see sim_test.go and
// sim_damage_test.go): what the store may do after damage to its files.
//
// What the store may do depends on the evidence left on disk after the
// damage. A valid checkpoint proves the events it covers were durable, a
// footer (even a damaged one), a header flag or a hole frame (compaction
// and repair write whole files) or a later segment proves its segment was
// sealed. Damage to an event frame such evidence covers is corruption: Open
// must fail with ErrCorrupt naming a damaged segment, or succeed with every
// other event identical while reads of the damaged ones fail with
// ErrCorrupt. Damage past all evidence, at the end of the last segment
// with no intact frame after it, looks exactly like a write a crash tore
// (with SyncEveryCommit every event was synced, but no file says so): the
// store may cut it, losing those events and, if it hit a batch, the whole
// batch; a cut segment or one removed with nothing naming it is the same.
// Such crash-shaped damage (also a deleted or damaged checkpoint, which is
// never trusted) must not make Open refuse. Anything else, an event
// missing, different or silently fewer, is a failure.

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/batpak-go/batpak/segment"
)

type simFrame struct {
	off, end int64
	kind     uint16
	seq      uint64
	entity   string
	batch    int      // index of the BEGIN frame of the batch holding this frame, or -1
	stubs    []uint64 // a hole frame: the sequences of the events a compaction removed
}

type simSeg struct {
	id           uint32
	path         string
	frames       []simFrame
	size         int64
	sealed       bool
	footerOff    int64
	touched      [][2]int64 // damaged byte ranges
	footerBroken bool       // a flip in the footer (not a cut)
	removed      bool
	flagged      bool // its header says compaction wrote it whole
}

func (g *simSeg) hit(lo, hi int64) bool {
	for _, t := range g.touched {
		if lo < t[1] && t[0] < hi {
			return true
		}
	}
	return false
}

// simLayout scans the segments of a closed store.
func simLayout(dir string) ([]*simSeg, error) {
	des, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var segs []*simSeg
	for _, de := range des {
		id, ok := segment.ParseFileName(de.Name())
		if !ok {
			continue
		}
		g := &simSeg{id: id, path: filepath.Join(dir, de.Name())}
		data, err := os.ReadFile(g.path)
		if err != nil {
			return nil, err
		}
		g.size = int64(len(data))
		batch := -1
		res, err := segment.Scan(data, id, g.path, 0, func(off int64, size int, rec *segment.Record) error {
			f := simFrame{off: off, end: off + int64(size), kind: rec.Kind, seq: rec.Seq, entity: rec.Entity, batch: batch}
			switch rec.Kind {
			case segment.KindHole:
				stubs, err := segment.DecodeStubs(rec.Payload)
				if err != nil {
					return err
				}
				for _, st := range stubs {
					f.stubs = append(f.stubs, st.Seq)
				}
			case segment.KindBatchBegin:
				batch = len(g.frames)
				f.batch = batch
			case segment.KindBatchCommit:
				batch = -1
			}
			g.frames = append(g.frames, f)
			return nil
		})
		if err != nil || res.Torn != nil {
			return nil, fmt.Errorf("segment %d does not scan cleanly before the damage: %v %v", id, err, res.Torn)
		}
		g.sealed, g.footerOff = res.Sealed, res.FrameEnd
		g.flagged = res.Header.Flags&segment.HeaderWrittenWhole != 0
		segs = append(segs, g)
	}
	slices.SortFunc(segs, func(a, b *simSeg) int { return int(a.id) - int(b.id) })
	return segs, nil
}

// simVerdict is what the store may do after damage.
type simVerdict struct {
	segs     map[uint32]bool // touched or removed: a refusal must name one
	refuse   bool            // genuine damage: Open may refuse
	lossable map[uint64]bool // events a torn-tail cut may take
	flexDel  map[string]bool // deletions whose tombstone a cut may take
	corrupt  map[uint64]bool // events whose reads may fail with ErrCorrupt
	what     string
}

// simJudge works out the verdict from what the damage left on disk.
func simJudge(segs []*simSeg, ckpt string) *simVerdict {
	v := &simVerdict{segs: map[uint32]bool{}, lossable: map[uint64]bool{}, flexDel: map[string]bool{},
		corrupt: map[uint64]bool{}}
	var cp *segment.CheckpointFile
	if data, err := os.ReadFile(ckpt); err == nil {
		if c, err := segment.OpenCheckpoint(data); err == nil && c.LastSeq > 0 {
			cp = c
		}
	}
	var last *simSeg
	for _, g := range segs {
		if !g.removed {
			last = g
		}
	}
	// lastSealed: the last segment shows it was sealed, whatever the
	// damage (its files are read once, not for every frame).
	lastSealed := last != nil && (simStillSealed(last) || simWrittenWhole(last))
	// covered reports whether evidence proves frame f of g durable.
	covered := func(g *simSeg, f simFrame) bool {
		switch {
		case g.removed:
			return cp != nil && f.seq <= cp.LastSeq && !segment.IsSystemKind(f.kind)
		case g != last || lastSealed:
			return true
		}
		return cp != nil && (cp.Segment > g.id || cp.Segment == g.id && uint64(f.off) < cp.FrameEnd)
	}
	lose := func(f simFrame) {
		switch {
		case !segment.IsSystemKind(f.kind):
			v.lossable[f.seq] = true
		case f.kind == segment.KindTombstone:
			v.flexDel[f.entity] = true
		}
		for _, seq := range f.stubs {
			v.lossable[seq] = true
		}
	}
	if cp != nil && (last == nil || cp.Segment > last.id) {
		v.refuse = true // the checkpoint names a segment that is gone
	}
	for _, g := range segs {
		if len(g.touched) == 0 && !g.removed {
			continue
		}
		v.segs[g.id] = true
		tail := len(g.frames) // frames from tail on may be cut as a torn tail
		if g == last {
			for tail > 0 && g.hit(g.frames[tail-1].off, g.frames[tail-1].end) && !covered(g, g.frames[tail-1]) {
				tail--
			}
			if tail < len(g.frames) && g.frames[tail].batch >= 0 {
				// An incomplete batch is cut whole, unless evidence covers
				// its first part: then it is corruption.
				b := g.frames[tail].batch
				if slices.ContainsFunc(g.frames[b:tail], func(f simFrame) bool { return covered(g, f) }) {
					tail = len(g.frames)
				} else {
					tail = b
				}
			}
		}
		for i, f := range g.frames {
			switch {
			case i >= tail || g.removed && !covered(g, f):
				lose(f)
			case g.removed || g.hit(f.off, f.end):
				v.refuse = true
				if !segment.IsSystemKind(f.kind) {
					v.corrupt[f.seq] = true
				}
			}
		}
		if g.hit(0, segment.HeaderSize) && (g != last || tail > 0) {
			v.refuse = true // a sealed segment's header cut off
		}
		if g.sealed && g.hit(g.footerOff, g.size) && (g.footerBroken || g != last || simWrittenWhole(g)) {
			v.refuse = true
		}
	}
	return v
}

// simWrittenWhole reports whether g still shows it was written whole,
// footer included, before it took its name, so that no crash tore it: its
// header's flag (compaction sets it) or a hole frame (only compaction and
// repair write them) survived the damage.
func simWrittenWhole(g *simSeg) bool {
	return g.flagged && !g.hit(0, segment.HeaderSize) ||
		slices.ContainsFunc(g.frames, func(f simFrame) bool { return f.kind == segment.KindHole && !g.hit(f.off, f.end) })
}

// simStillSealed reports whether the last segment still shows it was
// sealed: a footer whose magic survived (a damaged footer is still a footer).
func simStillSealed(g *simSeg) bool {
	if !g.sealed {
		return false
	}
	data, err := os.ReadFile(g.path)
	if err != nil {
		return false
	}
	if _, _, err := segment.ReadFooter(data, g.id); err == nil {
		return true
	}
	body := g.footerOff + segment.FrameHeaderSize
	return int64(len(data)) >= body+4 && segment.IsFooterPayload(data[body:])
}
