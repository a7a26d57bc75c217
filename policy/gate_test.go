package policy_test

import (
	"errors"
	"fmt"
	"reflect"
	"slices"
	"sync"
	"testing"

	"github.com/batpak-go/batpak/policy"
)

// limits is the policy context of the tests' gates.
type limits struct{ Max int }

// recorder remembers which gates ran, in order.
type recorder struct {
	mu    sync.Mutex
	calls []string
}

func (r *recorder) record(name string) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.calls = append(r.calls, name)
}

func (r *recorder) passing(name string) policy.Gate[limits, int] {
	return policy.GateFunc(name, func(limits, int) *policy.Denial {
		r.record(name)
		return nil
	})
}

func (r *recorder) denying(name string) policy.Gate[limits, int] {
	return policy.GateFunc(name, func(limits, int) *policy.Denial {
		r.record(name)
		return policy.Deny("CODE_"+name, "no from "+name, "gate", name)
	})
}

func gateNames(ds policy.Denials) []string {
	out := []string{}
	for _, d := range ds {
		out = append(out, d.Gate)
	}
	return out
}

func TestGateFunc(t *testing.T) {
	g := policy.GateFunc("max", func(c limits, p int) *policy.Denial {
		if p > c.Max {
			return policy.Deny("TOO_BIG", "too big", "max", c.Max, "got", p)
		}
		return nil
	})
	if g.Name() != "max" {
		t.Fatalf("Name() = %q", g.Name())
	}
	tests := []struct {
		max, p int
		denied bool
	}{
		{10, 5, false}, {10, 10, false}, {10, 11, true}, {0, -1, false}, {-1, 0, true},
	}
	for _, tc := range tests {
		d := g.Check(limits{Max: tc.max}, tc.p)
		if (d != nil) != tc.denied {
			t.Errorf("Check(max %d, %d) = %v, want denied=%v", tc.max, tc.p, d, tc.denied)
			continue
		}
		if d == nil {
			continue
		}
		if d.Code != "TOO_BIG" || d.Gate != "" {
			t.Errorf("denial %+v: a bare gate leaves Gate empty and keeps its code", d)
		}
		if v, ok := d.Detail("got"); !ok || v != tc.p {
			t.Errorf("Detail(got) = %v, %v", v, ok)
		}
	}
}

func TestGateSetEvaluate(t *testing.T) {
	type gateSpec struct {
		name string
		deny bool
	}
	P, D := func(n string) gateSpec { return gateSpec{n, false} }, func(n string) gateSpec { return gateSpec{n, true} }
	tests := []struct {
		name   string
		mode   policy.Mode
		gates  []gateSpec
		denied []string // nil: a receipt is issued
		ran    []string
	}{
		{"no gates fail-fast", policy.FailFast, nil, nil, nil},
		{"no gates evaluate-all", policy.EvaluateAll, nil, nil, nil},
		{"one passes", policy.FailFast, []gateSpec{P("a")}, nil, []string{"a"}},
		{"one denies fail-fast", policy.FailFast, []gateSpec{D("a")}, []string{"a"}, []string{"a"}},
		{"one denies evaluate-all", policy.EvaluateAll, []gateSpec{D("a")}, []string{"a"}, []string{"a"}},
		{"all pass fail-fast", policy.FailFast, []gateSpec{P("a"), P("b"), P("c")}, nil, []string{"a", "b", "c"}},
		{"all pass evaluate-all", policy.EvaluateAll, []gateSpec{P("a"), P("b"), P("c")}, nil, []string{"a", "b", "c"}},
		{"first denies fail-fast", policy.FailFast, []gateSpec{D("a"), P("b"), P("c")}, []string{"a"}, []string{"a"}},
		{"middle denies fail-fast", policy.FailFast, []gateSpec{P("a"), D("b"), P("c")}, []string{"b"}, []string{"a", "b"}},
		{"last denies fail-fast", policy.FailFast, []gateSpec{P("a"), P("b"), D("c")}, []string{"c"}, []string{"a", "b", "c"}},
		{"two deny fail-fast stops at the first", policy.FailFast, []gateSpec{P("a"), D("b"), D("c")}, []string{"b"}, []string{"a", "b"}},
		{"all deny fail-fast", policy.FailFast, []gateSpec{D("a"), D("b"), D("c")}, []string{"a"}, []string{"a"}},
		{"first denies evaluate-all", policy.EvaluateAll, []gateSpec{D("a"), P("b"), P("c")}, []string{"a"}, []string{"a", "b", "c"}},
		{"middle denies evaluate-all", policy.EvaluateAll, []gateSpec{P("a"), D("b"), P("c")}, []string{"b"}, []string{"a", "b", "c"}},
		{"two deny evaluate-all", policy.EvaluateAll, []gateSpec{D("a"), P("b"), D("c")}, []string{"a", "c"}, []string{"a", "b", "c"}},
		{"all deny evaluate-all", policy.EvaluateAll, []gateSpec{D("a"), D("b"), D("c")}, []string{"a", "b", "c"}, []string{"a", "b", "c"}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			rec := &recorder{}
			var gates []policy.Gate[limits, int]
			var names []string
			for _, g := range tc.gates {
				names = append(names, g.name)
				if g.deny {
					gates = append(gates, rec.denying(g.name))
				} else {
					gates = append(gates, rec.passing(g.name))
				}
			}
			set := policy.NewGateSet(tc.mode, gates...)
			if got := set.Names(); !slices.Equal(got, names) {
				t.Errorf("Names() = %v, want %v", got, names)
			}
			receipt, err := set.Evaluate(limits{}, 42)
			if !slices.Equal(rec.calls, tc.ran) {
				t.Errorf("gates run %v, want %v", rec.calls, tc.ran)
			}
			if tc.denied == nil {
				if err != nil || receipt == nil {
					t.Fatalf("Evaluate = %v, %v; want a receipt", receipt, err)
				}
				if receipt.Proposal() != 42 {
					t.Errorf("Proposal() = %d", receipt.Proposal())
				}
				a := receipt.Audit()
				if a.Bypass != nil || !slices.Equal(a.Gates, rec.calls) || len(a.Gates) != len(tc.gates) {
					t.Errorf("Audit() = %+v, want the gates passed %v", a, rec.calls)
				}
				return
			}
			if receipt != nil {
				t.Errorf("a denied evaluation issued a receipt")
			}
			var ds policy.Denials
			if !errors.As(err, &ds) {
				t.Fatalf("error %T %v is not policy.Denials", err, err)
			}
			if got := gateNames(ds); !slices.Equal(got, tc.denied) {
				t.Errorf("denied by %v, want %v", got, tc.denied)
			}
			for _, d := range ds {
				if d.Code != "CODE_"+d.Gate {
					t.Errorf("denial %+v carries another gate's code", d)
				}
			}
			if !errors.Is(err, policy.ErrDenied) {
				t.Errorf("errors.Is(%v, ErrDenied) = false", err)
			}
		})
	}
}

// TestGateSetContextAndProposal checks that gates judge the context and
// the proposal they are given, per evaluation.
func TestGateSetContextAndProposal(t *testing.T) {
	set := policy.NewGateSet(policy.EvaluateAll,
		policy.GateFunc("max", func(c limits, p int) *policy.Denial {
			if p > c.Max {
				return policy.Deny("TOO_BIG", "above the maximum", "max", c.Max)
			}
			return nil
		}),
		policy.GateFunc("even", func(_ limits, p int) *policy.Denial {
			if p%2 != 0 {
				return policy.Deny("ODD", "must be even")
			}
			return nil
		}),
		policy.GateFunc("positive", func(_ limits, p int) *policy.Denial {
			if p <= 0 {
				return policy.Deny("NOT_POSITIVE", "must be positive")
			}
			return nil
		}),
	)
	tests := []struct {
		max, p int
		denied []string
	}{
		{10, 4, nil},
		{10, 12, []string{"max"}},
		{10, 3, []string{"even"}},
		{10, 0, []string{"positive"}},
		{10, 13, []string{"max", "even"}},
		{-5, -1, []string{"max", "even", "positive"}},
		{-5, -2, []string{"max", "positive"}},
		{100, -3, []string{"even", "positive"}},
	}
	for _, tc := range tests {
		_, err := set.Evaluate(limits{Max: tc.max}, tc.p)
		var ds policy.Denials
		errors.As(err, &ds)
		if got := gateNames(ds); !slices.Equal(got, append([]string{}, tc.denied...)) {
			t.Errorf("max %d, proposal %d: denied by %v, want %v (err %v)", tc.max, tc.p, got, tc.denied, err)
		}
	}
}

// TestGateNameOverridesDenial checks that the set names the gate that
// denied, whatever the denial said, and that a gate may return one shared
// denial value (like a sentinel error) without the set writing into it.
func TestGateNameOverridesDenial(t *testing.T) {
	shared := policy.Deny("SHARED", "shared denial")
	shared.Gate = "original"
	set := policy.NewGateSet(policy.EvaluateAll,
		policy.GateFunc("first", func(limits, int) *policy.Denial { return shared }),
		policy.GateFunc("second", func(limits, int) *policy.Denial { return shared }),
	)
	_, err := set.Evaluate(limits{}, 1)
	var ds policy.Denials
	if !errors.As(err, &ds) {
		t.Fatal(err)
	}
	if got := gateNames(ds); !slices.Equal(got, []string{"first", "second"}) {
		t.Errorf("denied by %v, want [first second]", got)
	}
	if shared.Gate != "original" {
		t.Errorf("the gate's own denial was changed to Gate=%q", shared.Gate)
	}
	// Concurrent evaluations returning the same denial do not race (-race).
	var wg sync.WaitGroup
	for range 8 {
		wg.Go(func() {
			for range 20 {
				if _, err := set.Evaluate(limits{}, 1); !errors.Is(err, policy.ErrDenied) {
					t.Error(err)
					return
				}
			}
		})
	}
	wg.Wait()
}

func TestDeny(t *testing.T) {
	tests := []struct {
		name string
		kv   []any
		want []policy.KV
	}{
		{"no details", nil, nil},
		{"pairs", []any{"a", 1, "b", "two"}, []policy.KV{{"a", 1}, {"b", "two"}}},
		{"odd count", []any{"a", 1, "dangling"}, []policy.KV{{"a", 1}, {"!BADKEY", "dangling"}}},
		{"single value", []any{42}, []policy.KV{{"!BADKEY", 42}}},
		{"non-string key", []any{7, true, nil, 3.5}, []policy.KV{{"7", true}, {"<nil>", 3.5}}},
		{"nil value", []any{"k", nil}, []policy.KV{{"k", nil}}},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			d := policy.Deny("CODE", "message", tc.kv...)
			if d.Code != "CODE" || d.Message != "message" || d.Gate != "" {
				t.Errorf("Deny = %+v", d)
			}
			if !reflect.DeepEqual(d.Details, tc.want) {
				t.Errorf("Details = %#v, want %#v", d.Details, tc.want)
			}
		})
	}
}

func TestDenialDetail(t *testing.T) {
	d := policy.Deny("C", "m", "amount", int64(5), "who", "bob", "amount", 9, "none", nil)
	tests := []struct {
		key  string
		want any
		ok   bool
	}{
		{"amount", int64(5), true}, // the first of a repeated key
		{"who", "bob", true},
		{"none", nil, true},
		{"missing", nil, false},
		{"", nil, false},
	}
	for _, tc := range tests {
		v, ok := d.Detail(tc.key)
		if v != tc.want || ok != tc.ok {
			t.Errorf("Detail(%q) = %v, %v; want %v, %v", tc.key, v, ok, tc.want, tc.ok)
		}
	}
	if v, ok := policy.Deny("C", "m").Detail("x"); v != nil || ok {
		t.Errorf("Detail on a denial without details = %v, %v", v, ok)
	}
}

func named(gate string, d *policy.Denial) *policy.Denial {
	d.Gate = gate
	return d
}

func TestDenialErrorFormatting(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want string
	}{
		{"denial", named("limit", policy.Deny("TOO_BIG", "too big")),
			`gate "limit" denied: too big (TOO_BIG)`},
		{"denial with details", named("limit", policy.Deny("TOO_BIG", "too big", "max", 10, "got", 11)),
			`gate "limit" denied: too big (TOO_BIG) [max=10 got=11]`},
		{"denial with odd details", named("g", policy.Deny("C", "m", "k", "v", "x")),
			`gate "g" denied: m (C) [k=v !BADKEY=x]`},
		{"denial without gate", policy.Deny("C", "m"),
			`gate "" denied: m (C)`},
		{"single", policy.Denials{named("limit", policy.Deny("TOO_BIG", "too big", "max", 10))},
			`policy: gate "limit" denied: too big (TOO_BIG) [max=10]`},
		{"multiple", policy.Denials{
			named("a", policy.Deny("A", "first")),
			named("b", policy.Deny("B", "second", "n", 2)),
		}, `policy: 2 gates denied: gate "a" denied: first (A); gate "b" denied: second (B) [n=2]`},
		{"three", policy.Denials{
			named("a", policy.Deny("A", "x")), named("b", policy.Deny("B", "y")), named("c", policy.Deny("C", "z")),
		}, `policy: 3 gates denied: gate "a" denied: x (A); gate "b" denied: y (B); gate "c" denied: z (C)`},
	}
	for _, tc := range tests {
		if got := tc.err.Error(); got != tc.want {
			t.Errorf("%s:\n got %s\nwant %s", tc.name, got, tc.want)
		}
	}
}

func TestDenialsFromEvaluateFormat(t *testing.T) {
	rec := &recorder{}
	_, err := policy.NewGateSet(policy.FailFast, rec.denying("a"), rec.denying("b")).Evaluate(limits{}, 1)
	if want := `policy: gate "a" denied: no from a (CODE_a) [gate=a]`; err == nil || err.Error() != want {
		t.Errorf("fail-fast error %v, want %s", err, want)
	}
	_, err = policy.NewGateSet(policy.EvaluateAll, rec.denying("a"), rec.denying("b")).Evaluate(limits{}, 1)
	want := `policy: 2 gates denied: gate "a" denied: no from a (CODE_a) [gate=a]; gate "b" denied: no from b (CODE_b) [gate=b]`
	if err == nil || err.Error() != want {
		t.Errorf("evaluate-all error %v, want %s", err, want)
	}
}

func TestDenialErrorsIsAndAs(t *testing.T) {
	a := named("a", policy.Deny("A", "first"))
	b := named("b", policy.Deny("B", "second"))
	two := policy.Denials{a, b}
	tests := []struct {
		name      string
		err       error
		firstGate string // what errors.As to *Denial finds
		denials   int    // len of what errors.As to Denials finds; -1: none
	}{
		{"denial", a, "a", -1},
		{"denials", two, "a", 2},
		{"single denials", policy.Denials{b}, "b", 1},
		{"wrapped denial", fmt.Errorf("outer: %w", b), "b", -1},
		{"wrapped denials", fmt.Errorf("outer: %w", two), "a", 2},
		{"twice wrapped denials", fmt.Errorf("x: %w", fmt.Errorf("y: %w", two)), "a", 2},
		{"joined", errors.Join(errors.New("other"), two), "a", 2},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			if !errors.Is(tc.err, policy.ErrDenied) {
				t.Errorf("errors.Is(ErrDenied) = false")
			}
			for _, other := range []error{policy.ErrReceiptUsed, policy.ErrInvalidReceipt, policy.ErrBypassUnjustified} {
				if errors.Is(tc.err, other) {
					t.Errorf("errors.Is(%v) = true", other)
				}
			}
			var d *policy.Denial
			if !errors.As(tc.err, &d) || d.Gate != tc.firstGate {
				t.Errorf("errors.As(*Denial) = %v, want gate %q", d, tc.firstGate)
			}
			var ds policy.Denials
			found := errors.As(tc.err, &ds)
			if tc.denials < 0 {
				if found {
					t.Errorf("errors.As(Denials) found %v in a lone denial", ds)
				}
			} else if !found || len(ds) != tc.denials {
				t.Errorf("errors.As(Denials) = %v, %v; want %d denials", ds, found, tc.denials)
			}
		})
	}
	// Every denial is reachable through Unwrap, for callers that walk the tree.
	unwrapped := two.Unwrap()
	if len(unwrapped) != 2 || unwrapped[0] != error(a) || unwrapped[1] != error(b) {
		t.Errorf("Unwrap() = %v", unwrapped)
	}
	for _, err := range []error{errors.New("policy: denied"), policy.ErrReceiptUsed, nil} {
		if errors.Is(err, policy.ErrDenied) {
			t.Errorf("errors.Is(%v, ErrDenied) = true", err)
		}
	}
}
