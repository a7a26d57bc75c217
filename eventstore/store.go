package eventstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/internal/shred"
	"github.com/batpak-go/batpak/internal/subs"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// Store is an embedded event store in one directory. It is safe for
// concurrent use; appends are committed one at a time by its commit
// pipeline (pipeline.go), on a writer goroutine that groups concurrent
// requests or on the goroutine of a lone appender.
//
// Lock order: a goroutine that holds several of these locks took them in
// this order, from the outside in.
//
//	pipe.sendMu  request hand-over against Close (queue.go)
//	pipe.mu      the commit mutex: everything a commit changes (pipeline.go)
//	compactRun   one compaction at a time
//	ckptMu       one checkpoint snapshot and write at a time
//	compactMu    segment files against the index positions into them
//	subs.mu      the subscriber set (internal/subs; Add reads the index under it)
//	ix.linking   one build of the correlation and causation maps
//	ix.mu        the in-memory index (memindex.go)
//	reader.mu    the segment reader's files and mappings (segment.Reader)
//	scrubber.mu  the scrub statistics (scrub.go)
//
// Under the commit mutex a commit takes ckptMu only with TryLock, compactMu
// only for reading (to reread a frame for a repeated idempotency key) and
// compactRun never: compaction and checkpoints never wait for a commit,
// and a commit waits at most for a compaction's file swap, never for its
// rewrite of a segment.
type Store struct {
	cfg      config
	dir      string
	fs       vfs.FS
	log      *zap.Logger
	readOnly bool
	unlock   func() error

	ix      *memIndex
	types   typeCatalog    // event type names (typecatalog.go)
	keyring *shred.Keyring // data subjects' keys (keys.go)
	reader  *segment.Reader
	pipe    *commitPipeline // the write path; never started in a read-only store
	// viewTail is, in a read-only store, its last segment and where its
	// frames ended at open (a writer's active segment has reserved space
	// after them).
	viewTail struct {
		segment uint32
		end     int64
	}
	// scanning is the segment the open's recovery is scanning, whose
	// frames the reader does not have yet (see readFrame).
	scanning scannedSegment

	closed atomic.Bool
	failed atomic.Pointer[error]

	notify atomic.Pointer[chan struct{}] // closed and replaced on every publish
	subs   subs.Set

	// compactMu protects the pairing of segment files and index positions:
	// compaction holds it for writing while it swaps a segment file and the
	// positions into it, and readers that must see both agree hold it for
	// reading. compactRun lets one compaction run at a time.
	compactMu  sync.RWMutex
	compactRun sync.Mutex

	// ckptMu lets one checkpoint be snapshotted and written at a time, and
	// none while Compact moves frames. ckptWG counts the background
	// checkpoint writes, which Close waits for.
	ckptMu sync.Mutex
	ckptWG sync.WaitGroup

	stats     counters
	coldStart ColdStart

	scrubber scrubState // Scrub and the background scrubber (scrub.go)
}

// Open opens or creates the store in dir for reading and writing. It takes
// an exclusive lock on the directory (a second writer gets [ErrLocked]) and
// recovers from the files: see docs/durability.md.
func Open(dir string, opts ...Option) (*Store, error) {
	return open(dir, false, opts)
}

// OpenReadOnly opens an existing store for reading alongside a writer or
// without one. It sees the events durable at the time of opening, changes
// nothing on disk, and its appends fail with [ErrReadOnly].
func OpenReadOnly(dir string, opts ...Option) (*Store, error) {
	return open(dir, true, opts)
}

func open(dir string, readOnly bool, opts []Option) (*Store, error) {
	cfg := defaultConfig()
	for _, o := range opts {
		o(&cfg)
	}
	dir = filepath.Clean(dir)
	s := &Store{
		cfg:      cfg,
		dir:      dir,
		fs:       cfg.fs,
		log:      cfg.logger,
		readOnly: readOnly,
		ix:       newMemIndex(),
		pipe:     newCommitPipeline(),
	}
	ch := make(chan struct{})
	s.notify.Store(&ch)
	if readOnly {
		if fi, err := os.Stat(dir); err != nil {
			return nil, fmt.Errorf("eventstore: open %s: %w", dir, err)
		} else if !fi.IsDir() {
			return nil, fmt.Errorf("eventstore: open %s: not a directory", dir)
		}
	} else {
		if err := vfs.MkdirAllSynced(s.fs, dir, cfg.dirMode); err != nil {
			return nil, fmt.Errorf("eventstore: create %s: %w", dir, err)
		}
		unlock, err := lockDir(dir, cfg.fileMode)
		if err != nil {
			return nil, err
		}
		s.unlock = unlock
	}
	keys := newFileKeys(dir, s.fs, cfg.fileMode, cfg.dirMode)
	// A read-only view rereads a key on every open: the writer, in
	// another process, may have forgotten the subject since.
	s.keyring = shred.NewKeyring(keys, !readOnly)
	if !readOnly {
		if err := keys.removeTemps(); err != nil {
			_ = s.unlock()
			return nil, fmt.Errorf("eventstore: keys: %w", err)
		}
	}
	if err := s.loadCatalog(); err != nil {
		if s.unlock != nil {
			_ = s.unlock()
		}
		return nil, err
	}
	if err := s.recoverRetrying(); err != nil {
		if s.unlock != nil {
			_ = s.unlock()
		}
		return nil, err
	}
	if !readOnly {
		if err := s.checkpointRebuild(); err != nil {
			_ = s.pipe.closeWriter()
			_ = s.reader.Close()
			_ = s.unlock()
			return nil, err
		}
		s.pipe.start(s.commitEnv())
	}
	s.startBackgroundScrub()
	return s, nil
}

// commitEnv is what the commit pipeline uses of the store.
func (s *Store) commitEnv() commitEnv {
	return commitEnv{
		dir: s.dir, fs: s.fs, cfg: &s.cfg, log: s.log, stats: &s.stats,
		ix: s.ix, reader: s.reader, closed: &s.closed,
		failure: s.failure, fail: s.fail, wake: s.wake, fanOut: s.fanOut,
		replay: s.originalReceipts, checkpoint: s.checkpointInBackground,
		lookupID: s.lookupID, metaAt: s.metaAt,
	}
}

// Dir returns the store's directory.
func (s *Store) Dir() string { return s.dir }

// Close stops the writer after it has committed every request already
// queued, syncs, writes a checkpoint and releases the directory. Reads and
// cursors fail with [ErrClosed] afterwards.
func (s *Store) Close() error {
	if !s.closed.CompareAndSwap(false, true) {
		return batpak.ErrClosed
	}
	s.stopBackgroundScrub()
	s.pipe.stop() // after what was queued and what is being handed over
	s.ckptWG.Wait()
	var errs []error
	if !s.readOnly && s.failure() == nil {
		if err := s.pipe.syncActive(); err != nil {
			errs = append(errs, err)
		} else if s.stats.appendedEvents.Load() > 0 || (s.coldStart.Path != "checkpoint" && !s.coldStart.CheckpointWritten) || !s.hasCheckpoint() ||
			s.stats.listsRebuilt.Load()+s.stats.hashesReread.Load() > 0 { // the checkpoint was damaged
			errs = append(errs, s.writeCheckpoint())
		}
		if errors.Join(errs...) == nil {
			errs = append(errs, s.pipe.trimActive())
		}
	}
	errs = append(errs, s.pipe.closeWriter())
	s.subs.CloseAll()
	s.wake()
	errs = append(errs, s.reader.Close())
	if s.unlock != nil {
		errs = append(errs, s.unlock())
	}
	return errors.Join(errs...)
}

// checkWritable returns why nothing may be written now: a read-only or
// closed store, or one a write or sync error turned read-only until it
// is reopened.
func (s *Store) checkWritable() error {
	switch {
	case s.readOnly:
		return batpak.ErrReadOnly
	case s.closed.Load():
		return batpak.ErrClosed
	}
	return s.failure()
}

// failure returns the error that turned the store read-only, or nil.
func (s *Store) failure() error {
	if p := s.failed.Load(); p != nil {
		return *p
	}
	return nil
}

// fail turns the store read-only after a write or sync error. There is no
// retry: the kernel may have dropped the dirty pages, so only a reopen,
// which recovers from what is really on disk, can continue.
func (s *Store) fail(err error) {
	err = fmt.Errorf("%w: %w", batpak.ErrStoreFailed, err)
	if s.failed.CompareAndSwap(nil, &err) {
		s.log.Error("store failed; it is read-only until reopened", zap.String("dir", s.dir), zap.Error(err))
	}
}

// wake releases every cursor waiting for a new event.
func (s *Store) wake() {
	ch := make(chan struct{})
	old := s.notify.Swap(&ch)
	close(*old)
}

func (s *Store) checkOpen() error {
	if s.closed.Load() {
		return batpak.ErrClosed
	}
	return nil
}

// waitForEvent returns a channel closed on the next publish.
func (s *Store) waitForEvent() <-chan struct{} { return *s.notify.Load() }

// Sync makes everything appended so far durable (useful with SyncInterval
// or SyncNone).
func (s *Store) Sync(ctx context.Context) error {
	_, err := s.submit(ctx, &request{syncOnly: true})
	return err
}
