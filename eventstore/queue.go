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
		p.commit(group)
		p.mu.Unlock()
	}
}

// commitInline commits r on the caller's goroutine when nothing is queued
// and no one is committing, which saves the two goroutine hand-overs of a
// request through the writer: a lone appender then waits for its write and
// sync alone. It reports false when r must be queued for the writer.
func (p *commitPipeline) commitInline(r *request) bool {
	if !p.mu.TryLock() {
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
