package batpak

import (
	"errors"
	"fmt"

	"github.com/batpak-go/batpak/kind"
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
	// ErrInvalidTypeName is returned for an event type name that
	// [ValidateTypeName] refuses.
	ErrInvalidTypeName = errors.New("batpak: invalid event type name")
	// ErrTypeConflict matches every [*TypeConflictError].
	ErrTypeConflict = errors.New("batpak: event type conflict")
	// ErrSchema is returned for an event whose schema a registry cannot
	// read: malformed schema metadata ([ParseSchema]), a version newer
	// than the registered type's (written by a later release), a version
	// no upcaster covers, or a codec the registry does not know.
	ErrSchema = errors.New("batpak: unreadable event schema")
	// ErrStrictDecode is returned by a strict decoding ([Strict]) of a
	// payload with a field the type lacks or without a field it requires.
	ErrStrictDecode = errors.New("batpak: payload does not match its type exactly")
	// ErrUpcast matches an upcaster that failed, or an upcaster chain
	// that does not lead to the registered type.
	ErrUpcast = errors.New("batpak: upcast failed")
	// ErrErased is returned for the payload of an event whose subject was
	// forgotten, by [Record.Decode] and [DecodeAs].
	ErrErased = errors.New("batpak: payload erased: its subject was forgotten")
	// ErrForgotten is returned for an append of an event whose subject
	// was forgotten: a forgotten subject stays forgotten.
	ErrForgotten = errors.New("batpak: subject was forgotten")
	// ErrKeyMissing matches every [*KeyError].
	ErrKeyMissing = errors.New("batpak: key of a subject is missing or damaged")
)

// KeyError reports a sealed event whose subject's key the store does not
// have (neither a key nor the mark of a Forget) or cannot use: damage to
// the key store or to the sealed payload, never an erasure. It matches
// [ErrKeyMissing] and [ErrCorrupt].
type KeyError struct {
	Subject  Subject
	Sequence uint64 // the event being read; 0 for none
	Reason   string
}

func (e *KeyError) Error() string {
	return fmt.Sprintf("batpak: key of subject %s (event %d): %s", e.Subject, e.Sequence, e.Reason)
}

// Is reports whether target is [ErrKeyMissing] or [ErrCorrupt].
func (e *KeyError) Is(target error) bool { return target == ErrKeyMissing || target == ErrCorrupt }

// DecodeError reports a payload a [Registry] could not decode into its
// type: the event, its type name, the schema version it was written at,
// and the cause (which may match [ErrSchema], [ErrStrictDecode] or
// [ErrUpcast]).
type DecodeError struct {
	Sequence uint64
	Kind     kind.Kind
	Type     string
	Schema   uint16
	Err      error
}

func (e *DecodeError) Error() string {
	return fmt.Sprintf("batpak: decode event %d %q (kind %s, schema %d): %v", e.Sequence, e.Type, e.Kind, e.Schema, e.Err)
}

func (e *DecodeError) Unwrap() error { return e.Err }

// TypeConflictError reports an event type that disagrees with one bound
// before: in a [Registry] (a kind, a name or a Go type registered twice
// differently), or in a store's catalog of the type names it has seen (a
// kind appended under a new name, or a name under a new kind). A store
// refuses the whole append and stores nothing.
type TypeConflictError struct {
	Kind kind.Kind
	Name string
	// Reason says what was bound before, e.g. `kind 1:002 is "bank.Deposit"`.
	Reason string
	// Catalog is set when a store's catalog refused the type, rather than
	// a registry.
	Catalog bool
}

func (e *TypeConflictError) Error() string {
	where := "registry"
	if e.Catalog {
		where = "store catalog"
	}
	return fmt.Sprintf("batpak: event type %q (kind %s) conflicts with the %s: %s", e.Name, e.Kind, where, e.Reason)
}

// Is reports whether target is [ErrTypeConflict].
func (e *TypeConflictError) Is(target error) bool { return target == ErrTypeConflict }

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
