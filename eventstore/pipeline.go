package eventstore

import (
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak/internal/ids"
	"github.com/batpak-go/batpak/segment"
	"github.com/batpak-go/batpak/vfs"
)

// The commit pipeline turns append requests into durable, visible events.
// One request walks it top to bottom, each step in the pipeline's own
// code; what it needs of the rest of the store comes in commitEnv:
//
//	handOver  commit inline, or queue for the writer goroutine (run)
//	commit    validate and encode: sequence, version, id, hash (encode.go);
//	          rotate first if the chunk would overflow the segment (rotate.go)
//	flush     write the chunk with one write (writeChunk), then sync it
//	          per the sync mode (syncActive)
//	publish   only then make it visible in the index
//	answer    each request its receipts or its error
//	fan out   offer the events to subscribers, and start a checkpoint
//	          every checkpointEvery events (maybeCheckpoint)

// commitEnv is what the pipeline uses of the store around it. Open builds
// it once recovery has produced the index and the reader; it never
// changes afterwards.
type commitEnv struct {
	dir    string
	fs     vfs.FS
	cfg    *config
	log    *zap.Logger
	stats  *counters
	ix     *memIndex
	reader *segment.Reader
	closed *atomic.Bool // set first thing in Close: no request is taken after

	failure func() error // why the store is read-only, or nil
	fail    func(error)  // turn the store read-only
	wake    func()       // release the cursors waiting for an event
	fanOut  func([]stagedEvent)
	// lookupID and metaAt find an event by id and read its frame's ids,
	// links, timestamp and version.
	lookupID func([16]byte) (uint64, error)
	metaAt   func(v *view, seq uint64) (eventMeta, error)
	// replay answers a request whose idempotency key was committed before.
	replay func(segment.IdempotencyRecord) result
	// checkpoint snapshots the index, durable up to frame end end of
	// segment seg, and writes it in the background, calling done after. It
	// reports false, starting nothing, when a checkpoint cannot start now.
	checkpoint func(seg uint32, end int64, done func()) bool
}

// commitPipeline is the store's write path: the request queue, the writer
// goroutine and everything a commit changes. Its locks come first in the
// store's lock order (see [Store]): sendMu, then mu.
type commitPipeline struct {
	env commitEnv

	// sendMu is held for reading while an appender hands a request over,
	// inline or onto reqs, and for writing by stop while it closes quit: a
	// request is never queued after the writer's last drain.
	sendMu sync.RWMutex
	reqs   chan *request
	quit   chan struct{}
	done   chan struct{} // closed when the writer goroutine has exited

	// mu, the commit mutex, protects the fields below it. It is held by
	// whoever commits: the writer goroutine, or an appender committing its
	// own request while the writer is idle. Recovery sets them before
	// start, and Close owns them after stop.
	mu             sync.Mutex
	w              *segment.Writer // the active segment; nil before the first
	nextSegment    uint32
	activeFirstSeq uint64                      // first sequence in w, for its footer
	activeKeys     []segment.IdempotencyRecord // keys whose events start in w
	// activeMetas holds what w's footer needs of the events from
	// metaFrom on, which this pipeline published; the footer reads the
	// events of w before metaFrom (published before an open) from w.
	activeMetas metaLog
	metaFrom    uint64
	prep        *footerPrep // encodes w's footer as its events are published
	ids         ids.Generator
	hasher      *chainHasher
	stage       stage
	unsynced    int // events written since the last sync
	lastSync    time.Time
	sinceCkpt   int // events published since the last checkpoint started
	// lastSyncTook is how long the last sync took, and peak the most
	// requests seen in flight at a recent commit: see gather.
	lastSyncTook time.Duration
	peak         int
	gatherMax    time.Duration // maxGather
	groupEvents  int           // events published by the commit under way, for the observer
	groupBytes   int           // bytes it wrote, for the observer

	// inFlight counts the appends handed over and not yet answered.
	inFlight atomic.Int32

	// Written under mu (or by recovery before start), read without it.
	activeSegment atomic.Uint32 // w's id, for Stats (0: none)
	activeEnd     atomic.Int64  // where w's frames end, for Stats
	// sealedThrough is the highest segment id that is sealed: whole, with
	// its frames synced, and never written again. Only such segments may
	// be compacted; it is raised by recovery and by seal, after the footer.
	sealedThrough atomic.Uint32
	// ckptRunning is set by maybeCheckpoint when it starts a periodic
	// checkpoint, and cleared by the goroutine that writes it: no other
	// starts meanwhile, and no commit syncs early for one.
	ckptRunning atomic.Bool
}

func newCommitPipeline() *commitPipeline {
	return &commitPipeline{hasher: newChainHasher(), prep: newFooterPrep(), quit: make(chan struct{}), done: make(chan struct{}), gatherMax: maxGather}
}

// commit validates, encodes, writes, syncs and publishes a group. A request
// that fails validation is answered on its own; the others go on.
func (p *commitPipeline) commit(group []*request) {
	if o := p.env.cfg.observer; o != nil {
		start := time.Now()
		p.groupEvents, p.groupBytes = 0, 0
		defer func() { o.ObserveCommit(len(group), p.groupEvents, p.groupBytes, time.Since(start)) }()
	}
	st := &p.stage
	st.nextSeq = p.env.ix.lastSeq() + 1
	p.env.stats.groups.Add(1)
	p.env.stats.groupedRequests.Add(uint64(len(group)))
	for _, r := range group {
		if err := p.env.failure(); err != nil {
			r.done <- result{err: err}
			continue
		}
		if r.syncOnly {
			st.reqs = append(st.reqs, stagedRequest{r: r, dupOf: -1, syncOnly: true})
			continue
		}
		if err := r.ctx.Err(); err != nil {
			r.done <- result{err: err}
			continue
		}
		if r.key != "" {
			if rec, ok := p.env.ix.keys[r.key]; ok {
				r.done <- p.env.replay(rec)
				continue
			}
			if i, ok := st.keys[r.key]; ok {
				st.reqs = append(st.reqs, stagedRequest{r: r, dupOf: i})
				continue
			}
		}
		encode := p.encode
		if r.delete.Entity != "" {
			encode = p.encodeTombstone
		}
		if err := encode(st, r); err != nil {
			st.reqs = append(st.reqs, stagedRequest{r: r, dupOf: -1, err: err})
			continue
		}
		if p.needsRotation(len(st.scratch)) { // needsRotation counts st.buf itself
			p.flush()
			if err := p.rotate(); err != nil {
				p.env.fail(err)
			}
			if err := p.env.failure(); err != nil {
				r.done <- result{err: err}
				continue
			}
			// Encode again: the flush may have failed and given the
			// sequences back, and stream tips now come from the index.
			if err := encode(st, r); err != nil {
				r.done <- result{err: err}
				continue
			}
		}
		p.place(st, r)
	}
	p.flush()
}

// flush writes the chunk with one write, syncs it per the sync mode,
// publishes it and answers its requests.
func (p *commitPipeline) flush() {
	st := &p.stage
	defer st.reset()
	if len(st.reqs) == 0 {
		return
	}
	err := p.env.failure()
	if err == nil && len(st.buf) > 0 {
		err = p.writeChunk(st)
	}
	if err == nil && p.needsSync(st) {
		err = p.syncActive()
	}
	if err != nil {
		for _, q := range st.reqs {
			q.r.done <- result{err: err}
		}
		st.nextSeq = p.env.ix.lastSeq() + 1 // the failed chunk's sequences were never handed out
		return
	}
	if len(st.events) > 0 || len(st.deleted) > 0 {
		p.publish(st)
	}
	for _, q := range st.reqs {
		var res result
		switch {
		case q.err != nil:
			res.err = q.err
		case q.syncOnly:
		case q.dupOf >= 0:
			orig := st.reqs[q.dupOf]
			res.receipts = receiptsOf(st.events[orig.first : orig.first+orig.n])
		default:
			res.receipts = receiptsOf(st.events[q.first : q.first+q.n])
		}
		q.r.done <- res
	}
	if len(st.events) > 0 {
		p.env.fanOut(st.events)
		p.maybeCheckpoint(len(st.events))
	}
}

// writeChunk writes the chunk to the active segment, and with
// SyncEveryCommit syncs it.
func (p *commitPipeline) writeChunk(st *stage) error {
	start := p.w.End()
	if _, err := p.w.Write(st.buf); err != nil {
		if errors.Is(err, segment.ErrWriterBroken) {
			p.env.fail(err)
			return p.env.failure()
		}
		p.env.log.Warn("append write failed; group rolled back", zap.Error(err))
		return fmt.Errorf("eventstore: write: %w", err)
	}
	p.env.stats.bytesWritten.Add(uint64(len(st.buf)))
	p.groupBytes += len(st.buf)
	p.activeEnd.Store(p.w.End())
	p.unsynced += len(st.events)
	if p.env.cfg.sync.kind == syncEveryCommit {
		if err := p.sync(); err != nil {
			// Never retry a failed sync: cut the unsynced frames off and fail.
			if rerr := p.w.Rollback(start); rerr != nil {
				p.env.log.Error("rollback after failed sync", zap.Error(rerr))
			}
			p.env.fail(err)
			return p.env.failure()
		}
		p.synced()
	}
	return nil
}

// needsSync reports whether the chunk must be synced before it is answered
// beyond what writeChunk did: an explicit Sync request, or a due interval.
func (p *commitPipeline) needsSync(st *stage) bool {
	for _, q := range st.reqs {
		if q.syncOnly {
			return p.unsynced > 0 || p.env.cfg.sync.kind != syncEveryCommit
		}
	}
	return p.env.cfg.sync.kind == syncInterval && p.intervalDue()
}

func (p *commitPipeline) intervalDue() bool {
	m := p.env.cfg.sync
	return p.unsynced > 0 && ((m.events > 0 && p.unsynced >= m.events) ||
		(m.interval > 0 && p.env.cfg.clock().Sub(p.lastSync) >= m.interval))
}

// syncIfDue runs on the interval ticker, under mu.
func (p *commitPipeline) syncIfDue() {
	if p.w == nil || p.env.failure() != nil || !p.intervalDue() {
		return
	}
	_ = p.syncActive()
}

// syncActive syncs the active segment. A failed sync is never retried:
// the kernel may have dropped the dirty pages, so the store fails.
func (p *commitPipeline) syncActive() error {
	if p.w == nil {
		return nil
	}
	if err := p.sync(); err != nil {
		p.env.fail(err)
		return p.env.failure()
	}
	p.synced()
	return nil
}

// sync syncs the active segment and records how long it took, for gather
// and the observer, if there is one.
func (p *commitPipeline) sync() error {
	start := time.Now()
	err := p.w.Sync()
	if err == nil {
		p.lastSyncTook = time.Since(start)
		if o := p.env.cfg.observer; o != nil {
			o.ObserveSync(p.lastSyncTook)
		}
	}
	return err
}

// synced counts a successful sync of everything written.
func (p *commitPipeline) synced() {
	p.env.stats.syncs.Add(1)
	p.unsynced = 0
	p.lastSync = p.env.cfg.clock()
}

// publish makes a durable chunk visible: index entries, stream tips,
// correlation and causation links and idempotency keys, then wakes cursors.
func (p *commitPipeline) publish(st *stage) {
	ix := p.env.ix
	ix.mu.Lock()
	for i := range st.events {
		ev := &st.events[i]
		r := &ev.rec
		m := eventMeta{eventIDs: eventIDs{id: r.ID, corr: r.Correlation, cause: r.Causation}, ts: r.Timestamp, version: r.Version}
		ix.add(r.Seq, entry{Pos: ev.pos, Kind: r.Kind}, &m.eventIDs, r.Entity, r.Scope, r.Hash)
		p.activeMetas.append(m)
	}
	if n := len(st.events); n > 0 {
		p.prep.poke(st.events[0].rec.Seq, st.events[n-1].rec.Seq)
	}
	for id := range st.deleted {
		ix.markDeleted(id)
	}
	appends := 0
	for _, q := range st.reqs {
		if q.dupOf >= 0 || q.syncOnly || q.err != nil || q.n == 0 {
			continue
		}
		if appends++; q.r.key == "" {
			continue
		}
		k := segment.IdempotencyRecord{Key: q.r.key, First: st.events[q.first].rec.Seq, Count: uint32(q.n)}
		ix.keys[k.Key] = k
		p.activeKeys = append(p.activeKeys, k)
	}
	ix.mu.Unlock()
	p.env.stats.appendedEvents.Add(uint64(len(st.events)))
	p.env.stats.appends.Add(uint64(appends))
	p.groupEvents += len(st.events)
	p.env.wake()
}

// maybeCheckpoint runs after a publish: every checkpointEvery events (by
// default, or a quarter of the store's if more) it syncs, so the checkpoint covers only durable events, and has one
// written in the background.
func (p *commitPipeline) maybeCheckpoint(n int) {
	p.sinceCkpt += n
	every := p.env.cfg.checkpointInterval(p.env.ix.lastSeq())
	if every == 0 || p.sinceCkpt < every || !p.ckptRunning.CompareAndSwap(false, true) {
		return
	}
	if p.unsynced > 0 && p.syncActive() != nil {
		p.ckptRunning.Store(false)
		return
	}
	seg, end := p.position()
	if seg == 0 || !p.env.checkpoint(seg, end, func() { p.ckptRunning.Store(false) }) {
		// No active segment (a rotation that failed), or a compaction
		// holds the checkpoint: a later commit tries again.
		p.ckptRunning.Store(false)
		return
	}
	p.sinceCkpt = 0
}

// position returns the active segment and where its frames end (0, 0:
// there is none).
func (p *commitPipeline) position() (seg uint32, end int64) {
	if p.w == nil {
		return 0, 0
	}
	return p.w.ID(), p.w.End()
}
