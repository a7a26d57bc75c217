package projection

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"github.com/google/uuid"
)

// DeadLetter is an event a projection could not apply: its Apply failed on
// every attempt its [Policy] allows, and the runner parked it here, with
// the last error, for a person or a program to retry or skip.
type DeadLetter struct {
	Projection string    `json:"projection"`
	Sequence   uint64    `json:"sequence"` // the event's global sequence
	EventID    uuid.UUID `json:"event_id"` // the event's id
	Error      string    `json:"error"`    // the last Apply error
	Attempts   int       `json:"attempts"` // Apply calls that failed, over every run
	Parked     time.Time `json:"parked"`   // when it was first parked
	LastFailed time.Time `json:"last_failed"`
	// Stopped says the projection stopped at this event (its policy is
	// [Stop]): nothing after it is applied until it is retried with
	// success or skipped. Otherwise the projection went on past it.
	Stopped bool `json:"stopped"`
	// Resolution is what someone asked for it ([ResolveRetry],
	// [ResolveSkip]), and the runner has not done yet; "" for nothing.
	Resolution Resolution `json:"resolution,omitempty"`
}

// Resolution is what to do with a parked event.
type Resolution string

const (
	// ResolveRetry applies the event again; it stays parked (with one
	// more failed attempt) if Apply still fails.
	ResolveRetry Resolution = "retry"
	// ResolveSkip drops the event: the projection never applies it.
	ResolveSkip Resolution = "skip"
)

// DeadLetters stores parked events, durably, per projection name. Every
// method is safe for concurrent use, and an implementation shared by
// several processes (a directory, a database, a KV bucket) keeps each call
// atomic among them.
type DeadLetters interface {
	// Park adds d, or replaces the record of the same projection and
	// sequence.
	Park(ctx context.Context, d DeadLetter) error
	// Parked returns the parked events of the projection name, in
	// sequence order.
	Parked(ctx context.Context, name string) ([]DeadLetter, error)
	// Remove drops the parked event seq of name; a missing one is no error.
	Remove(ctx context.Context, name string, seq uint64) error
	// Resolve sets the Resolution of the parked event seq of name. It
	// returns an error matching [ErrNotParked] when there is none.
	Resolve(ctx context.Context, name string, seq uint64, how Resolution) error
}

// ErrNotParked is returned by Resolve for an event that is not parked.
var ErrNotParked = errors.New("projection: no such parked event")

// ErrBadResolution is returned by Resolve for a Resolution it does not know.
var ErrBadResolution = errors.New("projection: resolution must be retry or skip")

func checkResolution(how Resolution) error {
	if how != ResolveRetry && how != ResolveSkip {
		return fmt.Errorf("%w: %q", ErrBadResolution, how)
	}
	return nil
}

// MemoryDeadLetters keeps parked events in memory: they are lost with the
// process. It is what a runner uses with checkpoints that offer no dead
// letters of their own.
type MemoryDeadLetters struct {
	mu sync.Mutex
	m  map[string]map[uint64]DeadLetter
}

// NewMemoryDeadLetters returns an empty in-memory dead-letter store.
func NewMemoryDeadLetters() *MemoryDeadLetters {
	return &MemoryDeadLetters{m: make(map[string]map[uint64]DeadLetter)}
}

// Park adds or replaces d.
func (m *MemoryDeadLetters) Park(_ context.Context, d DeadLetter) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.m[d.Projection] == nil {
		m.m[d.Projection] = make(map[uint64]DeadLetter)
	}
	m.m[d.Projection][d.Sequence] = d
	return nil
}

// Parked returns name's parked events in sequence order.
func (m *MemoryDeadLetters) Parked(_ context.Context, name string) ([]DeadLetter, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	return sortedLetters(m.m[name]), nil
}

// Remove drops the parked event seq of name.
func (m *MemoryDeadLetters) Remove(_ context.Context, name string, seq uint64) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.m[name], seq)
	return nil
}

// Resolve sets the Resolution of the parked event seq of name.
func (m *MemoryDeadLetters) Resolve(_ context.Context, name string, seq uint64, how Resolution) error {
	if err := checkResolution(how); err != nil {
		return err
	}
	m.mu.Lock()
	defer m.mu.Unlock()
	d, ok := m.m[name][seq]
	if !ok {
		return fmt.Errorf("%w: %s #%d", ErrNotParked, name, seq)
	}
	d.Resolution = how
	m.m[name][seq] = d
	return nil
}

func sortedLetters(m map[uint64]DeadLetter) []DeadLetter {
	out := make([]DeadLetter, 0, len(m))
	for _, d := range m {
		out = append(out, d)
	}
	slices.SortFunc(out, func(a, b DeadLetter) int { return cmp.Compare(a.Sequence, b.Sequence) })
	return out
}

var (
	_ DeadLetters = (*MemoryDeadLetters)(nil)
	_ DeadLetters = (*FileDeadLetters)(nil)
)
