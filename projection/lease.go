package projection

import (
	"context"
	"errors"
	"fmt"
)

// Leases let several processes run the same projection with one of them
// active at a time: a runner made [WithLeases] holds the projection's lease
// while it applies events, and the others wait for it. When the active
// process stops, or dies, another takes over within a bound set by the
// implementation ([FileLeases]: at once for a clean stop, the poll
// interval after a crash; a JetStream KV lease: its TTL) and continues
// from the checkpoint.
//
// The runners share the checkpoint store and, for the handover to mean
// anything, the read model: a database or a bucket that every process
// writes, not a value in one process's memory (the new holder continues
// from where the old one stopped; it does not rebuild).
type Leases interface {
	// Acquire blocks until the caller holds the lease named name, or ctx
	// ends (then it returns an error matching ctx's). Each Acquire that
	// returns a lease must be followed by its Release, also once it is lost.
	Acquire(ctx context.Context, name string) (Lease, error)
}

// Lease is a lease held.
type Lease interface {
	// Lost is closed when the holder must stop: the lease could not be
	// renewed and will soon lapse, or another holder has taken it. The
	// holder stops applying at once; the work under way (one Apply and a
	// checkpoint save) must end within the grace the implementation
	// documents, before another holder can take over.
	Lost() <-chan struct{}
	// Release gives the lease up, so another holder can take it at once.
	// A lost lease is released too (it frees what the holder kept).
	Release(ctx context.Context) error
}

// ErrLeaseLost is the cause of the context under which a projection
// applies events when its lease is lost (see [context.Cause]).
var ErrLeaseLost = errors.New("projection: lease lost")

// WithLeases makes the runner hold a lease per projection (by name) while
// it runs, catches up or rebuilds it, so that of several runners in one
// or many processes only one applies a projection's events at a time.
// [Runner.Run] waits for the lease, runs while it holds it, and waits
// again when it loses it; it ends only when ctx ends or the projection
// fails. A projection waiting for its lease does not count for
// [Runner.Await]: another process is running it.
func WithLeases(ls Leases) Option { return func(c *config) { c.leases = ls } }

// leased runs fn under name's lease when the runner has leases, with a
// context that ends when the lease is lost; lost reports that it was.
func (r *Runner) leased(ctx context.Context, name string, fn func(context.Context) error) (lost bool, err error) {
	if r.leases == nil {
		return false, fn(ctx)
	}
	l, err := r.leases.Acquire(ctx, name)
	if err != nil {
		return false, fmt.Errorf("projection %s: acquire lease: %w", name, err)
	}
	lctx, cancel := context.WithCancelCause(ctx)
	stop := make(chan struct{})
	watched := make(chan struct{})
	go func() {
		defer close(watched)
		select {
		case <-l.Lost():
			cancel(ErrLeaseLost)
		case <-stop:
		}
	}()
	err = fn(lctx)
	close(stop)
	<-watched
	lost = errors.Is(context.Cause(lctx), ErrLeaseLost)
	cancel(nil)
	if rerr := l.Release(context.WithoutCancel(ctx)); rerr != nil && !lost {
		err = errors.Join(err, fmt.Errorf("projection %s: release lease: %w", name, rerr))
	}
	return lost, err
}

// runLeased is Run with leases: it runs p whenever it holds p's lease.
func (r *Runner) runLeased(ctx context.Context, p Projection) error {
	for {
		// Waiting for the lease, p is not running here.
		r.stopped(p.Name())
		r.setState(r.trackOf(p.Name()), WaitingLease, nil)
		lost, err := r.leased(ctx, p.Name(), func(ctx context.Context) error { return r.run(ctx, p) })
		if !lost || ctx.Err() != nil {
			return err
		}
		// Lost: whatever ended the run (the cancelled context, a checkpoint
		// save that could not reach its store) ends with the lease; the
		// next holder goes on from the last saved checkpoint.
	}
}
