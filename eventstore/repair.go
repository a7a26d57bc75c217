package eventstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/batpak-go/batpak/segment"
)

// QuarantineDir is the subdirectory of a store where Repair moves damaged data.
const QuarantineDir = "quarantine"

// RepairReport says exactly what [Repair] found and removed.
type RepairReport struct {
	Actions []RepairAction
	// EventsKept is the number of events the repaired store holds.
	EventsKept uint64
	// DryRun is true when nothing was changed.
	DryRun bool
}

// RepairAction is one damaged place and what was moved aside because of it.
type RepairAction struct {
	Segment uint32
	Offset  int64
	Reason  string
	// QuarantinedBytes of the damaged segment, from Offset to its end, went
	// to QuarantineFile (empty when the segment file itself was missing).
	QuarantinedBytes int64
	QuarantineFile   string
	// RemovedSegments are later segment files moved whole into quarantine:
	// their events follow the damage and can no longer be placed in order.
	RemovedSegments []string
}

// RepairOption configures [Repair].
type RepairOption func(*repairConfig)

type repairConfig struct {
	dryRun bool
	opts   []Option
}

// DryRun makes Repair report the first damage and what it would remove,
// without changing anything.
func DryRun() RepairOption { return func(c *repairConfig) { c.dryRun = true } }

// WithStoreOptions passes store options (a file system, a logger) to Repair.
func WithStoreOptions(opts ...Option) RepairOption {
	return func(c *repairConfig) { c.opts = append(c.opts, opts...) }
}

// Repair makes a damaged store whole again. It takes the directory's lock,
// finds the first damage with [Verify] (every frame, sequence, hash chain
// and footer) or, failing that, the way Open does, and moves it aside into
// the quarantine subdirectory: a damaged footer alone is cut off (the
// segment is scanned instead); damaged or unplaceable events are moved
// with the rest of their segment and every later segment, since the events
// after them can no longer be placed in order. The checkpoint is removed.
// It repeats until the store verifies and opens. Every event before the
// damage is kept. A store without damage is left as it is.
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
			report.EventsKept = s.LastSequence()
			return report, s.Close()
		}
		action, err := quarantine(cfg.fs, dir, *d, rc.dryRun, cfg.dirMode)
		report.Actions = append(report.Actions, action)
		if err != nil || rc.dryRun {
			return report, err
		}
	}
	return report, errors.New("eventstore: repair did not converge")
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
func findDamage(dir string, fsys segment.FS, opts []Option) (*damage, error) {
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
func quarantine(fsys segment.FS, dir string, d damage, dryRun bool, dirMode os.FileMode) (RepairAction, error) {
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
	var f segment.File
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
func moveTail(fsys segment.FS, f segment.File, off, n int64, dst string) error {
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
