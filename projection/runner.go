package projection

import (
	"context"
	"errors"
	"fmt"
	"iter"
	"sync"
	"time"

	"go.opentelemetry.io/otel"
	"go.opentelemetry.io/otel/trace"

	"github.com/batpak-go/batpak"
)

// Projection is a read model fed from the log.
type Projection interface {
	// Name identifies the projection's checkpoint; keep it stable.
	Name() string
	// Region selects the events it wants.
	Region() batpak.Region
	// Apply folds one event in. A failed Apply is tried again as the
	// runner's [Policy] says, then the event is parked (see [DeadLetter]).
	// Delivery is at least once: after a crash, the events since the last
	// saved checkpoint are offered again. [ParkedRetry] tells a retry of
	// an event parked behind the projection's position.
	Apply(ctx context.Context, rec batpak.Record) error
}

// Resetter is implemented by projections that can be rebuilt: Reset drops
// everything the projection built so far.
type Resetter interface {
	Reset(ctx context.Context) error
}

// Source is what a runner reads: a sequential replay of history and a
// guaranteed follow of what comes after. *eventstore.Store implements it.
type Source interface {
	Replay(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error]
	Follow(ctx context.Context, region batpak.Region, from uint64) iter.Seq2[batpak.Record, error]
	LastSequence() uint64
}

// Progress reports a catch-up.
type Progress struct {
	Projection string
	Done       uint64 // events examined so far (by sequence)
	Total      uint64 // events to examine in this catch-up
	Rate       float64
	Elapsed    time.Duration
	CaughtUp   bool
}

// ErrNotResettable is returned by Rebuild for a projection without Reset.
var ErrNotResettable = errors.New("projection: projection cannot be reset")

// Runner runs projections, each on its own: one that fails never stops
// another.
type Runner struct {
	src Source
	cps Checkpoints
	dls DeadLetters
	config

	mu      sync.Mutex    // guards what follows, and every field of a track
	changed chan struct{} // closed and replaced whenever a position moves
	running map[string]*position
	tracks  map[string]*track // every projection this runner ran, by name
}

type position struct {
	region batpak.Region
	next   uint64 // next sequence the projection will see
}

// config is what the options of a Runner set.
type config struct {
	progress    func(Progress)
	every       int
	interval    time.Duration
	leases      Leases // nil: no leases
	policy      Policy
	policies    map[string]Policy
	deadLetters DeadLetters
	onFailure   func(string, error)
	onParked    func(DeadLetter)
	resolvePoll time.Duration
	tp          trace.TracerProvider
	tracer      trace.Tracer
}

// Option configures a Runner.
type Option func(*config)

// WithProgress calls fn during catch-up (about every 1% and at the end).
func WithProgress(fn func(Progress)) Option { return func(c *config) { c.progress = fn } }

// WithCheckpointEvery saves a projection's checkpoint after n applied
// events or d since the last save, whichever comes first (default 1,000
// events or 1 s), and always when a run ends.
func WithCheckpointEvery(n int, d time.Duration) Option {
	return func(c *config) { c.every, c.interval = max(n, 1), d }
}

// WithTracerProvider sets the provider of the runner's projection.apply
// spans (default: the global one, otel.GetTracerProvider, a no-op until
// the program installs one). See package tracing.
func WithTracerProvider(tp trace.TracerProvider) Option { return func(c *config) { c.tp = tp } }

// ScopeName is the instrumentation scope of this package's spans.
const ScopeName = "github.com/batpak-go/batpak/projection"

// deadLetterer is implemented by checkpoint stores that keep dead letters
// beside the checkpoints.
type deadLetterer interface{ DeadLetters() DeadLetters }

// NewRunner returns a runner reading src and saving checkpoints in cps.
func NewRunner(src Source, cps Checkpoints, opts ...Option) *Runner {
	r := &Runner{src: src, cps: cps, config: config{every: 1000, interval: time.Second, resolvePoll: time.Second},
		changed: make(chan struct{}), running: make(map[string]*position), tracks: make(map[string]*track)}
	for _, o := range opts {
		o(&r.config)
	}
	if r.tp == nil {
		r.tp = otel.GetTracerProvider()
	}
	r.tracer = r.tp.Tracer(ScopeName)
	r.dls = r.deadLetters
	if r.dls == nil {
		if d, ok := cps.(deadLetterer); ok {
			r.dls = d.DeadLetters()
		} else {
			r.dls = NewMemoryDeadLetters()
		}
	}
	return r
}

// policyOf returns the failure policy of the projection name.
func (r *Runner) policyOf(name string) Policy {
	if p, ok := r.policies[name]; ok {
		return p.withDefaults()
	}
	return r.policy.withDefaults()
}

// Run catches p up and then follows new events until ctx ends or p stops:
// an event it parked under the [Stop] policy (a *[ApplyError]) or a
// failure of the source, the checkpoints or the dead letters. It returns
// ctx's error or the failure, which it also reports to [WithOnFailure].
// With [WithLeases] it runs p only while it holds p's lease.
func (r *Runner) Run(ctx context.Context, p Projection) error {
	var err error
	if r.leases != nil {
		err = r.runLeased(ctx, p)
	} else {
		err = r.run(ctx, p)
	}
	r.ended(ctx, p.Name(), err)
	return err
}

func (r *Runner) run(ctx context.Context, p Projection) error {
	next, err := r.catchUp(ctx, p, true)
	if err != nil {
		r.stopped(p.Name())
		return err
	}
	return r.follow(ctx, p, next)
}

// Start runs ps as [Runner.RunAll] does, in a goroutine of its own, and
// returns at once. Unlike a RunAll started in a goroutine, the projections
// count for [Runner.Await] from the moment Start returns. wait blocks until
// they stop and returns what RunAll returned.
func (r *Runner) Start(ctx context.Context, ps ...Projection) (wait func() error) {
	r.mu.Lock()
	for _, p := range ps {
		if _, ok := r.running[p.Name()]; !ok {
			r.running[p.Name()] = &position{region: p.Region(), next: 1}
		}
	}
	r.mu.Unlock()
	done := make(chan error, 1)
	go func() { done <- r.RunAll(ctx, ps...) }()
	return sync.OnceValue(func() error { return <-done })
}

// CatchUp replays what p has not seen up to the newest event, saves the
// checkpoint and returns the next sequence to apply. With [WithLeases] it
// waits for p's lease and holds it meanwhile. It returns a *[ApplyError]
// if p stops at a parked event.
func (r *Runner) CatchUp(ctx context.Context, p Projection) (next uint64, err error) {
	_, err = r.leased(ctx, p.Name(), func(ctx context.Context) (err error) {
		next, err = r.catchUp(ctx, p, false)
		return err
	})
	return next, err
}

// catchUp replays; track makes Await wait for the projection.
func (r *Runner) catchUp(ctx context.Context, p Projection, track bool) (uint64, error) {
	name := p.Name()
	setNext := func(next uint64) {
		if track {
			r.setNext(p, next)
		} else {
			r.setPosition(name, next)
		}
	}
	t, next, err := r.begin(ctx, p)
	if err != nil {
		return 0, err
	}
	setNext(next)
	r.setState(t, CatchingUp, nil)
	pol := r.policyOf(name)
	last := r.src.LastSequence()
	start := time.Now()
	total := uint64(0)
	if last >= next {
		total = last - next + 1
	}
	step := max(total/100, 1)
	report := func(seq uint64, done bool) {
		if r.progress == nil {
			return
		}
		d := seq - min(seq, next-1)
		if done {
			d = total
		}
		el := time.Since(start)
		r.progress(Progress{Projection: name, Done: d, Total: total, Elapsed: el,
			Rate: float64(d) / max(el.Seconds(), 1e-9), CaughtUp: done})
	}
	sv := r.saver(ctx, name, next)
	cur := next
	for rec, err := range r.src.Replay(ctx, p.Region(), next) {
		if err != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("projection %s: replay: %w", name, err)
			}
			return 0, errors.Join(err, sv.flush(cur))
		}
		if rec.Sequence > last {
			break
		}
		if err := ctx.Err(); err != nil {
			return 0, errors.Join(err, sv.flush(cur))
		}
		if err := r.apply(ctx, p, t, rec, pol); err != nil {
			return 0, errors.Join(err, sv.flush(cur))
		}
		cur = rec.Sequence + 1
		setNext(cur)
		if err := sv.applied(cur); err != nil {
			return 0, err
		}
		if (rec.Sequence-next+1)%step == 0 {
			report(rec.Sequence, false)
		}
	}
	// Events outside the region up to last are done too.
	cur = max(cur, last+1)
	setNext(cur)
	if err := sv.flush(cur); err != nil {
		return 0, err
	}
	report(last, true)
	return cur, nil
}

func (r *Runner) follow(ctx context.Context, p Projection, next uint64) error {
	name := p.Name()
	defer r.stopped(name)
	t := r.trackOf(name)
	r.setState(t, Following, nil)
	pol := r.policyOf(name)
	sv := r.saver(ctx, name, next)
	cur := next
	for rec, err := range r.src.Follow(ctx, p.Region(), next) {
		if err != nil {
			if ctx.Err() == nil {
				err = fmt.Errorf("projection %s: follow: %w", name, err)
			}
			return errors.Join(err, sv.flush(cur))
		}
		if err := r.apply(ctx, p, t, rec, pol); err != nil {
			return errors.Join(err, sv.flush(cur))
		}
		cur = rec.Sequence + 1
		r.setNext(p, cur)
		if err := sv.applied(cur); err != nil {
			return err
		}
	}
	return sv.flush(cur)
}

// Rebuild resets p, forgets its checkpoint and catches it up from the
// start. With [WithLeases] it waits for p's lease and holds it meanwhile.
func (r *Runner) Rebuild(ctx context.Context, p Projection) (next uint64, err error) {
	rs, ok := p.(Resetter)
	if !ok {
		return 0, fmt.Errorf("%w: %s", ErrNotResettable, p.Name())
	}
	_, err = r.leased(ctx, p.Name(), func(ctx context.Context) (err error) {
		if err := rs.Reset(ctx); err != nil {
			return err
		}
		if err := r.cps.Save(context.WithoutCancel(ctx), p.Name(), 1); err != nil {
			return err
		}
		next, err = r.catchUp(ctx, p, false)
		return err
	})
	return next, err
}

func (r *Runner) setNext(p Projection, next uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	pos := r.running[p.Name()]
	if pos == nil {
		pos = &position{region: p.Region()}
		r.running[p.Name()] = pos
	}
	pos.next = next
	if t := r.tracks[p.Name()]; t != nil {
		t.next = next
	}
	close(r.changed)
	r.changed = make(chan struct{})
}

func (r *Runner) stopped(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	delete(r.running, name)
	close(r.changed)
	r.changed = make(chan struct{})
}

// Await blocks until every running projection has handled every event of
// its region up to and including seq (read-your-writes after an append),
// or ctx ends. Running means started by [Runner.Start], or by Run or RunAll
// once they have begun: a Run in a goroutine that has not yet been
// scheduled is not waited for.
func (r *Runner) Await(ctx context.Context, seq uint64) error {
	for {
		r.mu.Lock()
		changed := r.changed
		var behind []position
		for _, pos := range r.running {
			if pos.next <= seq {
				behind = append(behind, *pos)
			}
		}
		r.mu.Unlock()
		waiting := false
		for _, pos := range behind {
			if r.matches(ctx, pos.region, pos.next, seq) {
				waiting = true
				break
			}
		}
		if !waiting {
			return nil
		}
		select {
		case <-changed:
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// matches reports whether region holds an event in [from, to].
func (r *Runner) matches(ctx context.Context, region batpak.Region, from, to uint64) bool {
	region.ToSequence = to
	for _, err := range r.src.Replay(ctx, region, from) {
		return err == nil
	}
	return false
}

// saver batches checkpoint writes.
type saver struct {
	r     *Runner
	ctx   context.Context
	name  string
	since int
	last  time.Time
	saved uint64
}

func (r *Runner) saver(ctx context.Context, name string, saved uint64) *saver {
	return &saver{r: r, ctx: context.WithoutCancel(ctx), name: name, last: time.Now(), saved: saved}
}

func (s *saver) applied(next uint64) error {
	s.since++
	if s.since < s.r.every && time.Since(s.last) < s.r.interval {
		return nil
	}
	return s.flush(next)
}

func (s *saver) flush(next uint64) error {
	if next == s.saved {
		return nil
	}
	s.since, s.last, s.saved = 0, time.Now(), next
	if err := s.r.cps.Save(s.ctx, s.name, next); err != nil {
		return fmt.Errorf("projection %s: save checkpoint: %w", s.name, err)
	}
	return nil
}
