package batpak

import (
	"fmt"
	"iter"
	"unicode/utf8"

	"github.com/google/uuid"
)

// MaxIdempotencyKeyLen is the longest idempotency key, in bytes.
const MaxIdempotencyKeyLen = 512

// AppendOption configures an append.
type AppendOption func(*AppendSettings)

// AppendSettings is the resolved form of a list of AppendOptions, as a
// backend sees it (see [ResolveAppendOptions]).
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
	var o AppendSettings
	for _, opt := range opts {
		opt(&o)
	}
	var err error
	if o.Expected, err = checkExpected(o.Expected); err != nil {
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
// receipts. A key is durable and belongs to the scope of the append's
// stream (of the first item's, for a batch), so tenants cannot collide. A
// key must be non-empty, valid UTF-8 and at most [MaxIdempotencyKeyLen]
// bytes: an append given any other key fails with
// [ErrInvalidIdempotencyKey] (an empty key is refused rather than taken
// for "no key").
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
// the versions of earlier ones. A nil Expected is [Any].
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
	var err error
	if bi.Expected, err = checkExpected(bi.Expected); err != nil {
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

// ReadOption configures [Store.ReadStream].
type ReadOption func(*ReadSettings)

// ReadSettings is the resolved form of a list of ReadOptions, as a backend
// sees it (see [ResolveReadOptions]).
type ReadSettings struct {
	Backward bool
	Limit    int // 0: no limit
}

// ResolveReadOptions applies opts to the defaults.
func ResolveReadOptions(opts ...ReadOption) ReadSettings {
	var o ReadSettings
	for _, opt := range opts {
		opt(&o)
	}
	return o
}

// Positions yields the positions (version-1) a read of a stream of n
// events visits when it starts at version from, in the order it visits
// them: from from up, or with Backward from from (0: the newest) down.
// Limit is not applied: a backend counts only the events it yields.
func (o ReadSettings) Positions(from uint64, n int) iter.Seq[int] {
	return func(yield func(int) bool) {
		if o.Backward {
			top := n
			if from > 0 && from < uint64(n) {
				top = int(from)
			}
			for i := top - 1; i >= 0 && yield(i); i-- {
			}
			return
		}
		start := 0
		if from > 1 {
			start = int(min(from-1, uint64(n)))
		}
		for i := start; i < n && yield(i); i++ {
		}
	}
}

// Backward reads from the given version (0: the newest) towards version 1.
func Backward() ReadOption { return func(o *ReadSettings) { o.Backward = true } }

// Limit stops after n events.
func Limit(n int) ReadOption { return func(o *ReadSettings) { o.Limit = n } }
