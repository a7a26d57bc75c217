package eventstore_test

import (
	"errors"
	"math"
	"testing"

	"github.com/batpak-go/batpak/eventstore"
)

// TestExactlyNeverBecomesASpecialValue: Exactly(n) for n ≥ 1 is never Any,
// NoStream or StreamExists, whatever n's bits are, and an n of 2^63 or more
// is an invalid expectation that accepts no stream version.
func TestExactlyNeverBecomesASpecialValue(t *testing.T) {
	tests := []struct {
		n     uint64
		valid bool
	}{
		{1, true},
		{2, true},
		{math.MaxInt64 - 1, true},
		{math.MaxInt64, true},
		{math.MaxInt64 + 1, false},
		{math.MaxInt64 + 2, false},
		{math.MaxUint64 - 3, false},
		{math.MaxUint64 - 2, false}, // -3 as int64: StreamExists
		{math.MaxUint64 - 1, false}, // -2 as int64: NoStream
		{math.MaxUint64, false},     // -1 as int64: Any
	}
	for _, tc := range tests {
		e := eventstore.Exactly(tc.n)
		for _, special := range []eventstore.ExpectedVersion{eventstore.Any, eventstore.NoStream, eventstore.StreamExists, 0} {
			if e == special {
				t.Errorf("Exactly(%d) = %v", tc.n, special)
			}
		}
		err := e.Validate()
		if tc.valid != (err == nil) {
			t.Errorf("Exactly(%d).Validate() = %v, want valid %v", tc.n, err, tc.valid)
		}
		if err != nil && !errors.Is(err, eventstore.ErrInvalidExpectedVersion) {
			t.Errorf("Exactly(%d).Validate() = %v, want ErrInvalidExpectedVersion", tc.n, err)
		}
		for _, current := range []uint64{0, 1, tc.n - 1, tc.n, tc.n + 1, math.MaxUint64} {
			want := tc.valid && current == tc.n
			if got := e.Accepts(current); got != want {
				t.Errorf("Exactly(%d).Accepts(%d) = %v, want %v", tc.n, current, got, want)
			}
		}
	}
}

// TestExpectedVersionValidate: the named values, Exactly(n) and the zero
// value are valid; every other negative value is ErrInvalidExpectedVersion,
// also in a BatchItem, and accepts nothing.
func TestExpectedVersionValidate(t *testing.T) {
	tests := []struct {
		e     eventstore.ExpectedVersion
		valid bool
	}{
		{eventstore.Any, true},
		{eventstore.NoStream, true},
		{eventstore.StreamExists, true},
		{eventstore.Exactly(0), true},
		{eventstore.Exactly(7), true},
		{eventstore.ExpectedVersion(0), true},
		{eventstore.ExpectedVersion(math.MaxInt64), true},
		{eventstore.ExpectedVersion(-4), false},
		{eventstore.ExpectedVersion(-5), false},
		{eventstore.ExpectedVersion(-1 << 40), false},
		{eventstore.ExpectedVersion(math.MinInt64), false},
	}
	coord := eventstore.Coordinate{Entity: "x", Scope: "test"}
	for _, tc := range tests {
		err := tc.e.Validate()
		_, batchErr := eventstore.BatchItem{Coordinate: coord, Expected: tc.e}.Resolve(eventstore.AppendSettings{})
		if tc.valid {
			if err != nil || batchErr != nil {
				t.Errorf("%v: Validate() = %v, BatchItem.Resolve() = %v, want nil", tc.e, err, batchErr)
			}
			continue
		}
		if !errors.Is(err, eventstore.ErrInvalidExpectedVersion) || !errors.Is(batchErr, eventstore.ErrInvalidExpectedVersion) {
			t.Errorf("%v: Validate() = %v, BatchItem.Resolve() = %v, want ErrInvalidExpectedVersion", tc.e, err, batchErr)
		}
		for _, current := range []uint64{0, 1, 2, math.MaxUint64} {
			if tc.e.Accepts(current) {
				t.Errorf("%v accepts version %d", tc.e, current)
			}
		}
	}
}

// TestResolveAppendOptions: every backend resolves its options here, so the
// bad ones are refused in one place: invalid expected versions, and keys
// that were given but are empty, overlong or not UTF-8.
func TestResolveAppendOptions(t *testing.T) {
	long := string(make([]byte, eventstore.MaxIdempotencyKeyLen+1))
	var v uint64 // a version read as 0, then decremented
	tests := []struct {
		name     string
		opts     []eventstore.AppendOption
		want     error // nil: resolves
		expected eventstore.ExpectedVersion
		key      string
	}{
		{"defaults", nil, nil, eventstore.Any, ""},
		{"zero version is Any", []eventstore.AppendOption{eventstore.ExpectVersion(0)}, nil, eventstore.Any, ""},
		{"exactly", []eventstore.AppendOption{eventstore.ExpectVersion(eventstore.Exactly(3))}, nil, eventstore.Exactly(3), ""},
		{"key", []eventstore.AppendOption{eventstore.WithIdempotencyKey("k")}, nil, eventstore.Any, "k"},
		{"empty key", []eventstore.AppendOption{eventstore.WithIdempotencyKey("")}, eventstore.ErrInvalidIdempotencyKey, 0, ""},
		{"key, then empty", []eventstore.AppendOption{eventstore.WithIdempotencyKey("k"), eventstore.WithIdempotencyKey("")}, eventstore.ErrInvalidIdempotencyKey, 0, ""},
		{"overlong key", []eventstore.AppendOption{eventstore.WithIdempotencyKey(long)}, eventstore.ErrInvalidIdempotencyKey, 0, ""},
		{"non-UTF-8 key", []eventstore.AppendOption{eventstore.WithIdempotencyKey("k\xff")}, eventstore.ErrInvalidIdempotencyKey, 0, ""},
		{"underflowed exactly", []eventstore.AppendOption{eventstore.ExpectVersion(eventstore.Exactly(v - 1))}, eventstore.ErrInvalidExpectedVersion, 0, ""},
		{"negative version", []eventstore.AppendOption{eventstore.ExpectVersion(-5)}, eventstore.ErrInvalidExpectedVersion, 0, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := eventstore.ResolveAppendOptions(tc.opts...)
			if tc.want != nil {
				if !errors.Is(err, tc.want) {
					t.Fatalf("error %v, want %v", err, tc.want)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if o.Expected != tc.expected || o.IdempotencyKey != tc.key {
				t.Fatalf("resolved to %v, key %q; want %v, key %q", o.Expected, o.IdempotencyKey, tc.expected, tc.key)
			}
		})
	}
}
