package projection

import (
	"context"
	"slices"
	"strings"
	"time"

	"github.com/batpak-go/batpak"
)

// State is what a projection is doing.
type State int

const (
	// Idle: not running (not started yet, or its run ended with its
	// context).
	Idle State = iota
	// WaitingLease: waiting for its lease; another runner has it.
	WaitingLease
	// CatchingUp: replaying history.
	CatchingUp
	// Following: applying new events as they come.
	Following
	// Stopped: stopped at a parked event ([Stop]); under
	// [Runner.RunAll] it waits for the event to be retried or skipped.
	Stopped
	// Failed: stopped by a failure of its source, checkpoints or dead
	// letters.
	Failed
)

var stateNames = [...]string{"idle", "waiting for lease", "catching up", "following", "stopped", "failed"}

func (s State) String() string {
	if int(s) < len(stateNames) {
		return stateNames[s]
	}
	return "unknown"
}

// Status is what a runner knows of one projection: where it is, how far
// behind, and what it did since the runner was made.
type Status struct {
	Projection string
	State      State
	// Position is the next global sequence the projection will examine.
	Position uint64
	// LagEvents is how many events of the log it has still to examine
	// (the store's LastSequence − (Position − 1)); 0 when no event of its
	// region is among them.
	LagEvents uint64
	// Lag is the age of the newest event it applied when LagEvents is not
	// 0 (the oldest event it has not applied is younger), and 0 otherwise
	// or if it knows of no applied event.
	Lag time.Duration
	// LastApplied is the timestamp of the newest event it applied (zero
	// if none yet).
	LastApplied time.Time
	// Applied and Retried count Apply calls that succeeded and Apply
	// calls that were retries, since the runner was made.
	Applied, Retried uint64
	// Parked is how many of its events are parked now; Stopped says one
	// of them stops it.
	Parked int
	// Err is why it stopped (State Stopped or Failed).
	Err error
}

// track is what the runner knows of one projection. Its fields are
// guarded by Runner.mu, except nudge, which is set once.
type track struct {
	name             string
	region           batpak.Region
	state            State
	next             uint64
	last             time.Time // timestamp of the newest event applied
	applied, retried uint64
	parked           map[uint64]DeadLetter // as the current run loaded and changed them
	err              error
	nudge            chan struct{} // Retry and Skip wake RunAll
}

// trackOf returns name's track, making it on first use.
func (r *Runner) trackOf(name string) *track {
	r.mu.Lock()
	defer r.mu.Unlock()
	t := r.tracks[name]
	if t == nil {
		t = &track{name: name, next: 1, parked: make(map[uint64]DeadLetter), nudge: make(chan struct{}, 1)}
		r.tracks[name] = t
	}
	return t
}

func (r *Runner) setState(t *track, s State, err error) {
	r.mu.Lock()
	defer r.mu.Unlock()
	t.state, t.err = s, err
}

// setPosition moves name's position for Status only (a CatchUp, which
// Await does not wait for).
func (r *Runner) setPosition(name string, next uint64) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if t := r.tracks[name]; t != nil {
		t.next = next
	}
}

// Status returns the status of every projection this runner has run,
// sorted by name. It reads the store's LastSequence, and for a projection
// that is behind, whether an event of its region is among those it has
// still to examine.
func (r *Runner) Status(ctx context.Context) []Status {
	last := r.src.LastSequence()
	now := time.Now()
	r.mu.Lock()
	out := make([]Status, 0, len(r.tracks))
	regions := make([]batpak.Region, 0, len(r.tracks))
	for _, t := range r.tracks {
		out = append(out, Status{Projection: t.name, State: t.state, Position: t.next, LastApplied: t.last,
			Applied: t.applied, Retried: t.retried, Parked: len(t.parked), Err: t.err})
		regions = append(regions, t.region)
	}
	r.mu.Unlock()
	for i := range out {
		st := &out[i]
		if st.Position > last || !r.matches(ctx, regions[i], st.Position, last) {
			continue
		}
		st.LagEvents = last - (st.Position - 1)
		if !st.LastApplied.IsZero() {
			st.Lag = max(now.Sub(st.LastApplied), 0)
		}
	}
	slices.SortFunc(out, func(a, b Status) int { return strings.Compare(a.Projection, b.Projection) })
	return out
}
