package projection

import (
	"time"

	"github.com/cenkalti/backoff/v5"
)

// Policy says what a runner does when a projection's Apply fails: it tries
// the event again, Attempts times in all, waiting between tries (an
// exponential backoff with jitter from MinBackoff up to MaxBackoff); if
// the last try fails too, it parks the event in the runner's
// [DeadLetters] and then stops the projection or goes on, as Then says.
// The zero Policy is the default: 5 attempts, 100 ms to 5 s, [Stop].
type Policy struct {
	// Attempts is how many times Apply is called for one event, the first
	// included (0: 5; 1: no retry).
	Attempts int
	// MinBackoff is the first wait (0: 100 ms); each next one is 1.5 times
	// longer, ±50%, up to MaxBackoff (0: 5 s).
	MinBackoff, MaxBackoff time.Duration
	// Then is what the projection does once an event is parked.
	Then Action
}

// Action is what a projection does after it parked an event.
type Action int

const (
	// Stop stops the projection at the parked event (the default): its
	// checkpoint stays on the event and nothing after it is applied until
	// the event is retried with success or skipped ([Runner.Retry],
	// [Runner.Skip], "batpak projections retry|skip"). The read model
	// stays a prefix of the log. Other projections go on.
	Stop Action = iota
	// Continue goes on with the next event: the parked event is missing
	// from the read model until it is retried; later events are applied
	// without it. For projections whose events do not depend on each other.
	Continue
)

func (a Action) String() string {
	if a == Continue {
		return "continue"
	}
	return "stop"
}

func (p Policy) withDefaults() Policy {
	if p.Attempts <= 0 {
		p.Attempts = 5
	}
	if p.MinBackoff <= 0 {
		p.MinBackoff = 100 * time.Millisecond
	}
	if p.MaxBackoff <= 0 {
		p.MaxBackoff = 5 * time.Second
	}
	p.MaxBackoff = max(p.MaxBackoff, p.MinBackoff)
	return p
}

// backoff returns a fresh backoff for one event's retries.
func (p Policy) backoff() backoff.BackOff {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval, b.MaxInterval = p.MinBackoff, p.MaxBackoff
	return b
}

// WithPolicy sets the failure policy of every projection the runner runs
// (unless [WithPolicyFor] names it).
func WithPolicy(p Policy) Option { return func(c *config) { c.policy = p } }

// WithPolicyFor sets the failure policy of the projection name.
func WithPolicyFor(name string, p Policy) Option {
	return func(c *config) {
		if c.policies == nil {
			c.policies = make(map[string]Policy)
		}
		c.policies[name] = p
	}
}

// WithDeadLetters sets where the runner parks events. By default it parks
// them beside the checkpoints when the [Checkpoints] offer a store
// (FileCheckpoints: in its directory; MemoryCheckpoints: in memory), and
// in memory otherwise.
func WithDeadLetters(d DeadLetters) Option { return func(c *config) { c.deadLetters = d } }

// WithOnFailure calls fn when a projection stops with an error: an event
// it parked under [Stop] (a *[ApplyError]), or a failure of its source,
// checkpoints or dead letters. fn runs on the projection's goroutine.
func WithOnFailure(fn func(projection string, err error)) Option {
	return func(c *config) { c.onFailure = fn }
}

// WithOnParked calls fn each time an event is parked. fn runs on the
// projection's goroutine.
func WithOnParked(fn func(DeadLetter)) Option { return func(c *config) { c.onParked = fn } }

// WithResolvePoll sets how often [Runner.RunAll] looks at a projection's
// dead letters for resolutions made by another process, such as "batpak
// projections retry" (default 1 s; a resolution made with [Runner.Retry]
// or [Runner.Skip] on the same runner is seen at once).
func WithResolvePoll(d time.Duration) Option {
	return func(c *config) { c.resolvePoll = max(d, time.Millisecond) }
}
