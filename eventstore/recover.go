package eventstore

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"time"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak/segment"
)

// errSegmentsChanged: a read-only open found a segment file replaced (by a
// writer's compaction) or cut (by its seal) while it built its index.
var errSegmentsChanged = errors.New("eventstore: segment files were replaced during open")

// readOnlyOpenAttempts bounds how often a read-only open starts over when
// a writer's compaction replaces segment files under it.
const readOnlyOpenAttempts = 10

// recoverRetrying runs recover with a fresh reader and index until it
// builds a consistent view: a read-only open whose files were replaced
// under it starts over.
func (s *Store) recoverRetrying() error {
	for attempt := 1; ; attempt++ {
		s.reader = segment.NewReader(s.fs, s.dir)
		err := s.recover()
		if err == nil {
			return nil
		}
		_ = s.reader.Close()
		if !errors.Is(err, errSegmentsChanged) || attempt == readOnlyOpenAttempts {
			return err
		}
		s.log.Info("segment files changed while opening read-only; starting over", zap.Int("attempt", attempt))
		s.ix, s.coldStart = newMemIndex(), ColdStart{}
		s.viewTail.segment, s.viewTail.end = 0, 0
	}
}

// recover rebuilds the index on Open: a valid checkpoint first, then for
// each later segment its footer if it can be trusted, else a frame scan.
// Damage in a sealed segment fails closed; a torn tail of the active
// (last) segment is cut off, since it was never acknowledged.
func (s *Store) recover() error {
	start := time.Now()
	ids, err := s.listSegments()
	if err != nil {
		return err
	}
	if s.readOnly {
		// Keep the files as they are now: a writer's compaction may rename
		// new ones over them, and this store's index describes these.
		for _, id := range ids {
			if _, err := s.reader.Hold(id); err != nil {
				return err
			}
		}
	}
	wm, floor, err := s.loadCheckpoint(ids)
	if err != nil {
		return err
	}
	l := &loader{s: s}
	s.pipe.nextSegment = 1
	if n := len(ids); n > 0 {
		s.pipe.nextSegment = ids[n-1] + 1 // or the id of a blank last segment, which is removed
	}
	var sealed []uint32 // what the loop below loads, but its last segment
	for _, id := range ids[:max(0, len(ids)-1)] {
		if wm == nil || id >= wm.Segment {
			sealed = append(sealed, id)
		}
	}
	ahead := s.readFootersAhead(sealed)
	defer ahead.close()
	for i, id := range ids {
		last := i == len(ids)-1
		if wm != nil && id < wm.Segment {
			s.addSealed(id)
			continue
		}
		var from int64
		if wm != nil && id == wm.Segment {
			from = int64(wm.FrameEnd)
		}
		var footer *segment.Index
		if !last {
			footer = ahead.take(id)
		}
		if err := s.recoverSegment(l, id, from, last, floor, footer); err != nil {
			return err
		}
	}
	if s.readOnly {
		if err := s.checkHeld(ids); err != nil {
			return err
		}
	} else if err := s.fs.SyncDir(s.dir); err != nil {
		// A crash during a rotation can leave the last segment's directory
		// entry not yet durable: the writer must not acknowledge events
		// in a file that a power loss could still remove.
		return fmt.Errorf("eventstore: sync %s: %w", s.dir, err)
	}
	if s.ix.entries.len() > 0 {
		s.pipe.ids.Observe(s.ix.lastID)
	}
	cs := &s.coldStart
	switch {
	case wm != nil:
		cs.Path = "checkpoint"
	case cs.SegmentsFromFooters > 0:
		cs.Path = "footer"
	case cs.SegmentsScanned > 0:
		cs.Path = "scan"
	default:
		cs.Path = "empty"
	}
	cs.Duration = time.Since(start)
	s.log.Info("store opened", zap.String("dir", s.dir), zap.String("path", cs.Path),
		zap.Uint64("events", s.ix.lastSeq()), zap.Duration("took", cs.Duration))
	return nil
}

// checkHeld reports errSegmentsChanged if a segment path no longer names
// the file the reader held since the listing: the index was then built
// from a mix of old and new files. A path that names the same file now
// named it all along, since compaction only ever renames a new file over
// an old one.
func (s *Store) checkHeld(ids []uint32) error {
	for _, id := range ids {
		same, err := s.reader.SameFile(id)
		if err != nil {
			return fmt.Errorf("eventstore: check segment %d: %w", id, err)
		}
		if !same {
			return fmt.Errorf("%w: segment %d", errSegmentsChanged, id)
		}
	}
	return nil
}

// listSegments returns the segment ids in dir, ascending, and checks that
// none is missing in between.
func (s *Store) listSegments() ([]uint32, error) {
	des, err := s.fs.ReadDir(s.dir)
	if err != nil {
		return nil, fmt.Errorf("eventstore: list %s: %w", s.dir, err)
	}
	var ids []uint32
	for _, de := range des {
		if strings.HasSuffix(de.Name(), ".seg.compact") && !s.readOnly {
			// A compaction that crashed before its rename: the original is intact.
			if err := s.fs.Remove(filepath.Join(s.dir, de.Name())); err != nil {
				return nil, err
			}
			continue
		}
		if id, ok := segment.ParseFileName(de.Name()); ok {
			if de.Type()&os.ModeSymlink != 0 || !de.Type().IsRegular() {
				return nil, &segment.CorruptError{Segment: id, Path: s.segmentPath(id), Reason: "segment is not a regular file"}
			}
			ids = append(ids, id)
		}
	}
	slices.Sort(ids)
	for i := 1; i < len(ids); i++ {
		if ids[i] != ids[i-1]+1 {
			return nil, &segment.CorruptError{Segment: ids[i-1] + 1, Path: s.segmentPath(ids[i-1] + 1), Reason: "segment file is missing"}
		}
	}
	return ids, nil
}

// testHookMapped, if set, runs after recovery or Verify maps a segment file.
var testHookMapped func(path string)

// recoverSegment adds the events of segment id after offset from. footer,
// if not nil, is its footer, read ahead (see footersAhead).
func (s *Store) recoverSegment(l *loader, id uint32, from int64, last bool, floor durableFloor, footer *segment.Index) (err error) {
	path := s.segmentPath(id)
	var data []byte
	if s.readOnly {
		// The writer may seal the active segment while this scans it,
		// cutting the space it had reserved under the mapping: start over.
		// A page the disk cannot read is an error of its own.
		defer func() {
			if errors.Is(err, segment.ErrFileCut) {
				err = fmt.Errorf("%w: %w", errSegmentsChanged, err)
			}
		}()
		defer segment.RecoverFault(segment.GuardFaults(), &err, segment.Mapping{Data: &data, FS: s.fs, Path: path})
	}
	var release func() error
	if last { // without the preallocated space after its frames
		data, release, err = segment.MapActive(s.fs, path, from)
	} else {
		data, release, err = segment.MapFile(s.fs, path)
	}
	if err != nil {
		return fmt.Errorf("eventstore: open segment: %w", err)
	}
	defer func() { _ = release() }()
	if testHookMapped != nil {
		testHookMapped(path)
	}
	if s.readOnly && last { // a sealed last segment is data to its end; openActive says where an active one's frames end
		s.viewTail.segment, s.viewTail.end = id, int64(len(data))
	}
	// The header's format version governs the whole file, footer included:
	// never read a segment of an unknown version through its footer.
	if _, herr := segment.DecodeHeader(data); errors.Is(herr, segment.ErrUnsupportedVersion) {
		return fmt.Errorf("eventstore: %s: %w", path, herr)
	}
	ix, ferr := footer, error(nil)
	if ix == nil {
		ix, _, ferr = segment.ReadFooter(data, id)
	}
	if ferr == nil {
		if err := l.addFooter(ix, path); err == nil {
			s.coldStart.SegmentsFromFooters++
			s.addSealed(id)
			return nil
		} else if !errors.Is(err, errFooterMismatch) {
			return err
		}
		s.log.Warn("segment footer disagrees with the log; scanning", zap.String("segment", path))
	}
	if last && isBlankSegment(data) {
		return s.dropBlankSegment(id, path)
	}
	s.coldStart.SegmentsScanned++
	bs := batchState{}
	opts := segment.ScanOptions{From: from}
	if from > 0 { // after a checkpoint: its events come before from
		opts.AfterSeq = s.ix.lastSeq()
	}
	holes := false
	// Cleared before the bytes are released, also when a fault of a
	// read-only store's mapping ends the scan.
	s.scanning = scannedSegment{id: id, path: path, data: data}
	defer func() { s.scanning = scannedSegment{} }()
	res, err := segment.ScanWith(data, id, path, opts, func(off int64, size int, rec *segment.Record) error {
		holes = holes || rec.Kind == segment.KindHole
		return l.addFrame(&bs, id, off, size, rec, path)
	})
	if err != nil {
		return err
	}
	whole := res.Header.Flags&segment.HeaderWrittenWhole != 0
	if (holes || whole) && !res.Sealed {
		// Only compaction and repair write hole frames, and both write the
		// whole file, footer included, before it takes its name (and
		// compaction says so in its header, also when the cut took every
		// hole): such a segment without a footer was cut after it was
		// written, not torn by a crash. What was cut may be acknowledged
		// events, and the footer may have been the only record of a
		// stream's deletion.
		off := res.FrameEnd
		if res.Torn != nil {
			off = res.Torn.Offset
		}
		return &segment.CorruptError{Segment: id, Path: path, Offset: off,
			Reason: "a compacted segment has lost its footer: it was cut after it was written whole (batpak repair seals it again from what is left)"}
	}
	cut := int64(-1)
	switch {
	case bs.open:
		cut = bs.beginOffset
	case res.Torn != nil:
		cut = res.Torn.Offset
	}
	if whyFloor := floor.below(id, cut, res.FrameEnd); whyFloor != "" {
		// Bytes the checkpoint proves durable are damaged or gone.
		off, reason := res.FrameEnd, whyFloor
		switch {
		case res.Torn != nil:
			off, reason = res.Torn.Offset, res.Torn.Reason+", "+whyFloor
		case cut >= 0:
			off, reason = cut, "incomplete batch, "+whyFloor
		}
		return &segment.CorruptError{Segment: id, Path: path, Offset: off, Reason: reason}
	}
	if cut >= 0 && (!last || res.Sealed) {
		reason := "incomplete batch at the end of a sealed segment"
		if res.Torn != nil {
			reason = res.Torn.Reason
			if cut != res.Torn.Offset {
				reason = fmt.Sprintf("%s at %d, inside the batch that begins here", reason, res.Torn.Offset)
			}
		}
		return &segment.CorruptError{Segment: id, Path: path, Offset: cut, Reason: reason}
	}
	if !last {
		s.addSealed(id)
		return nil
	}
	end := res.FrameEnd
	if res.Sealed && (holes || whole || from > 0 && compacted(data, id, path)) { // the scan saw the frames from from on
		// Compaction renames a segment into place whole: its footer
		// cannot have been interrupted. It is damaged, and may be the
		// only record of the stream deletions it lists.
		return &segment.CorruptError{Segment: id, Path: path, Offset: end,
			Reason: "the footer of a compacted segment is damaged (it lists the deleted streams; batpak repair rewrites it from what is left)"}
	}
	if res.Sealed && !s.readOnly {
		// The last segment's frames end at a footer that does not load: a
		// seal the crash interrupted (or a damaged footer). Its frames are
		// whole and were durable before the footer was written, so the
		// segment is active again; the footer is written anew at rotation.
		s.coldStart.TruncatedBytes += frameBytesAfter(data, end)
		s.log.Warn("cut the incomplete or damaged footer of the last segment; it will be written again",
			zap.String("segment", path), zap.Int64("offset", end))
		return s.openActive(id, end)
	}
	if res.Sealed {
		s.reader.AddSealed(id)
		return nil
	}
	if cut >= 0 {
		end = cut
		dropped := int64(len(data)) - cut
		if res.Torn != nil {
			dropped = res.FrameEnd - cut + frameBytesAfter(data, res.FrameEnd)
		}
		s.coldStart.TruncatedBytes += dropped
		s.log.Warn("cut the unacknowledged tail of the active segment",
			zap.String("segment", path), zap.Int64("offset", cut), zap.Bool("incomplete_batch", bs.open))
	}
	return s.openActive(id, end)
}

// compacted reports whether segment data holds a hole frame, which only
// compaction (and repair) writes: such a file was renamed into place whole.
func compacted(data []byte, id uint32, path string) bool {
	found := false
	_, _ = segment.Scan(data, id, path, 0, func(_ int64, _ int, rec *segment.Record) error {
		if rec.Kind == segment.KindHole {
			found = true
			return errStopScan
		}
		return nil
	})
	return found
}

// addSealed registers a segment that recovery found whole and that is
// never written again: only such segments may be compacted.
func (s *Store) addSealed(id uint32) {
	s.reader.AddSealed(id)
	if id > s.pipe.sealedThrough.Load() {
		s.pipe.sealedThrough.Store(id)
	}
}

// frameBytesAfter counts the non-zero bytes of a torn tail after off, for the
// log (preallocated zeros are not data).
func frameBytesAfter(data []byte, off int64) int64 {
	n := int64(len(data))
	for n > off && data[n-1] == 0 {
		n--
	}
	return n - off
}

// isBlankSegment reports whether a segment file never got its header: a
// crash between creating the file and syncing the header leaves it empty
// or all zeros.
func isBlankSegment(data []byte) bool {
	for _, c := range data {
		if c != 0 {
			return false
		}
	}
	return true
}

func (s *Store) dropBlankSegment(id uint32, path string) error {
	if s.readOnly {
		s.viewTail.end = 0
		return nil
	}
	s.log.Warn("removing a segment file that never got its header", zap.String("segment", path))
	if err := s.fs.Remove(path); err != nil {
		return err
	}
	s.pipe.nextSegment = id // reuse the id: skipping it would leave a hole that fails the next open
	return s.fs.SyncDir(s.dir)
}

// openActive makes the last, unsealed segment the writer's, cut at end.
func (s *Store) openActive(id uint32, end int64) error {
	firstSeq := s.ix.lastSeq() + 1
	for firstSeq > 1 && s.ix.entries.at(firstSeq-1).Pos.Segment == id {
		firstSeq--
	}
	if s.readOnly {
		if err := s.syncSeen(id); err != nil {
			return err
		}
		s.viewTail.segment, s.viewTail.end = id, end
		s.reader.AddSealed(id) // a read-only store maps what was there at open
		return nil
	}
	w, err := segment.OpenWriter(s.fs, s.dir, id, end, s.cfg.preallocSize())
	if err != nil {
		return fmt.Errorf("eventstore: reopen active segment: %w", err)
	}
	s.pipe.resume(w, firstSeq, s.ix, s.reader)
	return nil
}

// syncSeen makes durable what a read-only open indexed of the active
// segment: frames its writer wrote but had not synced yet (a group being
// committed, or a writer in SyncNone) are in the page cache, and a power
// loss could take back events this store then shows. A file system that
// cannot be written has nothing unsynced and is left as it is.
func (s *Store) syncSeen(id uint32) error {
	path := s.segmentPath(id)
	f, err := s.fs.OpenFile(path, os.O_RDONLY, 0)
	if err != nil {
		return fmt.Errorf("eventstore: open %s: %w", path, err)
	}
	defer func() { _ = f.Close() }()
	if err := f.Sync(); err != nil && !unsyncable(err) {
		return fmt.Errorf("eventstore: sync what a read-only open found in %s: %w", path, err)
	}
	return nil
}

// unsyncable reports a sync refused because the file system cannot be
// written or has no sync (a read-only mount, squashfs, some FUSE and
// network file systems): nothing there waits to be made durable. Any
// other error, EIO above all, fails the open.
func unsyncable(err error) bool {
	for _, e := range []error{syscall.EROFS, syscall.EINVAL, syscall.ENOTSUP, syscall.EOPNOTSUPP, syscall.ENOSYS} {
		if errors.Is(err, e) {
			return true
		}
	}
	return false
}

// scannedSegment is a segment the open's recovery scans: its bytes.
type scannedSegment struct {
	id   uint32
	path string
	data []byte
}

// readFrame reads the record at pos through the reader, or, for the
// segment the open's recovery is scanning (which the reader gets only
// after), from its bytes.
func (s *Store) readFrame(pos segment.Position, rec *segment.Record) error {
	if sc := &s.scanning; sc.data != nil && pos.Segment == sc.id {
		return segment.ReadFrom(sc.data, sc.path, pos, rec)
	}
	return s.reader.Read(pos, rec)
}
