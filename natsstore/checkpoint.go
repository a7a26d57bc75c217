package natsstore

import (
	"context"
	"sync"
	"sync/atomic"
	"time"

	"github.com/nats-io/nats.go/jetstream"
)

// The index checkpoint: Open restores the index from it and replays only
// the stream's tail, instead of reading the whole stream.
//
// It is a chain of blocks (checkpoint_format.go) in a JetStream object
// store bucket beside the stream ("<stream>_index" unless
// WithIndexCheckpointBucket names another), one object per block,
// "events.<first sequence>". Blocks are full (ckBlockEvents entries,
// written once) except the last, which is written again as the stream
// grows. Any client writes it: every WithIndexCheckpoints events and at
// Close; a block another client already stored with as many entries is
// not written again. Objects rather than key-value entries because a
// block of long entity names and keys can exceed a message's max_payload;
// the object store chunks it and checks its SHA-256 digest on the way
// back.
//
// Nothing in a checkpoint is trusted that the stream does not confirm: a
// block counts only if its CRC, format, first sequence and count are right
// and it was written for this incarnation of the stream (its creation time
// matches); the chain is used up to the last whole request it holds, and
// only if the stream's message at that sequence has the event id and hash
// the checkpoint has there. Otherwise the checkpoint, or the part that
// fails, is ignored (counted in IndexStats and logged) and Open reads the
// stream from where the usable part ends.

// Defaults of the index checkpoint and of Open.
const (
	// DefaultIndexCheckpointEvery is how many events a client indexes
	// between two writes of the index checkpoint: one full block.
	DefaultIndexCheckpointEvery = ckBlockEvents
	// DefaultOpenTimeout bounds Open: connecting, binding the stream and
	// building the index (see [WithOpenTimeout]).
	DefaultOpenTimeout = 10 * time.Minute
)

// checkpointConfig is the part of config for the index checkpoint and
// Open. Its zero value means the defaults.
type checkpointConfig struct {
	every       int           // 0: DefaultIndexCheckpointEvery; < 0: no checkpoint
	span        uint64        // events of a full block; 0: ckBlockEvents (tests set fewer)
	bucket      string        // "": the stream's name + "_index"
	openTimeout time.Duration // 0: DefaultOpenTimeout; < 0: none
	progress    func(done, total uint64)
}

// WithIndexCheckpoints sets how many events a client indexes between two
// writes of the index checkpoint (default 65,536); it also writes one at
// Close when at least min(every, 1,000) events are not covered yet. 0 or
// less turns the checkpoint off: Open then reads the whole stream and
// nothing is written.
func WithIndexCheckpoints(every int) Option {
	return func(c *config) {
		c.ck.every = every
		if every <= 0 {
			c.ck.every = -1
		}
	}
}

// WithIndexCheckpointBucket names the object store bucket of the index
// checkpoint (default: the stream's name and "_index").
func WithIndexCheckpointBucket(name string) Option { return func(c *config) { c.ck.bucket = name } }

// WithOpenTimeout bounds Open as a whole (default 10 minutes): binding the
// stream, loading the index checkpoint and reading the stream after it.
// 0 leaves only the ctx given to Open. Appends have their own bound
// ([WithTimeout]).
func WithOpenTimeout(d time.Duration) Option {
	return func(c *config) {
		c.ck.openTimeout = d
		if d <= 0 {
			c.ck.openTimeout = -1
		}
	}
}

// WithOpenProgress makes Open report how far it has built the index:
// done events out of total, the stream's last sequence when Open looked.
// It is called after each checkpoint block restored and every 100 ms while
// Open reads the stream, and once with done == total at the end; it must
// return quickly.
func WithOpenProgress(fn func(done, total uint64)) Option {
	return func(c *config) { c.ck.progress = fn }
}

// openContext returns ctx bounded by the open timeout.
func openContext(ctx context.Context, c checkpointConfig) (context.Context, context.CancelFunc) {
	switch {
	case c.openTimeout < 0:
		return context.WithCancel(ctx)
	case c.openTimeout == 0:
		return context.WithTimeout(ctx, DefaultOpenTimeout)
	}
	return context.WithTimeout(ctx, c.openTimeout)
}

// IndexStats says how this client's index was built at Open and what it
// has written of the index checkpoint since.
type IndexStats struct {
	// OpenTime is how long Open took to build the index.
	OpenTime time.Duration
	// Restored is the number of events Open took from the checkpoint.
	Restored uint64
	// Replayed is the number of events Open read from the stream.
	Replayed uint64
	// Ignored counts checkpoints, or parts of one, that Open found and did
	// not use: stale (another incarnation of the stream, or not matching
	// its events), corrupt, or unreadable. IgnoredReason says why, for the
	// last one.
	Ignored       uint64
	IgnoredReason string
	// Written counts the checkpoint blocks this client wrote, and
	// WriteFailures the writes that failed (they are logged; the next
	// write tries again).
	Written       uint64
	WriteFailures uint64
	// Covered is the number of events the stored checkpoint covers, as
	// far as this client knows.
	Covered uint64
}

// IndexStats returns how the index was built and checkpointed.
func (s *Store) IndexStats() IndexStats {
	c := s.ck
	c.statsMu.Lock()
	st := c.stats
	c.statsMu.Unlock()
	st.Written, st.WriteFailures, st.Covered = c.written.Load(), c.failed.Load(), c.covered.Load()
	return st
}

// checkpointer loads the index checkpoint at Open and writes it.
type checkpointer struct {
	s       *Store
	bucket  string // "" when checkpoints are off
	created int64  // the stream's creation time, unix ns
	every   uint64
	span    uint64 // events of a full block written by this client

	mu   sync.Mutex // held by a write; guards obs, full and end
	obs  jetstream.ObjectStore
	full uint64 // events covered by full blocks known to be stored
	end  uint64 // events covered by the stored checkpoint

	stop    chan struct{} // closed by close
	stopped chan struct{} // closed when the writer has returned

	statsMu                  sync.Mutex
	stats                    IndexStats // OpenTime, Restored, Replayed, Ignored, IgnoredReason
	written, failed, covered atomic.Uint64
}
