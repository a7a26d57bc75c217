package batpak

import (
	"fmt"
	"math"
)

// ExpectedVersion is an append's precondition on the stream's current
// version: [Any], [NoStream], [StreamExists] or [Exactly](n). These are
// the only values: an integer does not convert to one, so a version read
// from a stream cannot become "any" by accident. A nil ExpectedVersion,
// the zero value of a [BatchItem]'s Expected and of an append without
// [ExpectVersion], is Any.
type ExpectedVersion interface {
	// Accepts reports whether a stream at version current meets the
	// expectation.
	Accepts(current uint64) bool
	String() string
	expectation()
}

type state int8

const (
	// Any accepts the stream in any state. Leaving the expectation out
	// says the same.
	Any state = iota + 1
	// NoStream requires the stream to have no events yet.
	NoStream
	// StreamExists requires the stream to have at least one event.
	StreamExists
)

func (s state) expectation() {}

func (s state) Accepts(current uint64) bool {
	switch s {
	case NoStream:
		return current == 0
	case StreamExists:
		return current > 0
	}
	return true
}

func (s state) String() string {
	switch s {
	case NoStream:
		return "no stream"
	case StreamExists:
		return "an existing stream"
	}
	return "any version"
}

type exactly uint64

// Exactly requires the stream to be at version n (its n-th event is the
// last). Exactly(0) is [NoStream]; Exactly(1) is a stream of exactly one
// event. An n of 2^63 or more, which no stream reaches and which usually
// comes from an unsigned underflow (Exactly(v-1) with v = 0), makes an
// expectation every append refuses with [ErrInvalidExpectedVersion].
func Exactly(n uint64) ExpectedVersion {
	if n == 0 {
		return NoStream
	}
	return exactly(n)
}

func (e exactly) expectation() {}

func (e exactly) Accepts(current uint64) bool { return e <= math.MaxInt64 && uint64(e) == current }

func (e exactly) String() string { return fmt.Sprintf("version %d", uint64(e)) }

// checkExpected resolves e: nil is [Any]; an Exactly out of range is an
// error matching [ErrInvalidExpectedVersion].
func checkExpected(e ExpectedVersion) (ExpectedVersion, error) {
	if e == nil {
		return Any, nil
	}
	if x, ok := e.(exactly); ok && x > math.MaxInt64 {
		return e, fmt.Errorf("%w: Exactly(%d) is 2^63 or more", ErrInvalidExpectedVersion, uint64(x))
	}
	return e, nil
}
