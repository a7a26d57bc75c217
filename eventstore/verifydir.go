package eventstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// VerifyReport is the result of [Verify]: what was checked and every
// problem found.
type VerifyReport struct {
	Segments int
	Events   uint64
	Streams  int
	Bytes    int64
	// Footers counts sealed segments whose footer index is valid and agrees
	// with their frames.
	Footers  int
	Problems []Problem
	// Warnings are findings that are not damage: a torn tail of the active
	// segment (a write that was never acknowledged; the next open cuts it),
	// a blank last segment (the next open removes it).
	Warnings []Problem
	// Checkpoint describes the checkpoint file: "valid", "absent", or why it
	// would be ignored (which is not damage: Open falls back to scanning).
	Checkpoint string
	// TypeNames is the number of event type names in the catalog.
	TypeNames int
	// Keys counts the data subjects with a key, Forgotten those whose key
	// was destroyed (verifykeys.go).
	Keys, Forgotten int
}

// OK reports whether no problem was found.
func (r *VerifyReport) OK() bool { return len(r.Problems) == 0 }

// Problem is one piece of damage.
type Problem struct {
	Segment uint32
	Path    string
	Offset  int64
	Kind    string // "frame", "sequence", "chain", "footer", "torn-tail", "file", "checkpoint", "catalog", "key"
	Detail  string
}

func (p Problem) String() string {
	return fmt.Sprintf("%s at offset %d: %s: %s", p.Path, p.Offset, p.Kind, p.Detail)
}

// VerifyOption configures [Verify].
type VerifyOption func(*verifyConfig)

type verifyConfig struct {
	progress func(done, total int64)
	fs       vfs.FS
}

// WithProgress calls fn with the bytes verified so far and the total.
func WithProgress(fn func(done, total int64)) VerifyOption {
	return func(c *verifyConfig) { c.progress = fn }
}

// WithVerifyFS sets the file system Verify reads through.
func WithVerifyFS(fsys vfs.FS) VerifyOption { return func(c *verifyConfig) { c.fs = fsys } }

// Verify checks a store directory without opening it: every frame's CRC
// and encoding, dense global sequences, every stream's versions and hash
// chain (each hash recomputed), every footer against the frames it
// indexes, the checkpoint, the catalog of type names and the subjects'
// key files (every sealed event's subject must have a key or a
// tombstone). It reads each segment once, sequentially,
// and keeps going after damage so the report is complete. It needs no lock
// and changes nothing.
func Verify(dir string, opts ...VerifyOption) (*VerifyReport, error) {
	cfg := verifyConfig{fs: vfs.OSFS{}}
	for _, o := range opts {
		o(&cfg)
	}
	des, err := cfg.fs.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var ids []uint32
	var total int64
	for _, de := range des {
		if id, ok := segment.ParseFileName(de.Name()); ok {
			ids = append(ids, id)
			if fi, err := de.Info(); err == nil {
				total += fi.Size()
			}
		}
	}
	v := &verifier{report: &VerifyReport{Segments: len(ids)}, tips: make(map[streamID]streamTip), hasher: newChainHasher(), dir: dir}
	ckpt, ckptErr := readCheckpointFile(cfg.fs, dir)
	if ckptErr == nil {
		v.floor = durableFloor{segment: ckpt.Segment, end: int64(ckpt.FrameEnd)}
	}
	v.loadKeys(cfg.fs)
	var reported int64
	v.progress = func(off int64) {
		if cfg.progress != nil && v.report.Bytes+off-reported >= 1<<20 {
			reported = v.report.Bytes + off
			cfg.progress(reported, total)
		}
	}
	for i, id := range ids {
		if i > 0 && id != ids[i-1]+1 {
			v.problem(ids[i-1]+1, 0, "file", "segment file is missing")
			v.resync = true
		}
		v.segment(cfg.fs, id, i == len(ids)-1)
		if cfg.progress != nil {
			cfg.progress(v.report.Bytes, total)
		}
	}
	v.report.Streams = len(v.tips)
	v.report.Checkpoint = v.checkpoint(ckpt, ckptErr, ids)
	v.catalog(cfg.fs)
	v.keys()
	return v.report, nil
}

type verifier struct {
	report  *VerifyReport
	dir     string
	lastSeq uint64
	tips    map[streamID]streamTip
	hasher  *chainHasher
	resync  bool // after damaged frames, the next event re-anchors the sequence and chains
	// unanchored: streams first seen after damage start where they are.
	unanchored bool
	progress   func(off int64)
	// floor is the durable watermark of a whole checkpoint: a cut or torn
	// frame below it is damage, not a write that never completed.
	floor durableFloor
	// subjects are the data subjects of the sealed events read, with the
	// first event of each.
	subjects map[batpak.Subject]uint64
	keyFiles map[string]*keyFile // by file name, read before the segments
}

func (v *verifier) path(id uint32) string { return filepath.Join(v.dir, segment.FileName(id)) }

func (v *verifier) problem(id uint32, off int64, kind, detail string) {
	v.report.Problems = append(v.report.Problems, Problem{Segment: id, Path: v.path(id), Offset: off, Kind: kind, Detail: detail})
}

func (v *verifier) segment(fsys vfs.FS, id uint32, last bool) {
	// Verify takes no lock: a writer may seal the active segment while it
	// is read, cutting the space reserved after its frames. A page the
	// disk cannot read is damage.
	var fault error
	var data []byte
	events, bytes := v.report.Events, v.report.Bytes
	defer func() {
		switch {
		case fault == nil:
		case last && errors.Is(fault, segment.ErrFileCut):
			v.report.Events, v.report.Bytes = events, bytes
			v.report.Warnings = append(v.report.Warnings, Problem{Segment: id, Path: v.path(id), Kind: "file",
				Detail: "not verified: a writer cut the file while it was read (a seal of the active segment); verify again"})
		default:
			v.report.Events, v.report.Bytes = events, bytes
			var off int64
			if fe := (*segment.FaultError)(nil); errors.As(fault, &fe) {
				off = max(fe.Offset, 0)
			}
			v.problem(id, off, "file", fault.Error())
		}
	}()
	defer segment.RecoverFault(segment.GuardFaults(), &fault, segment.Mapping{Data: &data, FS: fsys, Path: v.path(id)})
	data, release, err := segment.MapFile(fsys, v.path(id))
	if err != nil {
		v.problem(id, 0, "file", err.Error())
		return
	}
	defer func() { _ = release() }()
	if testHookMapped != nil {
		testHookMapped(v.path(id))
	}
	v.report.Bytes += int64(len(data))
	if last && isBlankSegment(data) {
		v.report.Warnings = append(v.report.Warnings, Problem{Segment: id, Path: v.path(id), Kind: "file",
			Detail: "last segment never got its header (a crash while creating it; the next open removes it)"})
		return
	}
	footer, footerEnd, ferr := segment.ReadFooter(data, id)
	var seen []segment.IndexEntry
	inBatch, batched := false, uint64(0)
	// Written whole, footer included: its header says so, or a hole frame
	// (only compaction and repair write them) shows it.
	whole := false
	res, err := segment.Scan(data, id, v.path(id), 0, func(off int64, size int, rec *segment.Record) error {
		whole = whole || rec.Kind == segment.KindHole
		if rec.IsMarker() {
			switch rec.Kind {
			case segment.KindBatchBegin:
				inBatch, batched = true, 0
			case segment.KindBatchCommit:
				if !inBatch || batched != rec.Version {
					v.problem(id, off, "frame", "batch commit marker without its events")
				}
				inBatch = false
			case segment.KindHole:
				stubs, err := segment.DecodeStubs(rec.Payload)
				if err != nil {
					v.problem(id, off, "frame", "hole frame: "+err.Error())
					return nil
				}
				for _, st := range stubs {
					v.stub(id, off, &st)
					seen = append(seen, segment.IndexEntry{Seq: st.Seq, ID: st.ID, Offset: uint32(off), Length: uint32(size)})
				}
			}
			return nil
		}
		v.progress(off)
		v.event(id, off, rec)
		seen = append(seen, segment.IndexEntry{Seq: rec.Seq, ID: rec.ID, Offset: uint32(off), Length: uint32(size)})
		if inBatch {
			batched++
		}
		return nil
	})
	whole = whole || res.Header.Flags&segment.HeaderWrittenWhole != 0
	tornAt := int64(-1)
	if res.Torn != nil {
		tornAt = res.Torn.Offset
	}
	belowFloor := v.floor.below(id, tornAt, res.FrameEnd)
	var ce *segment.CorruptError
	switch {
	case errors.As(err, &ce):
		v.problem(id, ce.Offset, "frame", ce.Reason)
		v.resync = true
		return // the frames after the damage were not read: the footer cannot be compared
	case err != nil:
		v.problem(id, 0, "file", err.Error())
		v.resync = true
		return
	case res.Torn != nil && !last:
		v.problem(id, res.Torn.Offset, "frame", res.Torn.Reason+" in a sealed segment")
		v.resync = true
	case res.Torn != nil && belowFloor != "":
		v.problem(id, res.Torn.Offset, "frame", res.Torn.Reason+", "+belowFloor)
		v.resync = true
	case belowFloor != "":
		v.problem(id, res.FrameEnd, "frame", belowFloor)
	case res.Torn != nil && whole:
		v.problem(id, res.Torn.Offset, "frame", res.Torn.Reason+" in a compacted segment (written whole: it was cut)")
		v.resync = true
	case res.Torn != nil:
		v.report.Warnings = append(v.report.Warnings, Problem{Segment: id, Path: v.path(id), Offset: res.Torn.Offset,
			Kind: "torn-tail", Detail: res.Torn.Reason + " (never acknowledged; the next open cuts it)"})
	case inBatch && !last:
		v.problem(id, res.FrameEnd, "frame", "incomplete batch in a sealed segment")
	}
	if ferr == nil {
		if msg := footerAgrees(footer, seen, footerEnd, res.FrameEnd); msg != "" {
			v.problem(id, footerEnd, "footer", msg)
		} else {
			v.report.Footers++
		}
	} else if res.Sealed && last && !whole {
		v.report.Warnings = append(v.report.Warnings, Problem{Segment: id, Path: v.path(id), Offset: res.FrameEnd, Kind: "footer",
			Detail: ferr.Error() + " (an interrupted seal of the last segment; the next open cuts it and writes it again)"})
	} else if res.Sealed {
		v.problem(id, res.FrameEnd, "footer", ferr.Error())
	} else if whole {
		v.problem(id, res.FrameEnd, "footer", "a compacted segment has lost its footer (written whole: it was cut)")
	} else if !last {
		v.report.Warnings = append(v.report.Warnings, Problem{Segment: id, Path: v.path(id), Offset: res.FrameEnd,
			Kind: "footer", Detail: "sealed segment has no footer (open scans it)"})
	}
}

// event checks one event's sequence, version, chain link and hash.
func (v *verifier) event(id uint32, off int64, rec *segment.Record) {
	v.report.Events++
	v.subject(id, off, rec)
	v.link(id, off, rec, true)
}

// link checks rec's sequence, version and chain link; withHash also
// recomputes its hash.
func (v *verifier) link(id uint32, off int64, rec *segment.Record, withHash bool) {
	if v.resync {
		// Events after damage cannot be checked against what was lost:
		// take the next one as the new anchor instead of reporting every
		// later event again.
		v.resync = false
		v.lastSeq = rec.Seq - 1
		clear(v.tips)
		v.unanchored = true
	}
	if rec.Seq != v.lastSeq+1 {
		v.problem(id, off, "sequence", fmt.Sprintf("sequence %d follows %d", rec.Seq, v.lastSeq))
	}
	v.lastSeq = rec.Seq
	sid := streamID{scope: rec.Scope, entity: rec.Entity}
	tip, known := v.tips[sid]
	if !known && v.unanchored && rec.Version > 1 {
		tip = streamTip{version: rec.Version - 1, hash: rec.PrevHash}
	}
	switch {
	case rec.Version != tip.version+1:
		v.problem(id, off, "chain", fmt.Sprintf("%q version %d follows %d", rec.Entity, rec.Version, tip.version))
	case rec.PrevHash != tip.hash:
		v.problem(id, off, "chain", fmt.Sprintf("%q version %d does not link to the previous hash", rec.Entity, rec.Version))
	case withHash && v.hasher.Sum(rec) != rec.Hash:
		v.problem(id, off, "chain", fmt.Sprintf("%q version %d: hash does not match the content", rec.Entity, rec.Version))
	}
	v.tips[sid] = streamTip{version: rec.Version, hash: rec.Hash}
}

// stub checks a removed event's place in the sequence and its chain links
// (its content is gone, so its own hash cannot be recomputed).
func (v *verifier) stub(id uint32, off int64, st *segment.Stub) {
	rec := segment.Record{Seq: st.Seq, Entity: st.Entity, Scope: st.Scope, Version: st.Version, PrevHash: st.PrevHash, Hash: st.Hash}
	v.link(id, off, &rec, false)
}

// footerAgrees compares a footer with the frames actually found.
func footerAgrees(ix *segment.Index, seen []segment.IndexEntry, footerAt, frameEnd int64) string {
	if footerAt != frameEnd {
		return fmt.Sprintf("footer at %d but frames end at %d", footerAt, frameEnd)
	}
	if len(ix.Entries) != len(seen) {
		return fmt.Sprintf("footer lists %d events, the segment holds %d", len(ix.Entries), len(seen))
	}
	for i, e := range ix.Entries {
		s := seen[i]
		if e.Seq != s.Seq || e.ID != s.ID || e.Offset != s.Offset || e.Length != s.Length {
			return fmt.Sprintf("footer entry %d (%s) disagrees with the frame at %d", i, e.String(), s.Offset)
		}
	}
	return ""
}

// readCheckpointFile decodes the checkpoint in dir (os.ErrNotExist if
// there is none).
func readCheckpointFile(fsys vfs.FS, dir string) (*segment.Checkpoint, error) {
	data, release, err := segment.MapFile(fsys, filepath.Join(dir, CheckpointFileName))
	if err != nil {
		return nil, err
	}
	defer func() { _ = release() }()
	return segment.DecodeCheckpoint(data)
}

// checkpoint describes the checkpoint, and reports as damage a whole
// checkpoint that covers events or bytes the segments no longer hold: what
// it covers was durable, so it was lost since.
func (v *verifier) checkpoint(c *segment.Checkpoint, err error, ids []uint32) string {
	switch {
	case errors.Is(err, os.ErrNotExist):
		return "absent"
	case err != nil:
		return "ignored on open: " + err.Error()
	case c.LastSeq > v.lastSeq:
		msg := fmt.Sprintf("the checkpoint covers %d events, the segments hold %d", c.LastSeq, v.lastSeq)
		v.problem(c.Segment, int64(c.FrameEnd), "checkpoint", msg)
		return "damage: " + msg
	case len(ids) == 0 || c.Segment > ids[len(ids)-1]:
		msg := fmt.Sprintf("the checkpoint covers segment %d, which is missing", c.Segment)
		v.problem(c.Segment, int64(c.FrameEnd), "checkpoint", msg)
		return "damage: " + msg
	}
	return "valid"
}
