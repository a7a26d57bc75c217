package projection

import (
	"context"
	"errors"
	"sync"
	"time"
)

// errRestart ends a run so that it starts again: a resolution was asked
// for one of its parked events.
var errRestart = errors.New("projection: restart for a resolution")

// RunAll runs every projection side by side, each on its own, until ctx
// ends: one that fails never stops the others.
//
// A projection that stops at a parked event ([Stop]) waits, its state
// [Stopped], until the event is retried or skipped ([Runner.Retry],
// [Runner.Skip], or "batpak projections retry|skip" from another
// process, seen within the [WithResolvePoll] interval), then runs again
// from the event. A resolution asked for an event parked under [Continue]
// restarts the projection's run, which does it first. A projection that
// fails otherwise (its source, checkpoints or dead letters) stays
// [Failed]. Each failure is reported to [WithOnFailure] and shows in
// [Runner.Status].
//
// RunAll returns once every projection has stopped for good: ctx's error
// joined with the failures of the projections that failed.
func (r *Runner) RunAll(ctx context.Context, ps ...Projection) error {
	errs := make([]error, len(ps)+1)
	var wg sync.WaitGroup
	for i, p := range ps {
		wg.Go(func() { errs[i+1] = r.supervise(ctx, p) })
	}
	wg.Wait()
	errs[0] = ctx.Err()
	return errors.Join(errs...)
}

// supervise runs p until ctx ends or p fails for good.
func (r *Runner) supervise(ctx context.Context, p Projection) error {
	t := r.trackOf(p.Name())
	for {
		rctx, cancel := context.WithCancelCause(ctx)
		watched := make(chan struct{})
		go func() {
			defer close(watched)
			r.watch(rctx, t, cancel)
		}()
		err := r.Run(rctx, p)
		restart := errors.Is(context.Cause(rctx), errRestart)
		cancel(nil)
		<-watched
		var ae *ApplyError
		failed := err != nil && !restart && !errors.As(err, &ae) &&
			!errors.Is(err, context.Canceled) && !errors.Is(err, context.DeadlineExceeded)
		switch {
		case failed:
			return err // a failure for good, also when ctx ended since
		case ctx.Err() != nil:
			return nil
		case restart:
			continue
		case ae == nil:
			return err
		}
		if !r.awaitResolution(ctx, t, ae.Sequence) {
			return nil
		}
	}
}

// watch ends a run with errRestart once a resolution is asked for a
// parked event that the run did not know of.
func (r *Runner) watch(ctx context.Context, t *track, cancel context.CancelCauseFunc) {
	tick := time.NewTicker(r.resolvePoll)
	defer tick.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-tick.C:
		case <-t.nudge:
		}
		list, err := r.dls.Parked(ctx, t.name)
		if err != nil {
			continue
		}
		r.mu.Lock()
		asked := false
		for _, d := range list {
			asked = asked || d.Resolution != "" && t.parked[d.Sequence].Resolution != d.Resolution
		}
		r.mu.Unlock()
		if asked {
			cancel(errRestart)
			return
		}
	}
}

// awaitResolution waits until the parked event seq that stopped t is
// resolved or gone; false if ctx ended first.
func (r *Runner) awaitResolution(ctx context.Context, t *track, seq uint64) bool {
	tick := time.NewTicker(r.resolvePoll)
	defer tick.Stop()
	for {
		if list, err := r.dls.Parked(ctx, t.name); err == nil {
			resolved := true
			for _, d := range list {
				if d.Sequence == seq {
					resolved = d.Resolution != ""
				}
			}
			if resolved {
				return true
			}
		}
		select {
		case <-ctx.Done():
			return false
		case <-tick.C:
		case <-t.nudge:
		}
	}
}
