package batpak_test

import (
	"errors"
	"go/ast"
	"go/importer"
	"go/parser"
	"go/token"
	"go/types"
	"math"
	"testing"

	"github.com/batpak-go/batpak"
)

// TestExactlyNeverBecomesASpecialValue: Exactly(n) for n ≥ 1 is never Any,
// NoStream or StreamExists, whatever n's bits are, and an n of 2^63 or more
// is an expectation every append refuses and that accepts no version.
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
		{math.MaxUint64 - 2, false},
		{math.MaxUint64 - 1, false},
		{math.MaxUint64, false},
	}
	for _, tc := range tests {
		e := batpak.Exactly(tc.n)
		for _, special := range []batpak.ExpectedVersion{batpak.Any, batpak.NoStream, batpak.StreamExists, nil} {
			if e == special {
				t.Errorf("Exactly(%d) = %v", tc.n, special)
			}
		}
		_, err := batpak.ResolveAppendOptions(batpak.ExpectVersion(e))
		if tc.valid != (err == nil) {
			t.Errorf("Exactly(%d) resolves with %v, want valid %v", tc.n, err, tc.valid)
		}
		if err != nil && !errors.Is(err, batpak.ErrInvalidExpectedVersion) {
			t.Errorf("Exactly(%d) resolves with %v, want ErrInvalidExpectedVersion", tc.n, err)
		}
		for _, current := range []uint64{0, 1, tc.n - 1, tc.n, tc.n + 1, math.MaxUint64} {
			want := tc.valid && current == tc.n
			if got := e.Accepts(current); got != want {
				t.Errorf("Exactly(%d).Accepts(%d) = %v, want %v", tc.n, current, got, want)
			}
		}
	}
}

// TestExpectedVersionAccepts: what each expectation lets through. A
// stream at version 0 has no events.
func TestExpectedVersionAccepts(t *testing.T) {
	tests := []struct {
		e    batpak.ExpectedVersion
		want [3]bool // accepts version 0, 1, 2
	}{
		{batpak.Any, [3]bool{true, true, true}},
		{batpak.NoStream, [3]bool{true, false, false}},
		{batpak.StreamExists, [3]bool{false, true, true}},
		{batpak.Exactly(0), [3]bool{true, false, false}},
		{batpak.Exactly(1), [3]bool{false, true, false}},
		{batpak.Exactly(2), [3]bool{false, false, true}},
	}
	for _, tc := range tests {
		for v, want := range tc.want {
			if got := tc.e.Accepts(uint64(v)); got != want {
				t.Errorf("%v.Accepts(%d) = %v, want %v", tc.e, v, got, want)
			}
		}
	}
}

// TestResolveAppendOptions: every backend resolves its options here, so the
// bad ones are refused in one place: invalid expected versions, and keys
// that were given but are empty, overlong or not UTF-8.
func TestResolveAppendOptions(t *testing.T) {
	long := string(make([]byte, batpak.MaxIdempotencyKeyLen+1))
	var v uint64 // a version read as 0, then decremented
	tests := []struct {
		name     string
		opts     []batpak.AppendOption
		want     error // nil: resolves
		expected batpak.ExpectedVersion
		key      string
	}{
		{"defaults", nil, nil, batpak.Any, ""},
		{"nil version is Any", []batpak.AppendOption{batpak.ExpectVersion(nil)}, nil, batpak.Any, ""},
		{"exactly", []batpak.AppendOption{batpak.ExpectVersion(batpak.Exactly(3))}, nil, batpak.Exactly(3), ""},
		{"key", []batpak.AppendOption{batpak.WithIdempotencyKey("k")}, nil, batpak.Any, "k"},
		{"empty key", []batpak.AppendOption{batpak.WithIdempotencyKey("")}, batpak.ErrInvalidIdempotencyKey, nil, ""},
		{"key, then empty", []batpak.AppendOption{batpak.WithIdempotencyKey("k"), batpak.WithIdempotencyKey("")}, batpak.ErrInvalidIdempotencyKey, nil, ""},
		{"overlong key", []batpak.AppendOption{batpak.WithIdempotencyKey(long)}, batpak.ErrInvalidIdempotencyKey, nil, ""},
		{"non-UTF-8 key", []batpak.AppendOption{batpak.WithIdempotencyKey("k\xff")}, batpak.ErrInvalidIdempotencyKey, nil, ""},
		{"underflowed exactly", []batpak.AppendOption{batpak.ExpectVersion(batpak.Exactly(v - 1))}, batpak.ErrInvalidExpectedVersion, nil, ""},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			o, err := batpak.ResolveAppendOptions(tc.opts...)
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

// TestExpectedVersionCannotBeBuiltByAccident: the ways a stream version
// used to turn into an expectation (the zero value meaning Any, a
// conversion from an integer) no longer compile, and the named
// expectations and sync modes cannot be reassigned.
func TestExpectedVersionCannotBeBuiltByAccident(t *testing.T) {
	if testing.Short() {
		t.Skip("type-checks from source")
	}
	traps := []string{
		`var v uint64; _ = batpak.ExpectVersion(batpak.ExpectedVersion(v))`,
		`_ = batpak.ExpectVersion(0)`,
		`_ = batpak.BatchItem{Expected: 3}`,
		`var v int64; _ = batpak.ExpectedVersion(v)`,
		`batpak.Any = batpak.NoStream`,
		`eventstore.SyncEveryCommit = eventstore.SyncNone`,
	}
	fine := `var v uint64; _ = batpak.ExpectVersion(batpak.Exactly(v)); _ = batpak.BatchItem{Expected: batpak.StreamExists}`
	imp := importer.ForCompiler(token.NewFileSet(), "source", nil)
	check := func(body string) error {
		fset := token.NewFileSet()
		src := "package p\nimport (\n\"github.com/batpak-go/batpak\"\n\"github.com/batpak-go/batpak/eventstore\"\n)\nvar _ = eventstore.WithSyncMode\nfunc f() {\n" + body + "\n}\n"
		f, err := parser.ParseFile(fset, "p.go", src, 0)
		if err != nil {
			t.Fatal(err)
		}
		_, err = (&types.Config{Importer: imp}).Check("p", fset, []*ast.File{f}, nil)
		return err
	}
	if err := check(fine); err != nil {
		t.Fatalf("the intended use does not compile: %v", err)
	}
	for _, trap := range traps {
		if check(trap) == nil {
			t.Errorf("compiles: %s", trap)
		}
	}
}
