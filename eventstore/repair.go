package eventstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"github.com/google/uuid"
	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// QuarantineDir is the subdirectory of a store where Repair moves damaged data.
const QuarantineDir = "quarantine"

// RepairReport says exactly what [Repair] found, replaced and lost.
type RepairReport struct {
	Actions []RepairAction
	// Lost lists, in sequence order, every event the repair could not
	// save where it resynchronised after the damage (Precise actions). Each
	// keeps its sequence in the store as a stub in a hole record, so
	// sequences, stream versions and hash chains stay dense and checkable;
	// reads do not show it (Get and GetSequence return ErrNotFound). The
	// events a cut removes (actions that are not Precise) are not listed:
	// they are in quarantine, from the action's offset on.
	Lost []LostEvent
	// LostStreams counts the lost events of each stream that is known;
	// UnknownStreams counts those whose stream nothing tells.
	LostStreams    map[batpak.Coordinate]int
	UnknownStreams int
	// LostDeletions names streams whose deletion a footer or the checkpoint
	// records but whose tombstone was lost and could not be written again:
	// they are visible again.
	LostDeletions []batpak.Coordinate
	// LastSequence is the repaired store's last sequence (lost events
	// included: they keep their places).
	LastSequence uint64
	// EventsKept is LastSequence less the events this repair lost.
	EventsKept uint64
	// Fallback says why the repair cut the log at the damage, moving
	// everything after it aside, instead of resynchronising after it
	// ("" when every damage was repaired precisely).
	Fallback string
	// DryRun is true when nothing was changed.
	DryRun bool
}

// LostEvent is one event a repair could not save. Its stream (entity,
// scope, version) and id come from the damaged segment's footer, the
// checkpoint, the damaged frame itself when its event hash still verifies,
// or its stream's chain (a stream whose versions skip over lost
// sequences); Source says which. Unknown fields are zero.
type LostEvent struct {
	Sequence uint64
	Entity   string
	Scope    string
	Version  uint64
	ID       uuid.UUID
	Kind     kind.Kind
	// Source is "footer", "checkpoint", "damaged frame", "chain", "chain,
	// ambiguous" (several lost sequences could hold the stream's missing
	// versions; the earliest were taken), or "" (stream unknown).
	Source string
	// Removed is true for an event compaction had removed already: the
	// damage hit its stub, which is written again.
	Removed bool
	// Segment and Offset locate the damage it was lost to, where its hole
	// record now is.
	Segment uint32
	Offset  int64
}

// RepairAction is one damaged place and what was done about it.
type RepairAction struct {
	Segment uint32
	Offset  int64
	Reason  string
	// QuarantinedBytes of the segment, from Offset, went to QuarantineFile
	// (empty when no bytes were moved: a missing segment file, or lost
	// sequences without damaged bytes).
	QuarantinedBytes int64
	QuarantineFile   string
	// Precise is true when reading resumed at the next intact frame: only
	// the damaged bytes were replaced, by a hole record for Lost. A cut
	// (Precise false) moved everything from Offset on, and RemovedSegments,
	// into quarantine, because resynchronising was impossible (see
	// RepairReport.Fallback).
	Precise bool
	Lost    []uint64
	// RemovedSegments are later segment files moved whole into quarantine
	// by a cut: their events follow the damage and could not be placed.
	RemovedSegments []string
}

// RepairOption configures [Repair].
type RepairOption func(*repairConfig)

type repairConfig struct {
	dryRun bool
	opts   []Option
}

// DryRun makes Repair report what it would do, without changing anything.
func DryRun() RepairOption { return func(c *repairConfig) { c.dryRun = true } }

// WithStoreOptions passes store options (a file system, a logger, a clock)
// to Repair.
func WithStoreOptions(opts ...Option) RepairOption {
	return func(c *repairConfig) { c.opts = append(c.opts, opts...) }
}

// Repair makes a damaged store whole again. It takes the directory's lock
// and reads every segment once, checking each frame the way [Verify] does.
// After a damaged stretch it resynchronises on the next intact frame (whole,
// with a valid CRC, a sequence after the last one read and an event hash
// that recomputes), so one flipped byte costs at most the event it hits.
// Each damaged segment is rewritten (temporary file, sync, rename,
// directory sync) with every intact frame byte for byte and, in place of
// the damaged bytes, a hole record of stubs for the lost events, so that
// sequences, stream versions and hash chains stay dense and checkable; a
// damaged footer or header is written anew, and a missing segment file is
// written with a hole record. The damaged bytes go to the quarantine
// subdirectory; the checkpoint is removed. The report lists every lost
// event and stream.
//
// Where resynchronising is impossible (intact frames that contradict each
// other), and for damage that remains afterwards, Repair falls back to a
// cut: it moves everything from the damage on (the rest of the segment and
// every later segment) into quarantine, and says so in the report. It
// repeats until the store verifies and opens. A store without damage is
// left as it is.
func Repair(dir string, ropts ...RepairOption) (*RepairReport, error) {
	var rc repairConfig
	for _, o := range ropts {
		o(&rc)
	}
	cfg := defaultConfig()
	for _, o := range rc.opts {
		o(&cfg)
	}
	dir = filepath.Clean(dir)
	unlock, err := lockDir(dir, cfg.fileMode)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unlock() }()
	report := &RepairReport{DryRun: rc.dryRun}
	plan, err := planRepair(dir, cfg.fs, cfg.clock().UnixMicro())
	if err != nil {
		return report, err
	}
	if plan.impossible != "" {
		report.Fallback = "cannot resynchronise: " + plan.impossible
		cfg.logger.Warn("repair cannot resynchronise; cutting the log at the damage", zap.String("why", plan.impossible))
	} else {
		pieces, err := plan.pieces()
		if err != nil {
			return report, err
		}
		report.addPlan(plan, pieces)
		if len(pieces) > 0 && rc.dryRun {
			report.LastSequence = plan.placed
			report.EventsKept = report.LastSequence - report.lostEvents()
			return report, nil
		}
		if len(pieces) > 0 {
			if err := removeStaleTemps(cfg.fs, dir); err != nil {
				return report, err
			}
			if err := plan.write(pieces, cfg.fileMode, cfg.dirMode); err != nil {
				return report, err
			}
			for _, pc := range pieces {
				cfg.logger.Warn("repaired damage", zap.Uint32("segment", pc.sp.id), zap.Int64("offset", pc.start),
					zap.String("reason", pc.reason), zap.Int("lost", len(pc.lost)), zap.String("quarantine", pc.file))
			}
		}
	}
	for attempt := 0; attempt <= 1000; attempt++ {
		d, err := findDamage(dir, cfg.fs, rc.opts)
		if err != nil {
			return report, err
		}
		if d == nil {
			s, err := open(dir, true, rc.opts)
			if err != nil {
				return report, err
			}
			report.LastSequence = s.LastSequence()
			report.EventsKept = report.LastSequence - min(report.lostEvents(), report.LastSequence)
			return report, s.Close()
		}
		if report.Fallback == "" {
			report.Fallback = "damage remains after resynchronising: " + d.reason
		}
		action, err := quarantine(cfg.fs, dir, *d, rc.dryRun, cfg.dirMode)
		report.Actions = append(report.Actions, action)
		if err != nil || rc.dryRun {
			return report, err
		}
	}
	return report, errors.New("eventstore: repair did not converge")
}

// addPlan records a precise repair's pieces and lost events.
func (r *RepairReport) addPlan(p *repairPlan, pieces []piece) {
	for _, pc := range pieces {
		a := RepairAction{Segment: pc.sp.id, Offset: pc.start, Reason: pc.reason, Precise: true,
			QuarantinedBytes: pc.end - pc.start, QuarantineFile: pc.file}
		for _, l := range pc.lost {
			a.Lost = append(a.Lost, l.stub.Seq)
		}
		r.Actions = append(r.Actions, a)
	}
	for _, l := range p.lost {
		le := LostEvent{Sequence: l.stub.Seq, Source: l.source, Removed: l.removed, Segment: l.region.seg.id, Offset: l.region.start}
		if l.known {
			le.Entity, le.Scope, le.Version = l.stub.Entity, l.stub.Scope, l.stub.Version
			le.ID, le.Kind = l.stub.ID, kind.Kind(l.stub.Kind)
			if r.LostStreams == nil {
				r.LostStreams = make(map[batpak.Coordinate]int)
			}
			r.LostStreams[batpak.Coordinate{Entity: le.Entity, Scope: le.Scope}]++
		} else {
			r.UnknownStreams++
		}
		r.Lost = append(r.Lost, le)
	}
	for _, id := range p.lostTombs {
		r.LostDeletions = append(r.LostDeletions, batpak.Coordinate{Entity: id.entity, Scope: id.scope})
	}
}

// lostEvents counts the lost events that had not been removed before.
func (r *RepairReport) lostEvents() uint64 {
	n := uint64(0)
	for _, l := range r.Lost {
		if !l.Removed {
			n++
		}
	}
	return n
}

// removeStaleTemps removes segment files a repair that crashed was still
// writing (NNNNNNNNNN.seg.tmp): the segment itself is whole, old or new.
func removeStaleTemps(fsys vfs.FS, dir string) error {
	des, err := fsys.ReadDir(dir)
	if err != nil {
		return err
	}
	for _, de := range des {
		name, ok := strings.CutSuffix(de.Name(), vfs.TempSuffix)
		if _, seg := segment.ParseFileName(name); ok && seg && de.Type().IsRegular() {
			if err := fsys.Remove(filepath.Join(dir, de.Name())); err != nil {
				return err
			}
		}
	}
	return nil
}

// damage is one place Repair must fix.
type damage struct {
	segment     uint32
	offset      int64
	reason      string
	footerOnly  bool // cut the segment's footer, keep everything else
	missingFile bool
}

// findDamage returns the first damage Verify reports, else the damage Open
// reports, else nil.
func findDamage(dir string, fsys vfs.FS, opts []Option) (*damage, error) {
	vr, err := Verify(dir, WithVerifyFS(fsys))
	if err != nil {
		return nil, err
	}
	if len(vr.Problems) > 0 {
		p := vr.Problems[0]
		d := &damage{segment: p.Segment, offset: p.Offset, reason: p.Kind + ": " + p.Detail}
		d.footerOnly = p.Kind == "footer"
		if p.Kind == "file" || p.Kind == "checkpoint" { // a checkpoint may name a segment that is gone
			if _, err := os.Lstat(p.Path); errors.Is(err, os.ErrNotExist) {
				d.missingFile = true
			}
		}
		return d, nil
	}
	s, err := open(dir, true, opts)
	if err == nil {
		return nil, s.Close()
	}
	var ce *segment.CorruptError
	if errors.As(err, &ce) && ce.Segment != 0 {
		d := &damage{segment: ce.Segment, offset: ce.Offset, reason: ce.Reason}
		if _, err := os.Lstat(ce.Path); errors.Is(err, os.ErrNotExist) {
			d.missingFile = true
		}
		return d, nil
	}
	return nil, err
}

// quarantine moves the damage aside: the segment's bytes from the damaged
// offset on, and (unless only the footer was damaged) every later segment.
// It removes the checkpoint, which may describe what was moved.
func quarantine(fsys vfs.FS, dir string, d damage, dryRun bool, dirMode os.FileMode) (RepairAction, error) {
	a := RepairAction{Segment: d.segment, Offset: d.offset, Reason: d.reason}
	qdir := filepath.Join(dir, QuarantineDir)
	var later []string
	if !d.footerOnly {
		des, err := fsys.ReadDir(dir)
		if err != nil {
			return a, err
		}
		for _, de := range des {
			if id, ok := segment.ParseFileName(de.Name()); ok && id > d.segment {
				later = append(later, de.Name())
			}
		}
	}
	a.RemovedSegments = later
	var f vfs.File
	if !d.missingFile {
		var err error
		if f, err = fsys.OpenFile(filepath.Join(dir, segment.FileName(d.segment)), os.O_RDWR, 0); err != nil {
			return a, err
		}
		defer func() { _ = f.Close() }()
		fi, err := f.Stat()
		if err != nil {
			return a, err
		}
		a.QuarantinedBytes = max(fi.Size()-d.offset, 0)
		a.QuarantineFile = filepath.Join(QuarantineDir, fmt.Sprintf("%s.%d.bin", segment.FileName(d.segment), d.offset))
	}
	if dryRun {
		return a, nil
	}
	if err := fsys.MkdirAll(qdir, dirMode); err != nil {
		return a, err
	}
	if f != nil {
		if err := moveTail(fsys, f, d.offset, a.QuarantinedBytes, filepath.Join(dir, a.QuarantineFile)); err != nil {
			return a, err
		}
	}
	for _, name := range later {
		if err := fsys.Rename(filepath.Join(dir, name), filepath.Join(qdir, name)); err != nil {
			return a, err
		}
	}
	if err := fsys.Remove(filepath.Join(dir, CheckpointFileName)); err != nil && !errors.Is(err, os.ErrNotExist) {
		return a, err
	}
	if err := fsys.SyncDir(qdir); err != nil {
		return a, err
	}
	return a, fsys.SyncDir(dir)
}

// moveTail copies n bytes from off of f into a new file at dst, syncs it,
// then truncates f at off (a header-less segment at offset 0 goes whole).
func moveTail(fsys vfs.FS, f vfs.File, off, n int64, dst string) error {
	q, err := fsys.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, segment.FileMode)
	if err != nil {
		return err
	}
	buf := make([]byte, min(n, 1<<20))
	for done := int64(0); done < n && err == nil; {
		chunk := buf[:min(int64(len(buf)), n-done)]
		if _, err = f.ReadAt(chunk, off+done); err == nil {
			_, err = q.WriteAt(chunk, done)
		}
		done += int64(len(chunk))
	}
	if err == nil {
		err = q.Sync()
	}
	if cerr := q.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return err
	}
	if err := f.Truncate(off); err != nil {
		return err
	}
	return f.Sync()
}
