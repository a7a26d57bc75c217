package eventstore

import (
	"fmt"
	"runtime"
	"time"

	"go.uber.org/zap"
)

// checkpointRebuild runs after a writable open that rebuilt at least
// checkpointEvery events from footers or frame scans (after the checkpoint
// it loaded, or with none: missing, damaged or of an older format). It
// writes a checkpoint of everything recovered and builds the index again
// from it, before any append:
//   - the next open, after a crash too, loads the checkpoint instead of
//     repeating the rebuild (about 1.5 minutes at 100M events);
//   - the index holds what a checkpoint's holds, reading ids and links from
//     the frames when needed, instead of every event's ids and links as a
//     rebuild's does (about four times the heap: 3.0 GiB at 100M events,
//     against 0.8).
//
// The store's ColdStart stays the rebuild's, with CheckpointWritten set.
// If the checkpoint cannot be written (a full disk), the store opens with
// the rebuilt index, as before; if the files cannot be read again, it does
// not open.
func (s *Store) checkpointRebuild() error {
	cs := s.coldStart
	every := uint64(s.cfg.checkpointEvery)
	if every == 0 || cs.EventsFromFooters+cs.EventsScanned < every {
		return nil
	}
	start := time.Now()
	// The checkpoint says the frames up to its watermark are durable:
	// the open synced the active segment's when it reopened it
	// (segment.OpenWriter), and nothing was written since.
	if err := s.writeCheckpoint(); err != nil {
		// A full disk must not keep the store from opening: it goes on
		// with the rebuilt index, and Close tries again.
		s.log.Warn("no checkpoint after a rebuild", zap.Error(err))
		return nil
	}
	if err := s.pipe.closeWriter(); err != nil {
		return fmt.Errorf("eventstore: close the active segment: %w", err)
	}
	_ = s.reader.Close()
	s.ix, s.pipe, s.coldStart = newMemIndex(), newCommitPipeline(), ColdStart{}
	// The rebuilt index is garbage now, gigabytes of it in a large store:
	// collect it before the new one is loaded into the space it held,
	// which the collector would otherwise leave until the heap doubled.
	runtime.GC()
	if err := s.recoverRetrying(); err != nil {
		return err
	}
	if s.coldStart.Path != "checkpoint" {
		// The open did not use it: damage the rebuild did not read (a
		// frame its footer covers) fails the checkpoint's check of its
		// last frame. The index was rebuilt again, whole; reads report
		// the damage.
		s.log.Warn("the checkpoint written after a rebuild was not used; the index was rebuilt again",
			zap.String("reason", s.coldStart.CheckpointIgnored))
		s.coldStart.Duration = cs.Duration + time.Since(start)
		return nil
	}
	cs.CheckpointWritten = true
	cs.Duration += time.Since(start)
	s.coldStart = cs
	s.log.Info("checkpoint written after a rebuild, index loaded from it",
		zap.Uint64("events", s.ix.lastSeq()), zap.Duration("took", time.Since(start)))
	return nil
}
