package eventstore

import (
	"errors"
	"fmt"
	"time"

	"go.uber.org/zap"

	"github.com/batpak-go/batpak/segment"
)

// run is the writer goroutine: it takes the first waiting request, drains
// up to groupMax more without waiting, and commits them together.
func (s *Store) run() {
	defer close(s.done)
	var tick <-chan time.Time
	if s.cfg.sync.kind == syncInterval && s.cfg.sync.interval > 0 {
		t := time.NewTicker(s.cfg.sync.interval)
		defer t.Stop()
		tick = t.C
	}
	group := make([]*request, 0, s.cfg.groupMax)
	for {
		select {
		case r := <-s.reqs:
			group = append(group[:0], r)
		case <-tick:
			s.commitMu.Lock()
			s.syncIfDue()
			s.commitMu.Unlock()
			continue
		case <-s.quit:
			s.commitMu.Lock()
			defer s.commitMu.Unlock()
			for {
				group = group[:0]
				for len(group) < s.cfg.groupMax {
					select {
					case r := <-s.reqs:
						group = append(group, r)
						continue
					default:
					}
					break
				}
				if len(group) == 0 {
					return
				}
				s.commit(group)
			}
		}
		s.commitMu.Lock()
	drain: // including what came while an appender committed inline
		for len(group) < s.cfg.groupMax {
			select {
			case r := <-s.reqs:
				group = append(group, r)
			default:
				break drain
			}
		}
		s.commit(group)
		s.commitMu.Unlock()
	}
}

// commitInline commits r on the caller's goroutine when nothing is queued
// and no one is committing, which saves the two goroutine hand-overs of a
// request through the writer: a lone appender then waits for its write and
// sync alone. It reports false when r must be queued for the writer.
func (s *Store) commitInline(r *request) bool {
	if !s.commitMu.TryLock() {
		return false
	}
	defer s.commitMu.Unlock()
	if len(s.reqs) > 0 {
		return false // queued requests go first
	}
	defer func() {
		// A panic here (say, in a clock from WithClock) would have crashed
		// the process on the writer goroutine. On the caller's goroutine it
		// may be recovered, so the store must not go on half-committed.
		if p := recover(); p != nil {
			s.fail(fmt.Errorf("eventstore: panic while committing: %v", p))
			s.stage.reset()
			panic(p)
		}
	}()
	group := [1]*request{r}
	s.commit(group[:])
	return true
}

// commit validates, encodes, writes, syncs and publishes a group. A request
// that fails validation is answered on its own; the others go on.
func (s *Store) commit(group []*request) {
	st := &s.stage
	st.nextSeq = s.ix.lastSeq() + 1
	s.stats.groups.Add(1)
	s.stats.groupedRequests.Add(uint64(len(group)))
	for _, r := range group {
		if err := s.failure(); err != nil {
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
			if rec, ok := s.ix.keys[r.key]; ok {
				r.done <- s.originalReceipts(rec)
				continue
			}
			if i, ok := st.keys[r.key]; ok {
				st.reqs = append(st.reqs, stagedRequest{r: r, dupOf: i})
				continue
			}
		}
		encode := s.encode
		if r.delete.Entity != "" {
			encode = s.encodeTombstone
		}
		if err := encode(st, r); err != nil {
			st.reqs = append(st.reqs, stagedRequest{r: r, dupOf: -1, err: err})
			continue
		}
		if s.needsRotation(len(st.scratch)) { // needsRotation counts st.buf itself
			s.flush()
			if err := s.rotate(); err != nil {
				s.fail(err)
			}
			if err := s.failure(); err != nil {
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
		s.place(st, r)
	}
	s.flush()
}

// flush writes the chunk with one write, syncs it per the sync mode,
// publishes it and answers its requests.
func (s *Store) flush() {
	st := &s.stage
	defer st.reset()
	if len(st.reqs) == 0 {
		return
	}
	err := s.failure()
	if err == nil && len(st.buf) > 0 {
		err = s.writeChunk(st)
	}
	if err == nil && s.needsSync(st) {
		err = s.syncActive()
	}
	if err != nil {
		for _, q := range st.reqs {
			q.r.done <- result{err: err}
		}
		st.nextSeq = s.ix.lastSeq() + 1 // the failed chunk's sequences were never handed out
		return
	}
	if len(st.events) > 0 || len(st.deleted) > 0 {
		s.publish(st)
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
		s.fanOut(st.events)
		s.maybeCheckpoint(len(st.events))
	}
}

func (s *Store) writeChunk(st *stage) error {
	start := s.w.End()
	if _, err := s.w.Write(st.buf); err != nil {
		if errors.Is(err, segment.ErrWriterBroken) {
			s.fail(err)
			return s.failure()
		}
		s.log.Warn("append write failed; group rolled back", zap.Error(err))
		return fmt.Errorf("eventstore: write: %w", err)
	}
	s.stats.bytesWritten.Add(uint64(len(st.buf)))
	s.activeEnd.Store(s.w.End())
	s.unsynced += len(st.events)
	if s.cfg.sync.kind == syncEveryCommit {
		if err := s.w.Sync(); err != nil {
			// Never retry a failed sync: cut the unsynced frames off and fail.
			if rerr := s.w.Rollback(start); rerr != nil {
				s.log.Error("rollback after failed sync", zap.Error(rerr))
			}
			s.fail(err)
			return s.failure()
		}
		s.synced()
	}
	return nil
}

// needsSync reports whether the chunk must be synced before it is answered
// beyond what writeChunk did: an explicit Sync request, or a due interval.
func (s *Store) needsSync(st *stage) bool {
	for _, q := range st.reqs {
		if q.syncOnly {
			return s.unsynced > 0 || s.cfg.sync.kind != syncEveryCommit
		}
	}
	return s.cfg.sync.kind == syncInterval && s.intervalDue()
}

func (s *Store) intervalDue() bool {
	m := s.cfg.sync
	return s.unsynced > 0 && ((m.events > 0 && s.unsynced >= m.events) ||
		(m.interval > 0 && s.cfg.clock().Sub(s.lastSync) >= m.interval))
}

// syncIfDue runs on the interval ticker, under the commit mutex.
func (s *Store) syncIfDue() {
	if s.w == nil || s.failure() != nil || !s.intervalDue() {
		return
	}
	_ = s.syncActive()
}

func (s *Store) syncActive() error {
	if s.w == nil {
		return nil
	}
	if err := s.w.Sync(); err != nil {
		s.fail(err)
		return s.failure()
	}
	s.synced()
	return nil
}

// synced counts a successful sync of everything written.
func (s *Store) synced() {
	s.stats.syncs.Add(1)
	s.unsynced = 0
	s.lastSync = s.cfg.clock()
}
