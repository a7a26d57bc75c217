package eventstore

import (
	"fmt"
	"math"
	"time"
	"unicode/utf8"

	"github.com/google/uuid"
	"github.com/vmihailenco/msgpack/v5"

	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/segment"
)

// Event is what a caller appends: a kind, a payload and optional metadata.
type Event struct {
	Kind kind.Kind
	// Payload is encoded with msgpack; a [RawPayload] is stored as it is.
	Payload any
	// Metadata travels with the event and is covered by its hash
	// (policy bypass reasons, tracing ids, ...).
	Metadata map[string]string
}

// RawPayload is a payload that is already msgpack-encoded.
type RawPayload []byte

// Record is a stored event as readers see it.
type Record struct {
	Coordinate    Coordinate
	ID            uuid.UUID
	CorrelationID uuid.UUID // the root event's id for a whole causal group
	CausationID   uuid.UUID // uuid.Nil for a root event
	Kind          kind.Kind
	Timestamp     time.Time
	Sequence      uint64 // global, dense, from 1
	Version       uint64 // within the stream, from 1
	Metadata      map[string]string
	Payload       []byte // msgpack
	PrevHash      [32]byte
	Hash          [32]byte
	Position      segment.Position
}

// Decode unmarshals the msgpack payload into v.
func (r *Record) Decode(v any) error { return msgpack.Unmarshal(r.Payload, v) }

func (r Record) String() string {
	return fmt.Sprintf("#%d %s v%d %s", r.Sequence, r.Coordinate.Entity, r.Version, r.Kind)
}

func recordFromSegment(sr *segment.Record, pos segment.Position) Record {
	return Record{
		Coordinate:    Coordinate{Entity: sr.Entity, Scope: sr.Scope},
		ID:            sr.ID,
		CorrelationID: sr.Correlation,
		CausationID:   sr.Causation,
		Kind:          kind.Kind(sr.Kind),
		Timestamp:     time.UnixMicro(sr.Timestamp),
		Sequence:      sr.Seq,
		Version:       sr.Version,
		Metadata:      sr.Metadata,
		Payload:       sr.Payload,
		PrevHash:      sr.PrevHash,
		Hash:          sr.Hash,
		Position:      pos,
	}
}

// Receipt acknowledges one appended event.
type Receipt struct {
	EventID  uuid.UUID
	Sequence uint64
	Version  uint64
	Hash     [32]byte
	Position segment.Position
}

// ExpectedVersion is an append's precondition on the stream's current
// version: [Any], [NoStream], [StreamExists] or [Exactly](n). The zero
// value is [Any].
//
// Only these values are expectations. Any other negative value, and what
// Exactly makes of an n of 2^63 or more (such as Exactly(v-1) with v = 0),
// is refused by every append with [ErrInvalidExpectedVersion]: it never
// stands for a different expectation.
type ExpectedVersion int64

const (
	// Any accepts the stream in any state.
	Any ExpectedVersion = -1
	// NoStream requires the stream to have no events yet.
	NoStream ExpectedVersion = -2
	// StreamExists requires the stream to have at least one event.
	StreamExists ExpectedVersion = -3

	// versionOutOfRange is Exactly(n) for an n above math.MaxInt64, which
	// the representation cannot hold. It is below every valid value, so
	// Validate refuses it.
	versionOutOfRange ExpectedVersion = math.MinInt64
)

// Exactly requires the stream to be at version n (its n-th event is the
// last). Exactly(0) is the same as [NoStream]; Exactly(1) is a stream of
// exactly one event. An n of 2^63 or more, which no stream reaches and
// which usually comes from an unsigned underflow, makes an expectation
// that every append refuses with [ErrInvalidExpectedVersion].
func Exactly(n uint64) ExpectedVersion {
	switch {
	case n == 0:
		return NoStream
	case n > math.MaxInt64:
		return versionOutOfRange
	}
	return ExpectedVersion(n)
}

func (e ExpectedVersion) String() string {
	switch {
	case e == Any:
		return "any version"
	case e == NoStream:
		return "no stream"
	case e == StreamExists:
		return "an existing stream"
	case e == versionOutOfRange:
		return "a version out of range"
	case e < 0:
		return fmt.Sprintf("invalid expected version %d", int64(e))
	}
	return fmt.Sprintf("version %d", int64(e))
}

// Validate returns nil for [Any], [NoStream], [StreamExists], Exactly(n)
// with n below 2^63 and the zero value, and an error matching
// [ErrInvalidExpectedVersion] for anything else.
func (e ExpectedVersion) Validate() error {
	switch {
	case e == versionOutOfRange:
		return fmt.Errorf("%w: Exactly(n) with n of 2^63 or more", ErrInvalidExpectedVersion)
	case e < StreamExists:
		return fmt.Errorf("%w: %d is none of Any, NoStream, StreamExists or Exactly(n)", ErrInvalidExpectedVersion, int64(e))
	}
	return nil
}

// Accepts reports whether a stream at version current meets e. An invalid
// e (see [ExpectedVersion.Validate]) accepts nothing.
func (e ExpectedVersion) Accepts(current uint64) bool {
	switch {
	case e == Any:
		return true
	case e == NoStream:
		return current == 0
	case e == StreamExists:
		return current > 0
	case e > 0:
		return uint64(e) == current
	}
	return false
}

// AppendOption configures an append.
type AppendOption func(*AppendSettings)

// AppendSettings is the resolved form of a list of AppendOptions. Other
// backends use [ResolveAppendOptions] to honour the same options.
type AppendSettings struct {
	Expected       ExpectedVersion // Any unless set
	IdempotencyKey string
	Correlation    uuid.UUID
	Causation      uuid.UUID

	keySet bool // WithIdempotencyKey was given, possibly with ""
}

// ResolveAppendOptions applies opts to the defaults and checks the result:
// an invalid expected version ([ErrInvalidExpectedVersion]) or an
// idempotency key that was given but is empty, longer than
// [MaxIdempotencyKeyLen] or not UTF-8 ([ErrInvalidIdempotencyKey]) is an
// error. Every backend resolves its append options with it, so they all
// accept and refuse the same requests.
func ResolveAppendOptions(opts ...AppendOption) (AppendSettings, error) {
	o := AppendSettings{Expected: Any}
	for _, opt := range opts {
		opt(&o)
	}
	if o.Expected == 0 { // the zero ExpectedVersion is Any, as in a BatchItem
		o.Expected = Any
	}
	if err := o.Expected.Validate(); err != nil {
		return o, err
	}
	if o.keySet {
		if err := validateIdempotencyKey(o.IdempotencyKey); err != nil {
			return o, err
		}
	}
	return o, nil
}

func validateIdempotencyKey(key string) error {
	switch {
	case key == "":
		return fmt.Errorf("%w: empty", ErrInvalidIdempotencyKey)
	case len(key) > MaxIdempotencyKeyLen:
		return fmt.Errorf("%w: %d bytes, limit %d", ErrInvalidIdempotencyKey, len(key), MaxIdempotencyKeyLen)
	case !utf8.ValidString(key):
		return fmt.Errorf("%w: not valid UTF-8", ErrInvalidIdempotencyKey)
	}
	return nil
}

// ExpectVersion makes the append conditional on the stream's version.
func ExpectVersion(v ExpectedVersion) AppendOption {
	return func(o *AppendSettings) { o.Expected = v }
}

// WithIdempotencyKey makes the append idempotent: appending again with a key
// that was already committed writes nothing and returns the original
// receipts. Keys are durable and shared by the whole store. A key must be
// non-empty, valid UTF-8 and at most [MaxIdempotencyKeyLen] bytes: an
// append given any other key fails with [ErrInvalidIdempotencyKey] (an
// empty key is refused rather than taken for "no key").
func WithIdempotencyKey(key string) AppendOption {
	return func(o *AppendSettings) { o.IdempotencyKey, o.keySet = key, true }
}

// WithCorrelation sets the correlation id of the appended events. Without
// it, events caused by another event inherit that event's correlation id,
// and otherwise the first appended event is the root of a new group.
func WithCorrelation(id uuid.UUID) AppendOption {
	return func(o *AppendSettings) { o.Correlation = id }
}

// WithCausation records the event that caused the appended events.
func WithCausation(id uuid.UUID) AppendOption {
	return func(o *AppendSettings) { o.Causation = id }
}

// BatchItem is one event of an atomic multi-stream [Store.AppendBatch].
// Expected is checked in item order: a later item on the same stream sees
// the versions of earlier ones. The zero Expected is [Any].
type BatchItem struct {
	Coordinate    Coordinate
	Event         Event
	Expected      ExpectedVersion
	CorrelationID uuid.UUID
	CausationID   uuid.UUID
}

// Resolve checks bi's coordinate and expected version and fills in what it
// leaves to defaults: Any as the expected version, and the batch's
// correlation and causation from o. Every backend's AppendBatch resolves
// its items with it.
func (bi BatchItem) Resolve(o AppendSettings) (BatchItem, error) {
	if err := bi.Coordinate.Validate(); err != nil {
		return bi, err
	}
	if bi.Expected == 0 {
		bi.Expected = Any
	}
	if err := bi.Expected.Validate(); err != nil {
		return bi, err
	}
	if bi.CorrelationID == uuid.Nil {
		bi.CorrelationID = o.Correlation
	}
	if bi.CausationID == uuid.Nil {
		bi.CausationID = o.Causation
	}
	return bi, nil
}
