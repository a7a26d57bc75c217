package policy_test

import (
	"context"
	"errors"
	"maps"
	"slices"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/batpak-go/batpak/policy"
)

func TestReceiptOnlyFromGateSet(t *testing.T) {
	called := 0
	commit := func(int, policy.Audit) error { called++; return nil }
	tests := []struct {
		name string
		r    *policy.Receipt[int]
	}{
		{"zero value", &policy.Receipt[int]{}},
		{"nil", nil},
		{"new", new(policy.Receipt[int])},
	}
	for _, tc := range tests {
		for range 2 { // stays invalid
			if err := tc.r.Commit(commit); !errors.Is(err, policy.ErrInvalidReceipt) {
				t.Errorf("%s: Commit = %v, want ErrInvalidReceipt", tc.name, err)
			}
		}
	}
	if called != 0 {
		t.Errorf("an invalid receipt ran the commit %d times", called)
	}
}

func TestReceiptCommitsOnce(t *testing.T) {
	rec := &recorder{}
	set := policy.NewGateSet(policy.FailFast, rec.passing("a"), rec.passing("b"))
	r, err := set.Evaluate(limits{}, 7)
	if err != nil {
		t.Fatal(err)
	}
	var gotP []int
	var gotA []policy.Audit
	commit := func(p int, a policy.Audit) error {
		gotP, gotA = append(gotP, p), append(gotA, a)
		return nil
	}
	if err := r.Commit(commit); err != nil {
		t.Fatal(err)
	}
	if err := r.Commit(commit); !errors.Is(err, policy.ErrReceiptUsed) {
		t.Errorf("second Commit = %v, want ErrReceiptUsed", err)
	}
	if err := r.Commit(commit); !errors.Is(err, policy.ErrReceiptUsed) {
		t.Errorf("third Commit = %v, want ErrReceiptUsed", err)
	}
	if !slices.Equal(gotP, []int{7}) || len(gotA) != 1 {
		t.Fatalf("commit ran with %v", gotP)
	}
	if !slices.Equal(gotA[0].Gates, []string{"a", "b"}) || gotA[0].Bypass != nil {
		t.Errorf("audit %+v, want the gates passed", gotA[0])
	}
	// A second evaluation issues a new, independent receipt.
	r2, err := set.Evaluate(limits{}, 8)
	if err != nil {
		t.Fatal(err)
	}
	if err := r2.Commit(commit); err != nil {
		t.Errorf("a fresh receipt: %v", err)
	}
}

func TestReceiptFailedCommitStaysUsed(t *testing.T) {
	r, err := policy.NewGateSet[limits, int](policy.FailFast).Evaluate(limits{}, 1)
	if err != nil {
		t.Fatal(err)
	}
	boom := errors.New("disk full")
	if err := r.Commit(func(int, policy.Audit) error { return boom }); err != boom {
		t.Errorf("Commit = %v, want the commit's own error", err)
	}
	ran := false
	if err := r.Commit(func(int, policy.Audit) error { ran = true; return nil }); !errors.Is(err, policy.ErrReceiptUsed) || ran {
		t.Errorf("Commit after a failed commit = %v (ran %v), want ErrReceiptUsed", err, ran)
	}
}

func TestReceiptConcurrentCommit(t *testing.T) {
	for round := range 5 {
		r, err := policy.NewGateSet[limits, int](policy.EvaluateAll).Evaluate(limits{}, round)
		if err != nil {
			t.Fatal(err)
		}
		var commits atomic.Int32
		var ok, used atomic.Int32
		start := make(chan struct{})
		var wg sync.WaitGroup
		for range 50 {
			wg.Go(func() {
				<-start
				err := r.Commit(func(int, policy.Audit) error { commits.Add(1); return nil })
				switch {
				case err == nil:
					ok.Add(1)
				case errors.Is(err, policy.ErrReceiptUsed):
					used.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		if ok.Load() != 1 || used.Load() != 49 || commits.Load() != 1 {
			t.Fatalf("round %d: %d succeeded, %d used, commit ran %d times; want 1, 49, 1", round, ok.Load(), used.Load(), commits.Load())
		}
	}
}

func TestAuditMetadata(t *testing.T) {
	at := time.Date(2026, 3, 4, 5, 6, 7, 8000, time.FixedZone("X", 3*3600))
	tests := []struct {
		name  string
		audit policy.Audit
		want  map[string]string
	}{
		{"empty", policy.Audit{}, map[string]string{}},
		{"gates", policy.Audit{Gates: []string{"a", "b"}}, map[string]string{policy.MetaGates: "[a b]"}},
		{"one gate", policy.Audit{Gates: []string{"only"}}, map[string]string{policy.MetaGates: "[only]"}},
		{"bypass", policy.Audit{Bypass: &policy.Bypass{Reason: "why", Actor: "who", At: at}}, map[string]string{
			policy.MetaBypassReason: "why",
			policy.MetaBypassActor:  "who",
			policy.MetaBypassAt:     "2026-03-04T02:06:07.000008Z",
		}},
		{"bypass wins over gates", policy.Audit{Gates: []string{"a"}, Bypass: &policy.Bypass{Reason: "r", Actor: "a", At: at}}, map[string]string{
			policy.MetaBypassReason: "r",
			policy.MetaBypassActor:  "a",
			policy.MetaBypassAt:     "2026-03-04T02:06:07.000008Z",
		}},
	}
	for _, tc := range tests {
		got := tc.audit.Metadata()
		if got == nil || !maps.Equal(got, tc.want) {
			t.Errorf("%s: Metadata() = %v, want %v", tc.name, got, tc.want)
		}
	}
}

// committed is what a test pipeline's commit function saw.
type committed struct {
	mu       sync.Mutex
	proposal []int
	audits   []policy.Audit
	fail     error
}

func (c *committed) commit(_ context.Context, p int, a policy.Audit) (string, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.fail != nil {
		return "", c.fail
	}
	c.proposal = append(c.proposal, p)
	c.audits = append(c.audits, a)
	return "stored", nil
}

func TestPipelineSubmit(t *testing.T) {
	maxGate := policy.GateFunc("max", func(c limits, p int) *policy.Denial {
		if p > c.Max {
			return policy.Deny("TOO_BIG", "too big")
		}
		return nil
	})
	evenGate := policy.GateFunc("even", func(_ limits, p int) *policy.Denial {
		if p%2 != 0 {
			return policy.Deny("ODD", "odd")
		}
		return nil
	})
	tests := []struct {
		mode   policy.Mode
		p      int
		denied []string
	}{
		{policy.FailFast, 4, nil},
		{policy.EvaluateAll, 4, nil},
		{policy.FailFast, 12, []string{"max"}},
		{policy.FailFast, 3, []string{"even"}},
		{policy.FailFast, 13, []string{"max"}},
		{policy.EvaluateAll, 13, []string{"max", "even"}},
		{policy.EvaluateAll, 3, []string{"even"}},
	}
	for _, tc := range tests {
		c := &committed{}
		pl := policy.NewPipeline(policy.NewGateSet(tc.mode, maxGate, evenGate), c.commit)
		out, err := pl.Submit(context.Background(), limits{Max: 10}, tc.p)
		if tc.denied == nil {
			if err != nil || out != "stored" || !slices.Equal(c.proposal, []int{tc.p}) {
				t.Errorf("Submit(%d) = %q, %v; committed %v", tc.p, out, err, c.proposal)
				continue
			}
			if a := c.audits[0]; a.Bypass != nil || !slices.Equal(a.Gates, []string{"max", "even"}) {
				t.Errorf("audit %+v", a)
			}
			continue
		}
		var ds policy.Denials
		if !errors.As(err, &ds) || !errors.Is(err, policy.ErrDenied) || !slices.Equal(gateNames(ds), tc.denied) {
			t.Errorf("mode %d, Submit(%d) = %v, want denials by %v", tc.mode, tc.p, err, tc.denied)
		}
		if out != "" || len(c.proposal) != 0 {
			t.Errorf("a denied proposal was committed: %q, %v", out, c.proposal)
		}
	}
}

func TestPipelineSubmitCommitError(t *testing.T) {
	boom := errors.New("store down")
	c := &committed{fail: boom}
	pl := policy.NewPipeline(policy.NewGateSet[limits, int](policy.FailFast), c.commit)
	if out, err := pl.Submit(context.Background(), limits{}, 1); err != boom || out != "" {
		t.Errorf("Submit = %q, %v; want the commit error", out, err)
	}
	// Each Submit evaluates anew: a later one commits.
	c.fail = nil
	if out, err := pl.Submit(context.Background(), limits{}, 2); err != nil || out != "stored" {
		t.Errorf("Submit after a failure = %q, %v", out, err)
	}
}

func TestPipelineBypass(t *testing.T) {
	at := time.Date(2026, 1, 2, 3, 4, 5, 600, time.UTC)
	tests := []struct {
		reason, actor string
		ok            bool
	}{
		{"customer refund", "ops:jane", true},
		{"", "ops:jane", false},
		{"customer refund", "", false},
		{"", "", false},
		{"   ", "ops:jane", false},
		{"customer refund", "\t\n", false},
		{" padded ", " x ", true},
	}
	for _, tc := range tests {
		rec := &recorder{}
		c := &committed{}
		pl := policy.NewPipeline(policy.NewGateSet(policy.FailFast, rec.denying("never")), c.commit,
			policy.WithClock(func() time.Time { return at }))
		out, err := pl.Bypass(context.Background(), 99, tc.reason, tc.actor)
		if len(rec.calls) != 0 {
			t.Errorf("bypass ran the gates %v", rec.calls)
		}
		if !tc.ok {
			if !errors.Is(err, policy.ErrBypassUnjustified) || out != "" || len(c.proposal) != 0 {
				t.Errorf("Bypass(%q, %q) = %q, %v, committed %v; want ErrBypassUnjustified", tc.reason, tc.actor, out, err, c.proposal)
			}
			continue
		}
		if err != nil || out != "stored" || !slices.Equal(c.proposal, []int{99}) {
			t.Fatalf("Bypass(%q, %q) = %q, %v; committed %v", tc.reason, tc.actor, out, err, c.proposal)
		}
		a := c.audits[0]
		if len(a.Gates) != 0 || a.Bypass == nil || a.Bypass.Reason != tc.reason || a.Bypass.Actor != tc.actor || !a.Bypass.At.Equal(at) {
			t.Errorf("audit %+v / %+v", a, a.Bypass)
		}
		m := a.Metadata()
		want := map[string]string{
			policy.MetaBypassReason: tc.reason,
			policy.MetaBypassActor:  tc.actor,
			policy.MetaBypassAt:     "2026-01-02T03:04:05.0000006Z",
		}
		if !maps.Equal(m, want) {
			t.Errorf("Metadata() = %v, want %v", m, want)
		}
	}
}

func TestPipelineWithClock(t *testing.T) {
	c := &committed{}
	pl := policy.NewPipeline(policy.NewGateSet[limits, int](policy.FailFast), c.commit)
	// The default clock stamps some time.
	if _, err := pl.Bypass(context.Background(), 1, "r", "a"); err != nil {
		t.Fatal(err)
	}
	if c.audits[0].Bypass.At.IsZero() {
		t.Error("the default clock left the bypass time zero")
	}
	tick := time.Date(2030, 5, 6, 7, 8, 9, 0, time.FixedZone("Y", -7*3600))
	pl = policy.NewPipeline(policy.NewGateSet[limits, int](policy.FailFast), c.commit,
		policy.WithClock(func() time.Time { tick = tick.Add(time.Second); return tick }))
	for i := range 3 {
		if _, err := pl.Bypass(context.Background(), i, "r", "a"); err != nil {
			t.Fatal(err)
		}
	}
	for i, a := range c.audits[1:] {
		want := time.Date(2030, 5, 6, 7, 8, 10+i, 0, time.FixedZone("Y", -7*3600))
		if !a.Bypass.At.Equal(want) {
			t.Errorf("bypass %d at %v, want %v", i, a.Bypass.At, want)
		}
		if got, wantS := a.Metadata()[policy.MetaBypassAt], want.UTC().Format(time.RFC3339Nano); got != wantS {
			t.Errorf("bypass %d: %s = %q, want %q", i, policy.MetaBypassAt, got, wantS)
		}
	}
	if got := c.audits[1].Metadata()[policy.MetaBypassAt]; got != "2030-05-06T14:08:10Z" {
		t.Errorf("bypass time rendered %q, want UTC", got)
	}
}

func TestPipelineBypassCommitError(t *testing.T) {
	boom := errors.New("store down")
	c := &committed{fail: boom}
	pl := policy.NewPipeline(policy.NewGateSet[limits, int](policy.FailFast), c.commit)
	if _, err := pl.Bypass(context.Background(), 1, "r", "a"); err != boom {
		t.Errorf("Bypass = %v, want the commit's error", err)
	}
}
