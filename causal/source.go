package causal

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
)

// Source is what the package needs from an event store: point reads and the
// causation and correlation indexes. The embedded store (eventstore), the
// JetStream store (natsstore) and the in-memory store (memstore) satisfy it.
//
// Get and GetSequence return an error matching [batpak.ErrNotFound] for
// an unknown event. Correlated returns the sequences of the events whose
// correlation id is id, other than the event id itself; CausedBy returns the
// sequences of the events whose causation id is id. Both are in commit order.
type Source interface {
	Get(ctx context.Context, id uuid.UUID) (batpak.Record, error)
	GetSequence(ctx context.Context, seq uint64) (batpak.Record, error)
	Correlated(id uuid.UUID) []uint64
	CausedBy(id uuid.UUID) []uint64
}

var (
	// ErrDangling matches every [*DanglingError].
	ErrDangling = errors.New("causal: dangling causation id")
	// ErrCycle matches every [*CycleError].
	ErrCycle = errors.New("causal: causation cycle")
	// ErrNoPath is returned by [Path] for two events neither of which
	// causes the other, directly or indirectly.
	ErrNoPath = errors.New("causal: no causal path")
	// ErrTooManyNodes is returned by a walk that would visit more events than
	// its [MaxNodes] guard allows.
	ErrTooManyNodes = errors.New("causal: walk visits too many events")
)

// Dangling is a causation id that names no event: the cause was never
// appended or is gone.
type Dangling struct {
	Missing  uuid.UUID // the causation id that names no event
	Effect   uuid.UUID // the event whose causation id it is
	Sequence uint64    // the effect's sequence
}

// DanglingError reports that a walk up the causation chain reached an event
// whose cause does not exist. It matches [ErrDangling].
type DanglingError struct {
	Dangling
}

func (e *DanglingError) Error() string {
	return fmt.Sprintf("causal: cause %s of event #%d (%s) does not exist", e.Missing, e.Sequence, e.Effect)
}

// Is reports whether target is [ErrDangling].
func (e *DanglingError) Is(target error) bool { return target == ErrDangling }

// CycleError reports causation ids that form a cycle. IDs and Sequences
// list the events of the cycle, each the cause of the next and the last
// the cause of the first. It matches [ErrCycle].
type CycleError struct {
	IDs       []uuid.UUID
	Sequences []uint64
}

func (e *CycleError) Error() string {
	var b strings.Builder
	b.WriteString("causal: causation cycle through events")
	for _, seq := range e.Sequences {
		fmt.Fprintf(&b, " #%d", seq)
	}
	return b.String()
}

// Is reports whether target is [ErrCycle].
func (e *CycleError) Is(target error) bool { return target == ErrCycle }

// notFound reports whether err says an event does not exist.
func notFound(err error) bool { return errors.Is(err, batpak.ErrNotFound) }

// ShortID returns the last 8 hex digits of id, the short form the renderers
// print. Event ids are UUIDv7s whose leading digits are a timestamp, shared
// by the events of about the same minute, so the short form is taken from the
// random end.
func ShortID(id uuid.UUID) string {
	s := id.String()
	return s[len(s)-8:]
}
