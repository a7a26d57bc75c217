package batpak

import (
	"errors"
	"fmt"
)

var (
	// ErrVersionConflict matches every [*VersionConflictError].
	ErrVersionConflict = errors.New("batpak: version conflict")
	// ErrPayloadTooLarge is returned for an event or request above the size limits.
	ErrPayloadTooLarge = errors.New("batpak: payload too large")
	// ErrInvalidCoordinate matches every [*CoordinateError].
	ErrInvalidCoordinate = errors.New("batpak: invalid coordinate")
	// ErrReservedKind is returned for an event of a system kind (category 0x0).
	ErrReservedKind = errors.New("batpak: reserved kind")
	// ErrEmptyAppend is returned for an append without events.
	ErrEmptyAppend = errors.New("batpak: nothing to append")
	// ErrInvalidIdempotencyKey is returned for an empty-but-set, overlong or non-UTF-8 key.
	ErrInvalidIdempotencyKey = errors.New("batpak: invalid idempotency key")
	// ErrInvalidExpectedVersion is returned for an expected version that is
	// none of Any, NoStream, StreamExists or Exactly(n) with n below 2^63
	// (see [ExpectedVersion.Validate]).
	ErrInvalidExpectedVersion = errors.New("batpak: invalid expected version")
	// ErrInvalidMetadata is returned for event metadata whose keys or values
	// are not valid UTF-8.
	ErrInvalidMetadata = errors.New("batpak: invalid metadata")
	// ErrStoreFailed is returned once a write or data sync failed: the store
	// is read-only until it is reopened, which recovers from the files.
	ErrStoreFailed = errors.New("batpak: store failed; reopen to recover")
	// ErrReadOnly is returned for writes to a store opened with a read-only open.
	ErrReadOnly = errors.New("batpak: store is read-only")
	// ErrClosed is returned by calls on a closed store.
	ErrClosed = errors.New("batpak: store is closed")
	// ErrStreamDeleted is returned for appends to a stream a tombstone deleted.
	ErrStreamDeleted = errors.New("batpak: stream was deleted")
	// ErrNotFound is returned by Get for an unknown event id.
	ErrNotFound = errors.New("batpak: not found")
	// ErrEndOfRegion is returned by a cursor whose region has a ToSequence
	// it has passed: no event can match any more.
	ErrEndOfRegion = errors.New("batpak: cursor is past the end of its region")
	// ErrChainBroken matches every [*ChainError].
	ErrChainBroken = errors.New("batpak: hash chain broken")
	// ErrCorrupt matches damage found in stored data; a backend's typed
	// error names where (the embedded store's *segment.CorruptError names
	// the segment file and offset).
	ErrCorrupt = errors.New("batpak: corrupt data")
)

// VersionConflictError reports an append whose expected version did not
// match the stream. Actual is the stream's version when the append was checked.
type VersionConflictError struct {
	Stream   Coordinate
	Expected ExpectedVersion
	Actual   uint64
}

func (e *VersionConflictError) Error() string {
	return fmt.Sprintf("batpak: version conflict on %s: expected %s, stream is at version %d", e.Stream, e.Expected, e.Actual)
}

// Is reports whether target is [ErrVersionConflict].
func (e *VersionConflictError) Is(target error) bool { return target == ErrVersionConflict }

// CoordinateError explains why a coordinate was refused.
type CoordinateError struct {
	Field  string // "entity" or "scope"
	Value  string
	Reason string
}

func (e *CoordinateError) Error() string {
	return fmt.Sprintf("batpak: invalid coordinate: %s %q: %s", e.Field, e.Value, e.Reason)
}

// Is reports whether target is [ErrInvalidCoordinate].
func (e *CoordinateError) Is(target error) bool { return target == ErrInvalidCoordinate }

// ChainError reports the first event of a stream whose hash chain does not verify.
type ChainError struct {
	Stream   Coordinate
	Version  uint64
	Sequence uint64
	Reason   string
}

func (e *ChainError) Error() string {
	return fmt.Sprintf("batpak: hash chain of %s broken at version %d (sequence %d): %s", e.Stream, e.Version, e.Sequence, e.Reason)
}

// Is reports whether target is [ErrChainBroken].
func (e *ChainError) Is(target error) bool { return target == ErrChainBroken }
