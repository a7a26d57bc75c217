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

// Repair makes a damaged store openable again. It takes the directory's
// lock, finds the first damage the way Open does, moves everything from the
// damaged frame on (the rest of that segment and all later segments) into
// the quarantine subdirectory, removes the checkpoint, and repeats until the
// store opens. Every event before the damage is kept. A store without
// damage is left as it is.
func Repair(dir string, ropts ...RepairOption) (*RepairReport, error) {
	var rc repairConfig
	for _, o := range ropts {
		o(&rc)
	}
	cfg := defaultConfig()
	for _, o := range rc.opts {
		o(&cfg)
	}
	unlock, err := lockDir(filepath.Clean(dir), cfg.fileMode)
	if err != nil {
		return nil, err
	}
	defer func() { _ = unlock() }()
	report := &RepairReport{DryRun: rc.dryRun}
	for attempt := 0; ; attempt++ {
		s, err := open(dir, true, rc.opts)
		if err == nil {
			report.EventsKept = s.LastSequence()
			return report, s.Close()
		}
		var ce *segment.CorruptError
		if !errors.As(err, &ce) || ce.Segment == 0 || attempt > 1000 {
			return report, err
		}
		action, err := quarantine(cfg.fs, dir, ce, rc.dryRun, cfg.dirMode)
		report.Actions = append(report.Actions, action)
		if err != nil || rc.dryRun {
			return report, err
		}
	}
}

// quarantine moves the damaged tail of segment ce.Segment and every later
// segment into the quarantine directory and removes the checkpoint.
func quarantine(fsys segment.FS, dir string, ce *segment.CorruptError, dryRun bool, dirMode os.FileMode) (RepairAction, error) {
	a := RepairAction{Segment: ce.Segment, Offset: ce.Offset, Reason: ce.Reason}
	qdir := filepath.Join(dir, QuarantineDir)
	des, err := fsys.ReadDir(dir)
	if err != nil {
		return a, err
	}
	var later []string
	for _, de := range des {
		if id, ok := segment.ParseFileName(de.Name()); ok && id > ce.Segment {
			later = append(later, de.Name())
		}
	}
	a.RemovedSegments = later
	path := filepath.Join(dir, segment.FileName(ce.Segment))
	f, err := fsys.OpenFile(path, os.O_RDWR, 0)
	if err != nil && !errors.Is(err, os.ErrNotExist) {
		return a, err
	}
	if f != nil {
		defer func() { _ = f.Close() }()
		fi, err := f.Stat()
		if err != nil {
			return a, err
		}
		a.QuarantinedBytes = max(fi.Size()-ce.Offset, 0)
		a.QuarantineFile = filepath.Join(QuarantineDir, fmt.Sprintf("%s.%d.bin", segment.FileName(ce.Segment), ce.Offset))
	}
	if dryRun {
		return a, nil
	}
	if err := fsys.MkdirAll(qdir, dirMode); err != nil {
		return a, err
	}
	if f != nil {
		if err := moveTail(fsys, f, ce.Offset, a.QuarantinedBytes, filepath.Join(dir, a.QuarantineFile)); err != nil {
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
	buf := make([]byte, n)
	if _, err := f.ReadAt(buf, off); err != nil {
		return err
	}
	q, err := fsys.OpenFile(dst, os.O_RDWR|os.O_CREATE|os.O_TRUNC, segment.FileMode)
	if err != nil {
		return err
	}
	if _, err = q.WriteAt(buf, 0); err == nil {
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
