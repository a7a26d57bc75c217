package eventstore

import (
	"fmt"
	"time"

	"go.uber.org/zap"
)

// checkpointRebuild runs after a writable open that rebuilt at least
// checkpointEvery events from footers or frame scans (no checkpoint, a
// damaged one, or one of an older format). It writes a checkpoint of
// everything recovered and builds the index again from it, before any
// append:
//   - the next open, after a crash too, loads the checkpoint instead of
//     repeating the rebuild (about 1.5 minutes at 100M events);
//   - the index holds what a checkpoint's holds, reading ids and links from
//     the frames when needed, instead of every event's ids and links as a
//     rebuild's does (about 7 times the heap at 100M events).
//
// The store's ColdStart stays the rebuild's, with CheckpointWritten set.
// A failure to write leaves the store unopened.
func (s *Store) checkpointRebuild() error {
	cs := s.coldStart
	every := uint64(s.cfg.checkpointEvery)
	if every == 0 || cs.EventsFromFooters+cs.EventsScanned < every {
		return nil
	}
	start := time.Now()
	// The checkpoint says the frames up to its watermark are durable:
	// after a crash, the active segment's may still be only in the page
	// cache.
	if w := s.pipe.w; w != nil {
		if err := w.Sync(); err != nil {
			return fmt.Errorf("eventstore: sync the active segment: %w", err)
		}
	}
	if err := s.writeCheckpoint(); err != nil {
		return err
	}
	if err := s.pipe.closeWriter(); err != nil {
		return fmt.Errorf("eventstore: close the active segment: %w", err)
	}
	_ = s.reader.Close()
	s.ix, s.pipe, s.coldStart = newMemIndex(), newCommitPipeline(), ColdStart{}
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
		s.coldStart.Duration += cs.Duration
		return nil
	}
	cs.CheckpointWritten = true
	cs.Duration += time.Since(start)
	s.coldStart = cs
	s.log.Info("checkpoint written after a rebuild, index loaded from it",
		zap.Uint64("events", s.ix.lastSeq()), zap.Duration("took", time.Since(start)))
	return nil
}
