package eventstore

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/segment"
)

// Store is an embedded event store in one directory. It is safe for
// concurrent use; appends are committed one at a time under a commit mutex,
// by a writer goroutine that groups concurrent requests or by a lone
// appender on its own goroutine.
type Store struct {
	cfg      config
	dir      string
	fs       segment.FS
	log      *zap.Logger
	readOnly bool
	unlock   func() error

	ix     *memIndex
	reader *segment.Reader

	// commitMu is held by whoever commits: the writer goroutine, or an
	// appender committing its own request while the writer is idle. The
	// fields below belong to the holder (and to Open before the writer
	// starts).
	commitMu       sync.Mutex
	w              *segment.Writer
	nextSegment    uint32
	activeFirstSeq uint64
	activeKeys     []segment.IdempotencyRecord
	ids            IDGenerator
	hasher         *ChainHasher
	stage          stage
	unsynced       int
	lastSync       time.Time
	sinceCkpt      int

	reqs   chan *request
	sendMu sync.RWMutex
	quit   chan struct{}
	done   chan struct{}
	closed atomic.Bool
	failed atomic.Pointer[error]

	notify atomic.Pointer[chan struct{}] // closed and replaced on every publish
	subs   Subscribers

	// compactMu is held for writing while compaction swaps a segment file
	// and its index positions; readers that must see both consistently hold
	// it for reading. compactRun lets one compaction run at a time.
	compactMu  sync.RWMutex
	compactRun sync.Mutex

	ckptWG      sync.WaitGroup
	ckptMu      sync.Mutex // one checkpoint write at a time
	ckptRunning atomic.Bool

	stats     counters
	coldStart ColdStart
	// The active segment and where its frames end, for Stats (0: none).
	activeSegment atomic.Uint32
	activeEnd     atomic.Int64
	// sealedThrough is the highest segment id that is sealed: whole, with
	// its frames synced, and never written again. Only such segments may be
	// compacted; it is raised by recovery and by seal, after the footer.
	sealedThrough atomic.Uint32

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
		hasher:   NewChainHasher(),
		quit:     make(chan struct{}),
		done:     make(chan struct{}),
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
		if err := segment.MkdirAllSynced(s.fs, dir, cfg.dirMode); err != nil {
			return nil, fmt.Errorf("eventstore: create %s: %w", dir, err)
		}
		unlock, err := lockDir(dir, cfg.fileMode)
		if err != nil {
			return nil, err
		}
		s.unlock = unlock
	}
	if err := s.recoverRetrying(); err != nil {
		if s.unlock != nil {
			_ = s.unlock()
		}
		return nil, err
	}
	if !readOnly {
		s.reqs = make(chan *request, cfg.queueSize)
		s.lastSync = cfg.clock()
		s.stage = newStage()
		go s.run()
	} else {
		close(s.done)
	}
	s.startBackgroundScrub()
	return s, nil
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
	s.sendMu.Lock() // wait for appends that are handing over a request
	close(s.quit)
	s.sendMu.Unlock()
	<-s.done
	s.ckptWG.Wait()
	var errs []error
	if !s.readOnly && s.failure() == nil {
		if err := s.syncActive(); err != nil {
			errs = append(errs, err)
		} else if s.stats.appendedEvents.Load() > 0 || s.coldStart.Path != "checkpoint" || !s.hasCheckpoint() {
			errs = append(errs, s.writeCheckpoint())
		}
	}
	if s.w != nil {
		errs = append(errs, s.w.Close())
	}
	s.subs.CloseAll()
	s.wake()
	errs = append(errs, s.reader.Close())
	if s.unlock != nil {
		errs = append(errs, s.unlock())
	}
	return errors.Join(errs...)
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
