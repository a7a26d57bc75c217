package eventstore

import (
	"bytes"
	"cmp"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// piece is a stretch of a segment a precise repair replaces, as reported
// and (when it holds bytes) moved to quarantine.
type piece struct {
	sp         *segPlan
	start, end int64
	reason     string
	lost       []*lostEvent
	file       string // in the quarantine directory, relative to the store
}

// pieces lists what the plan replaces, segment by segment, and names the
// quarantine file of each piece with damaged bytes, next to those already
// there.
func (p *repairPlan) pieces() ([]piece, error) {
	taken := make(map[string]bool)
	des, err := p.fsys.ReadDir(filepath.Join(p.dir, QuarantineDir))
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, err
	}
	for _, de := range des {
		taken[de.Name()] = true
	}
	name := func(id uint32, off int64) string {
		base := fmt.Sprintf("%s.%d", segment.FileName(id), off)
		n := base + ".bin"
		for i := 2; taken[n]; i++ {
			n = fmt.Sprintf("%s.%d.bin", base, i)
		}
		taken[n] = true
		return filepath.Join(QuarantineDir, n)
	}
	var out []piece
	for _, sp := range p.segs {
		if !sp.rewrite() {
			continue
		}
		for _, r := range sortedRegions(sp) {
			out = append(out, piece{sp: sp, start: r.start, end: r.end, reason: r.reason, lost: r.lost})
		}
		if sp.footerBad != "" {
			out = append(out, piece{sp: sp, start: sp.footerAt, end: sp.size, reason: "footer: " + sp.footerBad})
		}
		if sp.tornEnd > sp.cut {
			out = append(out, piece{sp: sp, start: sp.cut, end: sp.tornEnd,
				reason: "unacknowledged tail of the last segment (open would cut it)"})
		}
	}
	for i := range out {
		if pc := &out[i]; pc.end > pc.start {
			pc.file = name(pc.sp.id, pc.start)
		}
	}
	return out, nil
}

func sortedRegions(sp *segPlan) []*region {
	rs := slices.Clone(sp.regions)
	slices.SortStableFunc(rs, func(a, b *region) int { return cmp.Or(cmp.Compare(a.start, b.start), cmp.Compare(a.end, b.end)) })
	return rs
}

// write carries the plan out. The damaged bytes go to quarantine first
// (synced), then the checkpoint is removed (it holds positions that
// change), then each damaged segment is written anew through a temporary
// file, synced and renamed over the old one, so a crash at any point
// leaves every segment whole, either as it was or repaired, and running
// the repair again finishes the work.
func (p *repairPlan) write(pieces []piece, fileMode, dirMode os.FileMode) error {
	qdir := filepath.Join(p.dir, QuarantineDir)
	quarantined := false
	for _, sp := range p.segs {
		if !sp.rewrite() || sp.missing {
			continue
		}
		if err := p.withData(sp, func(data []byte) error {
			for _, pc := range pieces {
				if pc.sp != sp || pc.file == "" {
					continue
				}
				if !quarantined {
					if err := vfs.MkdirAllSynced(p.fsys, qdir, dirMode); err != nil {
						return err
					}
					quarantined = true
				}
				end := min(pc.end, int64(len(data)))
				if err := vfs.WriteFileSynced(p.fsys, filepath.Join(p.dir, pc.file), data[pc.start:end], fileMode); err != nil {
					return err
				}
			}
			return nil
		}); err != nil {
			return err
		}
	}
	if quarantined {
		if err := p.fsys.SyncDir(qdir); err != nil {
			return err
		}
	}
	if err := p.fsys.Remove(filepath.Join(p.dir, CheckpointFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	if err := p.fsys.SyncDir(p.dir); err != nil {
		return err
	}
	deleted := make(map[streamID]bool)
	for _, sp := range p.segs {
		if !sp.rewrite() {
			for _, name := range sp.tombstones {
				deleted[name] = true
			}
			continue
		}
		if err := p.withData(sp, func(data []byte) error {
			buf, err := p.build(sp, data, deleted)
			if err != nil {
				return err
			}
			return vfs.WriteFileAtomic(p.fsys, sp.path, buf, fileMode)
		}); err != nil {
			return fmt.Errorf("eventstore: repair segment %d: %w", sp.id, err)
		}
	}
	return nil
}

// withData calls fn with the content of segment sp (none if it is missing).
func (p *repairPlan) withData(sp *segPlan, fn func(data []byte) error) error {
	if sp.missing {
		return fn(nil)
	}
	data, release, err := segment.MapFile(p.fsys, sp.path)
	if err != nil {
		return err
	}
	if int64(len(data)) != sp.size {
		_ = release()
		return fmt.Errorf("eventstore: repair: %s changed size while repairing", sp.path)
	}
	err = fn(data)
	if rerr := release(); err == nil {
		err = rerr
	}
	return err
}

// build returns the repaired content of segment sp: its header, its kept
// frames byte for byte, a hole record (and tombstones) for each region,
// and a footer. deleted holds the streams deleted
// before it and gets those it deletes.
func (p *repairPlan) build(sp *segPlan, data []byte, deleted map[streamID]bool) ([]byte, error) {
	buf := bytes.Clone(sp.header)
	fb := newFooterBuilder(sp.id)
	emit := func(r *region) {
		// One hole record per run of events lost to damage, and per run of
		// stubs of events compaction had removed: those stay removed, not
		// lost (segment.HoleLostKey marks only the first kind).
		for lost := r.lost; len(lost) > 0; {
			n := 1
			for n < len(lost) && lost[n].removed == lost[0].removed {
				n++
			}
			stubs := make([]segment.Stub, n)
			for i, l := range lost[:n] {
				stubs[i] = l.stub
			}
			meta := map[string]string{"reason": "lost to damage: " + r.reason, segment.HoleLostKey: "damage"}
			if lost[0].removed {
				meta = map[string]string{"reason": "removed before; stubs written again after damage: " + r.reason}
			}
			hole := segment.Record{Seq: stubs[0].Seq, Kind: segment.KindHole, Version: uint64(n), Timestamp: p.now,
				Metadata: meta, Payload: segment.AppendStubs(nil, stubs)}
			off := len(buf)
			buf, _ = segment.AppendFrame(buf, segment.AppendRecord(nil, &hole))
			for i := range stubs {
				fb.addStub(&stubs[i], off, len(buf)-off, !lost[0].removed)
			}
			lost = lost[n:]
		}
		for _, name := range r.tombstones {
			t := segment.Record{Seq: r.afterSeq + uint64(len(r.lost)), Kind: segment.KindTombstone, Timestamp: p.now, Entity: name.entity, Scope: name.scope}
			buf, _ = segment.AppendFrame(buf, segment.AppendRecord(nil, &t))
			deleted[name] = true
		}
	}
	regions := sortedRegions(sp)
	var rec segment.Record
	batch := uint64(0) // items of the kept batch being copied, for its key
	for off, ri := int64(segment.HeaderSize), 0; ; {
		for ; ri < len(regions) && regions[ri].start <= off; ri++ {
			emit(regions[ri])
			off = max(off, regions[ri].end)
		}
		if off >= sp.cut {
			for ; ri < len(regions); ri++ {
				emit(regions[ri])
			}
			break
		}
		payload, size, st := segment.DecodeFrame(data[off:])
		if st != segment.FrameOK || segment.DecodeRecord(payload, &rec) != nil {
			return nil, fmt.Errorf("the frame at %d no longer reads as it did", off)
		}
		if !sp.drop[off] {
			pos := len(buf)
			buf = append(buf, data[off:off+int64(size)]...)
			switch rec.Kind {
			case segment.KindBatchBegin:
				batch = rec.Version
			case segment.KindBatchCommit:
				batch = 0
			case segment.KindTombstone:
				deleted[streamID{scope: rec.Scope, entity: rec.Entity}] = true
			case segment.KindHole:
				stubs, err := segment.DecodeStubs(rec.Payload)
				if err != nil {
					return nil, err
				}
				lost := rec.Metadata[segment.HoleLostKey] != ""
				for i := range stubs {
					fb.addStub(&stubs[i], pos, size, lost)
				}
			default:
				fb.addEvent(&rec, pos, size, max(batch, 1))
				batch = 0 // only the first item carries the request's key
			}
		}
		off += int64(size)
	}
	// Every repaired segment is sealed, the last one too (appends go on in a
	// new segment): its footer keeps the idempotency keys of lost events,
	// which the frames no longer hold.
	ix, err := fb.index(sp.footer, p.ckpt, deleted)
	if err != nil {
		return nil, err
	}
	return segment.AppendFooter(buf, sp.id, int64(len(buf)), ix)
}

// footerBuilder collects the footer index of a repaired segment.
type footerBuilder struct {
	id      uint32
	strs    segment.StringTable
	entries []segment.IndexEntry
	tails   map[segment.StreamRef]segment.StreamTail
	keys    []segment.IdempotencyRecord
}

func newFooterBuilder(id uint32) *footerBuilder {
	return &footerBuilder{id: id, tails: make(map[segment.StreamRef]segment.StreamTail)}
}

func (fb *footerBuilder) add(e segment.IndexEntry, hash [32]byte) {
	fb.entries = append(fb.entries, e)
	fb.tails[segment.StreamRef{Entity: e.Entity, Scope: e.Scope}] = segment.StreamTail{Entity: e.Entity, Scope: e.Scope, Version: e.Version, LastHash: hash}
}

func (fb *footerBuilder) addEvent(rec *segment.Record, off, size int, count uint64) {
	fb.add(segment.IndexEntry{Seq: rec.Seq, Version: rec.Version, Timestamp: rec.Timestamp, ID: rec.ID,
		Correlation: rec.Correlation, Causation: rec.Causation, Kind: rec.Kind,
		Entity: fb.strs.ID(rec.Entity), Scope: fb.strs.ID(rec.Scope),
		Segment: fb.id, Offset: uint32(off), Length: uint32(size)}, rec.Hash)
	if rec.IdempotencyKey != "" {
		fb.keys = append(fb.keys, segment.IdempotencyRecord{Key: rec.IdempotencyKey, First: rec.Seq, Count: uint32(count)})
	}
}

func (fb *footerBuilder) addStub(st *segment.Stub, off, size int, lost bool) {
	flags := segment.EntryDeleted
	if lost {
		flags |= segment.EntryLost
	}
	fb.add(segment.IndexEntry{Seq: st.Seq, Version: st.Version, ID: st.ID, Correlation: st.ID, Kind: st.Kind,
		Flags: flags, Entity: fb.strs.ID(st.Entity), Scope: fb.strs.ID(st.Scope),
		Segment: fb.id, Offset: uint32(off), Length: uint32(size)}, st.Hash)
}

// index returns the footer. Idempotency keys come from the old footer if
// it was valid (it also has the keys of lost events), else from the kept
// events and the checkpoint.
func (fb *footerBuilder) index(old *segment.Index, ckpt *segment.Checkpoint, deleted map[streamID]bool) (*segment.Index, error) {
	ix := &segment.Index{Entries: fb.entries}
	if n := len(fb.entries); n > 0 {
		lo, hi := fb.entries[0].Seq, fb.entries[n-1].Seq
		keys := fb.keys
		switch {
		case old != nil:
			keys = old.Keys
		case ckpt != nil:
			for _, k := range ckpt.Keys {
				if k.First >= lo && k.First <= hi && !slices.ContainsFunc(keys, func(o segment.IdempotencyRecord) bool { return o.Key == k.Key }) {
					keys = append(keys, k)
				}
			}
		}
		for _, k := range keys {
			if k.First >= lo && k.First <= hi {
				ix.Keys = append(ix.Keys, k)
			}
		}
		slices.SortFunc(ix.Keys, func(a, b segment.IdempotencyRecord) int { return cmp.Compare(a.First, b.First) })
	}
	for _, t := range fb.tails {
		ix.Tails = append(ix.Tails, t)
	}
	slices.SortFunc(ix.Tails, func(a, b segment.StreamTail) int {
		return cmp.Or(cmp.Compare(a.Entity, b.Entity), cmp.Compare(a.Scope, b.Scope))
	})
	names := make([]streamID, 0, len(deleted))
	for name := range deleted {
		names = append(names, name)
	}
	slices.SortFunc(names, streamID.compare)
	for _, name := range names {
		ix.Deleted = append(ix.Deleted, segment.StreamRef{Entity: fb.strs.ID(name.entity), Scope: fb.strs.ID(name.scope)})
	}
	ix.Strings = fb.strs.Strings
	return ix, ix.Validate()
}
