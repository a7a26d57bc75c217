package eventstore

import (
	"fmt"
	"math"
	"os"
	"time"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// SyncMode says when appended data is made durable: [SyncEveryCommit]
// (the default), [SyncNone] or [SyncInterval](n, d). These are the only
// values, and the two named ones are constants.
type SyncMode interface {
	String() string
	settings() syncSettings
}

// syncSettings is a SyncMode as the writer reads it.
type syncSettings struct {
	kind     syncKind
	events   int
	interval time.Duration
}

type syncKind int

const (
	syncEveryCommit syncKind = iota
	syncInterval
	syncNone
)

func (k syncKind) settings() syncSettings { return syncSettings{kind: k} }

func (k syncKind) String() string { return k.settings().String() }

const (
	// SyncEveryCommit syncs every group commit before acknowledging it:
	// an acknowledged append is durable. The default.
	SyncEveryCommit = syncEveryCommit
	// SyncNone never syncs on append (only on rotation, [Store.Sync] and
	// Close): for tests and benchmarks. Appends are acknowledged and
	// visible before they are durable: a power loss or kernel crash can
	// lose every append since the last of those; a process crash loses
	// nothing.
	SyncNone = syncNone
)

// SyncInterval syncs once n events were appended or d passed since the last
// sync, whichever comes first (n or d may be 0 to disable that trigger).
// Appends are acknowledged and visible before they are durable: a power loss
// or kernel crash can lose those of the last interval; a process crash
// loses nothing.
func SyncInterval(n int, d time.Duration) SyncMode {
	return syncSettings{kind: syncInterval, events: n, interval: d}
}

func (m syncSettings) settings() syncSettings { return m }

func (m syncSettings) String() string {
	switch m.kind {
	case syncInterval:
		return fmt.Sprintf("SyncInterval(%d, %s)", m.events, m.interval)
	case syncNone:
		return "SyncNone"
	}
	return "SyncEveryCommit"
}

// Option configures [Open] and [OpenReadOnly].
type Option func(*config)

type config struct {
	segmentMaxBytes int64
	preallocate     bool
	sync            syncSettings
	queueSize       int
	groupMax        int
	maxPayload      int
	checkpointEvery int
	checkpointGrow  bool // every max(checkpointEvery, events/4): the default
	clock           func() time.Time
	logger          *zap.Logger
	fs              vfs.FS
	fileMode        os.FileMode
	dirMode         os.FileMode
	scrub           scrubSettings // background scrub; zero: off
	observer        Observer      // nil: none
	streamEvents    uint64        // the most events a stream holds: tests lower it
}

func defaultConfig() config {
	return config{
		segmentMaxBytes: 64 << 20,
		preallocate:     true,
		sync:            SyncEveryCommit.settings(),
		queueSize:       4096,
		groupMax:        1024,
		maxPayload:      4 << 20,
		checkpointEvery: 1_000_000,
		checkpointGrow:  true,
		streamEvents:    maxStreamEvents,
		clock:           time.Now,
		logger:          zap.NewNop(),
		fs:              vfs.OSFS{},
		fileMode:        segment.FileMode,
		dirMode:         0o700,
	}
}

// WithSegmentMaxBytes sets the size at which the active segment is sealed
// and a new one started (default 64 MiB, at least 4 KiB, at most 1 GiB).
func WithSegmentMaxBytes(n int64) Option {
	return func(c *config) { c.segmentMaxBytes = min(max(n, 4<<10), 1<<30) }
}

// WithPreallocation turns reserving each segment's full size at creation on
// or off (default on: data syncs then need not update the file size). Close
// gives the active segment's reserved space back; Open reserves it again.
func WithPreallocation(on bool) Option { return func(c *config) { c.preallocate = on } }

// WithSyncMode sets when appends are made durable (default [SyncEveryCommit]).
func WithSyncMode(m SyncMode) Option {
	return func(c *config) {
		if m != nil {
			c.sync = m.settings()
		}
	}
}

// WithQueueSize sets how many append requests may wait for the writer
// before Append blocks (default 4096).
func WithQueueSize(n int) Option { return func(c *config) { c.queueSize = max(n, 1) } }

// WithGroupCommit sets the most requests the writer commits with one sync
// (default 1024).
func WithGroupCommit(n int) Option { return func(c *config) { c.groupMax = max(n, 1) } }

// WithMaxPayload sets the largest encoded payload of one event (default 4 MiB).
func WithMaxPayload(n int) Option {
	return func(c *config) { c.maxPayload = min(max(n, 1), segment.MaxFramePayload/2) }
}

// WithCheckpointEvery writes a checkpoint in the background after every n
// appended events (0 writes one only on Close). By default a checkpoint is
// written after every 1,000,000 events or a quarter of the store's events,
// whichever is more: each rewrites the index of the whole store, so the
// default keeps that work a bounded share of the appends' however large
// the store grows, and a crash leaves at most that many events to load
// from footers. An open that rebuilt at least n events from footers and
// scans writes a checkpoint before it returns (see ColdStart.CheckpointWritten).
func WithCheckpointEvery(n int) Option {
	return func(c *config) { c.checkpointEvery, c.checkpointGrow = max(n, 0), false }
}

// checkpointInterval is how many appended events start a periodic
// checkpoint in a store of events events (0: none).
func (c *config) checkpointInterval(events uint64) int {
	if !c.checkpointGrow || c.checkpointEvery == 0 {
		return c.checkpointEvery
	}
	return max(c.checkpointEvery, int(min(events/4, math.MaxInt32)))
}

// WithClock sets the clock for event timestamps and ids (default time.Now).
func WithClock(now func() time.Time) Option { return func(c *config) { c.clock = now } }

// WithLogger sets the logger (default: no-op).
func WithLogger(l *zap.Logger) Option { return func(c *config) { c.logger = l } }

// WithFS replaces the file system, e.g. with one that injects faults.
func WithFS(fsys vfs.FS) Option { return func(c *config) { c.fs = fsys } }

// WithFileMode sets the permissions of new files and of the directory
// (default 0600 and 0700).
func WithFileMode(file, dir os.FileMode) Option {
	return func(c *config) { c.fileMode, c.dirMode = file, dir }
}
