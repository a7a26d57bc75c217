package eventstore

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// A precise repair works in three steps. planRepair reads every segment
// once and, after each damaged stretch, resynchronises on the next frame
// that is whole: its CRC holds, its record decodes, its sequence follows
// the last one read and its event hash recomputes. The sequences that no
// kept frame holds are the lost events. resolve works out what each of
// them was, from the damaged segment's footer, the checkpoint, a damaged
// frame whose event hash still verifies, or its stream's chain (versions
// that skip over lost sequences). apply (repairwrite.go) then rewrites
// each damaged segment: the intact frames byte for byte, and a hole record
// of stubs where events were lost, so that sequences, versions and hash
// chains stay dense and checkable.

// lostStreamPrefix starts the stream a lost event is given when nothing
// tells which stream it belonged to: "\x00lost:" and its sequence. The
// control character makes it a coordinate no append can use; one stream
// per event keeps every stream's versions in sequence order whatever later
// repairs add; and the repair deletes each such stream with a tombstone,
// so that it is never listed.
const lostStreamPrefix = "\x00lost:"

func lostStreamName(seq uint64) string { return lostStreamPrefix + strconv.FormatUint(seq, 10) }

// region is a stretch of one segment that a repair replaces: damaged bytes
// (start < end), or a point (start == end) where lost events are written
// although no damaged bytes mark their place. Its lost events are written
// there as one hole record, followed by its tombstones.
type region struct {
	seg        *segPlan
	start, end int64
	reason     string
	lost       []*lostEvent // contiguous sequences, ascending
	tombstones []streamID   // deletions written again here
	afterSeq   uint64       // the last sequence placed before it
}

// segPlan is what a repair knows about one segment and does to it.
type segPlan struct {
	id       uint32
	path     string
	missing  bool // the file is gone: it is written anew
	blank    bool // a last segment that never got its header (open removes it)
	last     bool
	size     int64
	header   []byte // the header to write: the original, or a new one
	headerOK bool
	// frameEnd is where the frames end (at a footer, zeros, the end of the
	// file, or after a damaged tail); cut is where the kept frames end: an
	// unacknowledged torn tail of the last segment, from cut to tornEnd,
	// is cut off as open would.
	frameEnd, cut, tornEnd int64
	sealed                 bool // the frames end at a footer frame, whole or not
	whole                  bool // written whole, footer included: its header says so, or it holds a hole frame (compaction or repair wrote it)
	footerAt               int64
	footer                 *segment.Index // the footer, when it is valid
	footerBad              string         // why the footer cannot stay ("" if it can)
	regions                []*region
	drop                   map[int64]bool // batch markers left out: their batch lost events
	seen                   []segment.IndexEntry
	tombstones             []streamID // kept tombstones
}

// rewrite reports whether the segment file must be written anew.
func (sp *segPlan) rewrite() bool {
	return sp.missing || !sp.headerOK && !sp.blank || len(sp.regions) > 0 || sp.footerBad != "" || len(sp.drop) > 0
}

// planEvent is a kept event or stub as the plan needs it.
type planEvent struct {
	seq           uint64
	entity, scope string
	version       uint64
	prevHash      [32]byte
	hash          [32]byte
	sp            *segPlan
	off           int64 // of its frame
	at            int64 // where lost events before it go, if no damage shows where
}

// batchPlan is an atomic batch being read: its events wait for the commit
// marker, as they do on open.
type batchPlan struct {
	open     bool
	beginOff int64
	count    uint64
	firstSeq uint64
	pending  []planEvent
}

type repairPlan struct {
	dir    string
	fsys   vfs.FS
	now    int64
	hasher *chainHasher
	ckpt   *segment.Checkpoint
	segs   []*segPlan
	// lastSeq is the highest sequence read from a frame; placed the highest
	// kept or recorded as lost.
	lastSeq, placed uint64
	streams         map[streamID]*rstream
	pending         *region // the first region after the last kept event
	// openEnd is a segment, not the last, whose frames ended without a
	// footer (zeros or the end of the file) after the last kept event:
	// events lost after it were lost there.
	openEnd    *segPlan
	lost       []*lostEvent
	unresolved []*lostEvent
	gaps       []*gap
	evidence   map[uint64]evidence // from the footers of damaged segments
	curFooter  *segment.Index      // the valid footer of the segment being read
	deleted    map[streamID]bool   // streams whose tombstone is kept
	known      map[streamID]bool   // streams a footer or the checkpoint says were deleted
	lostTombs  []streamID          // deletions known, but nowhere to write them again
	// impossible says why a precise repair cannot be done ("" if it can).
	impossible string
	rec        segment.Record
}

func (p *repairPlan) fail(sp *segPlan, off int64, format string, args ...any) {
	if p.impossible == "" {
		p.impossible = fmt.Sprintf("segment %d offset %d: %s", sp.id, off, fmt.Sprintf(format, args...))
	}
}

// planRepair reads the store in dir and plans a precise repair.
func planRepair(dir string, fsys vfs.FS, now int64) (*repairPlan, error) {
	p := &repairPlan{dir: dir, fsys: fsys, now: now, hasher: newChainHasher(),
		streams: make(map[streamID]*rstream), evidence: make(map[uint64]evidence),
		deleted: make(map[streamID]bool), known: make(map[streamID]bool)}
	if data, err := vfs.ReadFile(fsys, filepath.Join(dir, CheckpointFileName)); err == nil {
		if c, err := segment.DecodeCheckpoint(data); err == nil && c.LastSeq > 0 && len(c.Entries) == int(c.LastSeq) {
			p.ckpt = c
			for _, st := range c.Streams {
				if st.Deleted {
					p.known[streamID{scope: c.Scopes[st.Scope], entity: st.Entity}] = true
				}
			}
		}
	} else if !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	des, err := fsys.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	for _, de := range des {
		if id, ok := segment.ParseFileName(de.Name()); ok {
			if !de.Type().IsRegular() {
				return nil, fmt.Errorf("eventstore: repair: %s is not a regular file", de.Name())
			}
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	next := uint32(1)
	for i, id := range ids {
		for ; next < id; next++ {
			p.segs = append(p.segs, &segPlan{id: next, path: p.segPath(next), missing: true, sealed: true})
		}
		next = id + 1
		p.segs = append(p.segs, &segPlan{id: id, path: p.segPath(id), last: i == len(ids)-1})
	}
	if len(ids) == 0 && p.ckpt != nil { // every segment is gone: one is written with the lost events
		p.segs = append(p.segs, &segPlan{id: 1, path: p.segPath(1), missing: true, last: true})
	}
	for _, sp := range p.segs {
		if sp.missing {
			sp.header = segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Segment: sp.id, Created: p.now})
			sp.frameEnd, sp.cut = segment.HeaderSize, segment.HeaderSize
			p.addRegion(sp, segment.HeaderSize, segment.HeaderSize, "segment file is missing", nil)
			continue
		}
		if err := p.scanSegment(sp); err != nil {
			return nil, err
		}
	}
	p.finish()
	if p.impossible == "" {
		p.resolve()
	}
	return p, nil
}

func (p *repairPlan) segPath(id uint32) string { return filepath.Join(p.dir, segment.FileName(id)) }

// proven reports whether the frames of segment sp up to off were durable:
// its header, or a hole frame before off, shows that compaction or repair
// wrote the file whole, or a valid checkpoint's watermark lies beyond off.
func (p *repairPlan) proven(sp *segPlan, off int64) bool {
	c := p.ckpt
	return sp.whole || c != nil && (c.Segment > sp.id || c.Segment == sp.id && off < int64(c.FrameEnd))
}

// scanSegment reads one segment file frame by frame, resynchronising
// after damage.
func (p *repairPlan) scanSegment(sp *segPlan) error {
	data, release, err := segment.MapFile(p.fsys, sp.path)
	if err != nil {
		return fmt.Errorf("eventstore: repair: %w", err)
	}
	defer func() { _ = release() }()
	sp.size = int64(len(data))
	if sp.last && isBlankSegment(data) && !p.proven(sp, 0) {
		sp.blank = true
		return nil
	}
	h, herr := segment.DecodeHeader(data)
	if errors.Is(herr, segment.ErrUnsupportedVersion) {
		return fmt.Errorf("eventstore: repair: %s: %w", sp.path, herr)
	}
	off := min(int64(segment.HeaderSize), sp.size)
	if herr == nil && h.Segment == sp.id {
		sp.headerOK = true
		sp.whole = h.Flags&segment.HeaderWrittenWhole != 0
		sp.header = bytes.Clone(data[:segment.HeaderSize])
	} else {
		sp.header = segment.AppendHeader(nil, segment.Header{Version: segment.FormatVersion, Segment: sp.id, Created: p.now})
		reason := fmt.Sprintf("header names segment %d", h.Segment)
		if herr != nil {
			reason = herr.Error()
		}
		p.addRegion(sp, 0, off, "damaged header: "+reason, nil)
	}
	footer, footerAt, ferr := segment.ReadFooter(data, sp.id)
	if ferr == nil {
		sp.footer = footer
	}
	p.curFooter = sp.footer
	var bp batchPlan
	sp.tornEnd = -1
frames:
	for {
		payload, size, st := segment.DecodeFrame(data[off:])
		var reason string
		switch st {
		case segment.FrameOK:
			if segment.IsFooterPayload(payload) {
				sp.sealed, sp.frameEnd, sp.footerAt = true, off, off
				break frames
			}
			if reason = p.frame(sp, &bp, off, size, payload); reason == "" {
				off += int64(size)
				continue
			}
		case segment.FrameEnd:
			if p.nextFrame(data, off+1) < 0 {
				sp.frameEnd = off
				break frames
			}
			reason = "zeroed frame header"
		case segment.FrameBad:
			reason = "frame length or checksum is wrong"
		default:
			reason = "frame runs past the end of the file"
		}
		if st != segment.FrameOK && footerFrameAt(data, off) {
			sp.sealed, sp.frameEnd, sp.footerAt = true, off, off
			sp.footerBad = "footer frame is damaged"
			break
		}
		if next := p.nextFrame(data, off+1); next >= 0 {
			p.damaged(sp, &bp, off, next, reason, data)
			off = next
			continue
		}
		// Nothing valid follows: a damaged tail. In the last segment, past
		// what a checkpoint proves durable, it is a write that never
		// completed, and open cuts it (with a batch it is part of).
		end := sp.size
		if sp.last {
			end = off + frameBytesAfter(data, off)
		}
		if sp.last && !p.proven(sp, off) {
			sp.frameEnd, sp.cut, sp.tornEnd = off, off, end
			break
		}
		p.damaged(sp, &bp, off, end, reason+", and nothing valid follows", data)
		sp.frameEnd = end
		break
	}
	sp.cut = max(sp.cut, sp.frameEnd)
	if sp.tornEnd >= 0 {
		sp.cut = sp.frameEnd
	}
	if bp.open { // a batch without its commit marker
		if sp.last && !p.proven(sp, bp.beginOff) {
			sp.cut = bp.beginOff // in flight at a crash: open cuts it
			sp.tornEnd = max(sp.tornEnd, sp.frameEnd)
		} else {
			p.breakBatch(sp, &bp)
		}
	}
	switch {
	case !sp.sealed:
	case sp.footerBad != "":
	case ferr != nil:
		sp.footerBad = ferr.Error()
	case footerAt != sp.frameEnd:
		sp.footerBad = fmt.Sprintf("footer at %d, but the frames end at %d", footerAt, sp.frameEnd)
	case len(sp.regions) == 0: // else the footer lists events that were lost, and is written anew
		sp.footerBad = footerDisagrees(sp.footer, sp.seen)
	}
	switch {
	case sp.whole && !sp.sealed:
		// A file written whole has lost its footer: seal it again.
		sp.footerBad = "a compacted segment has lost its footer"
	case sp.last && sp.sealed && sp.footer == nil && !sp.whole:
		// A footer that does not load at the end of the last segment is a
		// seal a crash interrupted, not damage: open cuts it and makes the
		// segment active again. A rewrite does the same.
		sp.sealed, sp.footerBad = false, ""
		sp.cut, sp.tornEnd = min(sp.cut, sp.frameEnd), sp.size
	}
	if sp.footer != nil {
		for _, d := range sp.footer.Deleted {
			p.known[streamID{scope: sp.footer.Strings[d.Scope], entity: sp.footer.Strings[d.Entity]}] = true
		}
		if len(sp.regions) > 0 {
			p.addFooterEvidence(sp.footer)
		}
	}
	if !sp.last && !sp.sealed && sp.cut == sp.frameEnd && p.pending == nil {
		p.openEnd = sp
	}
	p.curFooter, sp.seen = nil, nil
	return nil
}

// footerFrameAt reports whether the damaged frame at off is a sealed
// segment's footer: its body starts with the footer magic, or the trailer
// points at it.
func footerFrameAt(data []byte, off int64) bool {
	if body := off + segment.FrameHeaderSize; body+4 <= int64(len(data)) && segment.IsFooterPayload(data[body:]) {
		return true
	}
	n := int64(len(data))
	if n-segment.TrailerSize < off {
		return false
	}
	t := data[n-segment.TrailerSize:]
	return string(t[8:]) == "BPSGEND\x00" && int64(binary.BigEndian.Uint64(t[:8])) == off
}

// footerDisagrees compares a valid footer with the frames found.
func footerDisagrees(ix *segment.Index, seen []segment.IndexEntry) string {
	if len(ix.Entries) != len(seen) {
		return fmt.Sprintf("footer lists %d events, the segment holds %d", len(ix.Entries), len(seen))
	}
	for i, e := range ix.Entries {
		s := seen[i]
		if e.Seq != s.Seq || e.ID != s.ID || e.Offset != s.Offset || e.Length != s.Length {
			return fmt.Sprintf("footer entry %d (sequence %d) disagrees with the frame at %d", i, e.Seq, s.Offset)
		}
	}
	return ""
}

// nextFrame returns where reading can resume after damage at from-1.
func (p *repairPlan) nextFrame(data []byte, from int64) int64 { return resyncAt(data, from, p.lastSeq) }

// resyncAt returns the offset of the first whole frame at or after from
// where reading can resume after damage: a footer, a marker, or an event
// or hole record after sequence afterSeq; or -1. It looks at every byte
// (a damaged length says nothing about where the next frame starts), skips
// zero runs a word at a time, and computes a CRC only where the payload
// starts like a record or a footer.
func resyncAt(data []byte, from int64, afterSeq uint64) int64 {
	n := int64(len(data))
	var rec segment.Record
	for q := from; q+segment.FrameHeaderSize < n; q++ {
		if data[q] == 0 {
			// A frame's length has a non-zero byte in its first four.
			z := q
			for z+8 <= n && binary.LittleEndian.Uint64(data[z:]) == 0 {
				z += 8
			}
			if z-3 > q {
				q = z - 4
				continue
			}
		}
		if first := data[q+segment.FrameHeaderSize]; first != 0x90|15 && first != 'B' {
			continue // neither a record (an array of 15) nor a footer ("BPFT")
		}
		payload, _, st := segment.DecodeFrame(data[q:])
		if st != segment.FrameOK {
			continue
		}
		if segment.IsFooterPayload(payload) {
			return q
		}
		if segment.DecodeRecord(payload, &rec) != nil {
			continue
		}
		if rec.IsMarker() && rec.Kind != segment.KindHole || rec.Seq > afterSeq {
			return q
		}
	}
	return -1
}

// frame reads one whole frame; it returns why the frame cannot be kept,
// or "".
func (p *repairPlan) frame(sp *segPlan, bp *batchPlan, off int64, size int, payload []byte) string {
	rec := &p.rec
	if err := segment.DecodeRecord(payload, rec); err != nil {
		return err.Error()
	}
	switch rec.Kind {
	case segment.KindBatchBegin:
		p.breakBatch(sp, bp)
		*bp = batchPlan{open: true, beginOff: off, count: rec.Version, firstSeq: rec.Seq}
		return ""
	case segment.KindBatchCommit:
		if !bp.open || uint64(len(bp.pending)) != bp.count || rec.Version != bp.count {
			p.breakBatch(sp, bp)
			p.dropMarker(sp, off)
			return ""
		}
		for _, ev := range bp.pending {
			p.apply(ev)
		}
		*bp = batchPlan{}
		return ""
	case segment.KindTombstone:
		p.breakBatch(sp, bp)
		id := streamID{scope: rec.Scope, entity: rec.Entity}
		if _, ok := p.streams[id]; !ok {
			p.known[id] = true
			return fmt.Sprintf("tombstone of stream %v, none of whose events is known", id)
		}
		p.deleted[id] = true
		sp.tombstones = append(sp.tombstones, id)
		return ""
	case segment.KindHole:
		stubs, err := segment.DecodeStubs(rec.Payload)
		switch {
		case err != nil:
			return "hole record: " + err.Error()
		case len(stubs) == 0 || uint64(len(stubs)) != rec.Version || stubs[0].Seq != rec.Seq:
			return "hole record does not hold the stubs it says"
		case stubs[0].Seq <= p.lastSeq:
			return fmt.Sprintf("hole record from sequence %d after sequence %d", stubs[0].Seq, p.lastSeq)
		}
		for i := 1; i < len(stubs); i++ {
			if stubs[i].Seq != stubs[i-1].Seq+1 {
				return "hole record with stubs out of order"
			}
		}
		p.breakBatch(sp, bp)
		sp.whole = true
		for _, st := range stubs {
			p.lastSeq = st.Seq
			p.apply(planEvent{seq: st.Seq, entity: st.Entity, scope: st.Scope, version: st.Version,
				prevHash: st.PrevHash, hash: st.Hash, sp: sp, off: off, at: off})
			sp.seen = append(sp.seen, segment.IndexEntry{Seq: st.Seq, ID: st.ID, Offset: uint32(off), Length: uint32(size)})
		}
		return ""
	}
	if rec.IsMarker() {
		return fmt.Sprintf("unknown system kind 0x%04x", rec.Kind)
	}
	if rec.Seq <= p.lastSeq {
		return fmt.Sprintf("event of sequence %d after sequence %d", rec.Seq, p.lastSeq)
	}
	if p.hasher.Sum(rec) != rec.Hash {
		return fmt.Sprintf("event %d: hash does not match its content", rec.Seq)
	}
	if bp.open && (len(bp.pending) == 0 && rec.Seq != bp.firstSeq || len(bp.pending) > 0 && rec.Seq != p.lastSeq+1) {
		p.breakBatch(sp, bp) // events of the batch were lost
	}
	p.lastSeq = rec.Seq
	ev := planEvent{seq: rec.Seq, entity: rec.Entity, scope: rec.Scope, version: rec.Version,
		prevHash: rec.PrevHash, hash: rec.Hash, sp: sp, off: off, at: off}
	sp.seen = append(sp.seen, segment.IndexEntry{Seq: rec.Seq, ID: rec.ID, Offset: uint32(off), Length: uint32(size)})
	if bp.open {
		ev.at = bp.beginOff // a hole record never goes inside a batch
		bp.pending = append(bp.pending, ev)
		return ""
	}
	p.apply(ev)
	return ""
}

// breakBatch gives up the open batch's atomicity: it lost events, so its
// markers are left out and its intact events are kept one by one.
func (p *repairPlan) breakBatch(sp *segPlan, bp *batchPlan) {
	if !bp.open {
		return
	}
	p.dropMarker(sp, bp.beginOff)
	for _, ev := range bp.pending {
		p.apply(ev)
	}
	*bp = batchPlan{}
}

func (p *repairPlan) dropMarker(sp *segPlan, off int64) {
	if sp.drop == nil {
		sp.drop = make(map[int64]bool)
	}
	sp.drop[off] = true
}

// damaged records the damaged bytes [start, end) of segment sp.
func (p *repairPlan) damaged(sp *segPlan, bp *batchPlan, start, end int64, reason string, data []byte) {
	p.breakBatch(sp, bp)
	p.addRegion(sp, start, end, reason, data)
}

// addRegion adds a region to sp: the lost sequences found next go to the
// first region after the last kept event. A damaged frame whose event
// still verifies by its hash tells what was lost.
func (p *repairPlan) addRegion(sp *segPlan, start, end int64, reason string, data []byte) *region {
	r := &region{seg: sp, start: start, end: end, reason: reason, afterSeq: p.placed}
	sp.regions = append(sp.regions, r)
	if p.pending == nil {
		p.pending = r
	}
	if data != nil {
		p.damagedFrameEvidence(r, data)
	}
	return r
}
