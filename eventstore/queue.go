package eventstore

import (
	"context"
	"fmt"
	"time"

	"github.com/batpak-go/batpak"
)

// The request queue: how a request reaches the commit pipeline. An appender
// commits its own request when the pipeline is idle and nothing is queued;
// otherwise the writer goroutine takes it from the queue, together with
// whatever else waits there, as one group.

// start starts the writer goroutine over env. Open calls it once recovery
// has left the active segment; a read-only store never does.
func (p *commitPipeline) start(env commitEnv) {
	p.env = env
	p.reqs = make(chan *request, env.cfg.queueSize)
	p.lastSync = env.cfg.clock()
	p.stage = newStage()
	go p.prep.run(p)
	go p.run()
}

// stop waits for the appends that are handing over a request, then for
// the writer to commit everything queued and exit.
func (p *commitPipeline) stop() {
	p.sendMu.Lock()
	close(p.quit)
	p.sendMu.Unlock()
	if p.reqs != nil { // started
		<-p.done
	}
	p.prep.stop(p.reqs != nil)
}

// handOver commits r on the caller's goroutine or queues it for the
// writer, under sendMu's read lock: stop waits for both.
func (p *commitPipeline) handOver(ctx context.Context, r *request) error {
	p.sendMu.RLock()
	defer p.sendMu.RUnlock()
	if p.env.closed.Load() {
		return batpak.ErrClosed
	}
	if p.commitInline(r) {
		return nil
	}
	select {
	case p.reqs <- r:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// run is the writer goroutine: it takes the first waiting request, drains
// up to groupMax more without waiting, and commits them together.
func (p *commitPipeline) run() {
	defer close(p.done)
	cfg := p.env.cfg
	var tick <-chan time.Time
	if cfg.sync.kind == syncInterval && cfg.sync.interval > 0 {
		t := time.NewTicker(cfg.sync.interval)
		defer t.Stop()
		tick = t.C
	}
	group := make([]*request, 0, cfg.groupMax)
	wait := time.NewTimer(time.Hour)
	wait.Stop()
	for {
		select {
		case r := <-p.reqs:
			group = append(group[:0], r)
		case <-tick:
			p.mu.Lock()
			p.syncIfDue()
			p.mu.Unlock()
			continue
		case <-p.quit:
			p.mu.Lock()
			defer p.mu.Unlock()
			for {
				group = group[:0]
				for len(group) < cfg.groupMax {
					select {
					case r := <-p.reqs:
						group = append(group, r)
						continue
					default:
					}
					break
				}
				if len(group) == 0 {
					return
				}
				p.commit(group)
			}
		}
		p.mu.Lock()
	drain: // including what came while an appender committed inline
		for len(group) < cfg.groupMax {
			select {
			case r := <-p.reqs:
				group = append(group, r)
			default:
				break drain
			}
		}
		group = p.gather(group, wait)
		p.commit(group)
		p.mu.Unlock()
	}
}

// gather lets a group that will be synced wait a moment for more
// appenders, so that they share its sync. Appenders that append again as
// soon as they are answered otherwise split into two halves that take
// turns, each half with a sync of its own: eight of them made groups of
// four. The group waits until it holds as many requests as were in flight
// at the busiest recent commit (at most gatherFor), for at most half the
// last sync's time, or until quit; one appender alone never waits. Caller
// holds mu, so appenders that arrive meanwhile queue instead of
// committing inline.
func (p *commitPipeline) gather(group []*request, t *time.Timer) []*request {
	p.peak = max(int(p.inFlight.Load()), p.peak-1) // falls back as appenders leave
	want := min(p.peak, p.env.cfg.groupMax, gatherFor)
	if p.env.cfg.sync.kind != syncEveryCommit || len(group) >= want || p.lastSyncTook <= 0 {
		return group
	}
	t.Reset(min(p.lastSyncTook/2, p.gatherMax))
	defer t.Stop()
	for len(group) < want {
		select {
		case r := <-p.reqs:
			group = append(group, r)
		case <-t.C:
			return group
		case <-p.quit:
			return group
		}
	}
	return group
}

// maxGather bounds how long a group waits for more appenders (tests
// change it through commitPipeline.gatherMax), and gatherFor how many it
// waits for: a larger group shares its sync widely enough, and the
// appenders that arrive while it syncs fill the next one (with 64
// appenders, waiting for more made fewer events a second).
const (
	maxGather = 500 * time.Microsecond
	gatherFor = 16
)

// commitInline commits r on the caller's goroutine when nothing is queued
// and no one is committing, which saves the two goroutine hand-overs of a
// request through the writer: a lone appender then waits for its write and
// sync alone. Under SyncEveryCommit it does so only for the one append in
// flight: others share the writer's next sync (see gather). It reports
// false when r must be queued for the writer.
func (p *commitPipeline) commitInline(r *request) bool {
	if (p.inFlight.Load() > 1 && p.env.cfg.sync.kind == syncEveryCommit) || !p.mu.TryLock() {
		return false
	}
	defer p.mu.Unlock()
	if len(p.reqs) > 0 {
		return false // queued requests go first
	}
	defer func() {
		// A panic here (say, in a clock from WithClock) would have crashed
		// the process on the writer goroutine. On the caller's goroutine it
		// may be recovered, so the store must not go on half-committed.
		if v := recover(); v != nil {
			p.env.fail(fmt.Errorf("eventstore: panic while committing: %v", v))
			p.stage.reset()
			panic(v)
		}
	}()
	group := [1]*request{r}
	p.commit(group[:])
	return true
}
