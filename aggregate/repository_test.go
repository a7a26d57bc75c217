package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/policy"
)

func TestExecute(t *testing.T) {
	s := openStore(t)
	r := newGated(t, s)
	ctx := context.Background()

	st, v, err := r.Load(ctx, "acc:1")
	if err != nil || v != 0 || *st != (Account{}) {
		t.Fatalf("Load of a new entity = %+v, %d, %v", st, v, err)
	}

	res := mustExec(t, r, "acc:1", Open{Limit: 50})
	if res.Version != 1 || res.Attempts != 1 || len(res.Receipts) != 1 || res.Receipts[0].Version != 1 || !res.State.Open || res.State.Limit != 50 {
		t.Fatalf("open: %+v state %+v", res, res.State)
	}
	if !slices.Equal(res.Events, []any{Opened{Limit: 50}}) {
		t.Errorf("Events = %v", res.Events)
	}
	res = mustExec(t, r, "acc:1", Deposit{Amount: 100})
	if res.Version != 2 || res.State.Balance != 100 || res.Receipts[0].Version != 2 {
		t.Fatalf("deposit: %+v state %+v", res, res.State)
	}
	res = mustExec(t, r, "acc:1", DepositMany{Amounts: []int64{1, 2, 3}})
	if res.Version != 5 || len(res.Receipts) != 3 || res.State.Balance != 106 {
		t.Fatalf("deposit many: %+v state %+v", res, res.State)
	}
	for i, rc := range res.Receipts {
		if rc.Version != uint64(3+i) {
			t.Errorf("receipt %d version %d", i, rc.Version)
		}
	}
	res = mustExec(t, r, "acc:1", Withdraw{Amount: 150})
	if res.Version != 6 || res.State.Balance != -44 {
		t.Fatalf("withdraw: %+v state %+v", res, res.State)
	}

	// The stored stream holds exactly those events, in the repository's
	// scope, with the audit of the gates that passed.
	recs := records(t, s, "acc:1")
	if len(recs) != 6 || s.StreamVersion(co("acc:1")) != 6 {
		t.Fatalf("%d records, version %d", len(recs), s.StreamVersion(co("acc:1")))
	}
	for i, rec := range recs {
		if rec.Version != uint64(i+1) || rec.Coordinate.Scope != "bank" || rec.Coordinate.Entity != "acc:1" {
			t.Errorf("record %d: %v", i, rec.String())
		}
		if got := rec.Metadata[policy.MetaGates]; got != "[positive overdraft]" {
			t.Errorf("record %d: %s = %q", i, policy.MetaGates, got)
		}
		if _, bypass := rec.Metadata[policy.MetaBypassReason]; bypass {
			t.Errorf("record %d looks bypassed: %v", i, rec.Metadata)
		}
	}
	if got := fold(t, s, "acc:1"); got != *res.State {
		t.Errorf("stored %+v, result %+v", got, *res.State)
	}
	st, v, err = r.Load(ctx, "acc:1")
	if err != nil || v != 6 || *st != *res.State {
		t.Errorf("Load = %+v, %d, %v", st, v, err)
	}
	// Other streams are untouched.
	if _, v, _ := r.Load(ctx, "acc:2"); v != 0 {
		t.Errorf("acc:2 at version %d", v)
	}
}

func TestExecuteWithoutGates(t *testing.T) {
	s := openStore(t)
	r := newPlain(t, s)
	mustExec(t, r, "a", Open{})
	res := mustExec(t, r, "a", Withdraw{Amount: 1 << 40}) // no gate to stop it
	if res.State.Balance != -(1 << 40) {
		t.Errorf("state %+v", res.State)
	}
	for _, rec := range records(t, s, "a") {
		if len(rec.Metadata) != 0 {
			t.Errorf("metadata %v without gates or options", rec.Metadata)
		}
	}
}

func TestExecuteNoEvents(t *testing.T) {
	s := openStore(t)
	r := newGated(t, s)
	// On a missing stream and on an existing one.
	for _, setup := range []bool{false, true} {
		entity := fmt.Sprintf("quiet-%v", setup)
		if setup {
			mustExec(t, r, entity, Open{})
			mustExec(t, r, entity, Deposit{Amount: 5})
		}
		before := s.LastSequence()
		v0 := s.StreamVersion(co(entity))
		res := mustExec(t, r, entity, Nothing{})
		if len(res.Receipts) != 0 || len(res.Events) != 0 || res.Version != v0 || res.Attempts != 1 {
			t.Errorf("%s: %+v", entity, res)
		}
		if s.LastSequence() != before || s.StreamVersion(co(entity)) != v0 {
			t.Errorf("%s: a command without events appended", entity)
		}
		if setup && res.State.Balance != 5 {
			t.Errorf("%s: state %+v", entity, res.State)
		}
	}
}

func TestExecuteBusinessError(t *testing.T) {
	s := openStore(t)
	r := newGated(t, s)
	ctx := context.Background()
	custom := fmt.Errorf("custom rule: %w", errors.ErrUnsupported)
	tests := []struct {
		name string
		cmd  aggregate.Command[Account]
		want error
	}{
		{"deposit before open", Deposit{Amount: 1}, errNotOpen},
		{"custom", Refuse{Err: custom}, custom},
	}
	for _, tc := range tests {
		res, err := r.Execute(ctx, "biz", Policy{}, tc.cmd)
		if err != tc.want || res != nil { // as is, not wrapped
			t.Errorf("%s: Execute = %v, %v; want %v as is", tc.name, res, err, tc.want)
		}
		if errors.Is(err, policy.ErrDenied) {
			t.Errorf("%s: a business error reads as a denial", tc.name)
		}
	}
	mustExec(t, r, "biz", Open{})
	if _, err := r.Execute(ctx, "biz", Policy{}, Open{}); err != errAlreadyOpen {
		t.Errorf("second open: %v", err)
	}
	if v := s.StreamVersion(co("biz")); v != 1 {
		t.Errorf("version %d after refused commands, want 1", v)
	}
}

func TestExecuteDenied(t *testing.T) {
	s := openStore(t)
	r := newGated(t, s)
	ctx := context.Background()
	mustExec(t, r, "d", Open{Limit: 10})
	mustExec(t, r, "d", Deposit{Amount: 20})
	tests := []struct {
		name   string
		cmd    aggregate.Command[Account]
		denied []string
	}{
		{"zero deposit", Deposit{Amount: 0}, []string{"positive"}},
		{"negative deposit", Deposit{Amount: -3}, []string{"positive"}},
		{"overdraft", Withdraw{Amount: 31}, []string{"overdraft"}},
		{"overdraft by debit", Debit{Amount: 100, To: "x"}, []string{"overdraft"}},
		{"one bad amount of many", DepositMany{Amounts: []int64{5, -1, 5}}, []string{"positive"}},
		{"both", Emit{Events: []any{Credited{Amount: -1}, Debited{Amount: 1000}}}, []string{"positive", "overdraft"}},
		{"no events: nothing to judge", DepositMany{Amounts: nil}, nil},
	}
	for _, tc := range tests {
		res, err := r.Execute(ctx, "d", Policy{}, tc.cmd)
		if tc.denied == nil {
			if err != nil {
				t.Errorf("%s: %v", tc.name, err)
			}
			continue
		}
		var ds policy.Denials
		if !errors.As(err, &ds) || !errors.Is(err, policy.ErrDenied) || res != nil {
			t.Errorf("%s: Execute = %v, %v; want policy.Denials", tc.name, res, err)
			continue
		}
		var got []string
		for _, d := range ds {
			got = append(got, d.Gate)
		}
		if !slices.Equal(got, tc.denied) {
			t.Errorf("%s: denied by %v, want %v", tc.name, got, tc.denied)
		}
	}
	if v := s.StreamVersion(co("d")); v != 2 {
		t.Fatalf("denials appended: version %d, want 2", v)
	}
	// The limit is exactly reachable.
	if res := mustExec(t, r, "d", Withdraw{Amount: 30}); res.State.Balance != -10 {
		t.Errorf("state %+v", res.State)
	}
}

func TestBypass(t *testing.T) {
	s := openStore(t)
	r := newGated(t, s)
	ctx := context.Background()
	mustExec(t, r, "b", Open{Limit: 0})

	// Withdrawing what is not there is denied, and allowed as a bypass.
	if _, err := r.Execute(ctx, "b", Policy{}, DepositMany{Amounts: []int64{-5, -6}}); !errors.Is(err, policy.ErrDenied) {
		t.Fatalf("Execute = %v, want a denial", err)
	}
	res, err := r.Bypass(ctx, "b", DepositMany{Amounts: []int64{-5, -6, -7}}, "reverse fraudulent deposits", "ops:jane")
	if err != nil {
		t.Fatal(err)
	}
	if res.Version != 4 || res.State.Balance != -18 || len(res.Receipts) != 3 {
		t.Fatalf("bypass: %+v state %+v", res, res.State)
	}
	recs := records(t, s, "b")
	if len(recs) != 4 {
		t.Fatalf("%d records", len(recs))
	}
	for _, rec := range recs[1:] {
		m := rec.Metadata
		if m[policy.MetaBypassReason] != "reverse fraudulent deposits" || m[policy.MetaBypassActor] != "ops:jane" {
			t.Errorf("record v%d metadata %v", rec.Version, m)
		}
		if at, err := time.Parse(time.RFC3339Nano, m[policy.MetaBypassAt]); err != nil || at.IsZero() {
			t.Errorf("record v%d: bypass time %q: %v", rec.Version, m[policy.MetaBypassAt], err)
		}
		if _, ok := m[policy.MetaGates]; ok {
			t.Errorf("record v%d: a bypass records gates: %v", rec.Version, m)
		}
	}
	if _, ok := recs[0].Metadata[policy.MetaBypassReason]; ok {
		t.Errorf("the gated open looks bypassed: %v", recs[0].Metadata)
	}

	// A repository without gates bypasses too.
	plain := newPlain(t, s)
	if _, err := plain.Bypass(ctx, "b", Deposit{Amount: 1}, "r", "a"); err != nil {
		t.Fatal(err)
	}
	if m := records(t, s, "b")[4].Metadata; m[policy.MetaBypassReason] != "r" || m[policy.MetaBypassActor] != "a" {
		t.Errorf("metadata %v", m)
	}
}

func TestBypassNeedsReasonAndActor(t *testing.T) {
	s := openStore(t)
	r := newGated(t, s)
	ctx := context.Background()
	mustExec(t, r, "b", Open{})
	tests := []struct {
		reason, actor string
		cmd           aggregate.Command[Account]
	}{
		{"", "ops", Deposit{Amount: 1}},
		{"why", "", Deposit{Amount: 1}},
		{"", "", Deposit{Amount: 1}},
		{" \t", "ops", Deposit{Amount: 1}},
		{"why", "  ", Deposit{Amount: 1}},
		{"", "", Nothing{}},                      // even when nothing would be written
		{"", "ops", Refuse{Err: errAlreadyOpen}}, // checked before the command runs
		{"why", "", Withdraw{Amount: 1_000_000}}, // and before the gates would be skipped
	}
	for _, tc := range tests {
		res, err := r.Bypass(ctx, "b", tc.cmd, tc.reason, tc.actor)
		if !errors.Is(err, policy.ErrBypassUnjustified) || res != nil {
			t.Errorf("Bypass(%T, %q, %q) = %v, %v; want ErrBypassUnjustified", tc.cmd, tc.reason, tc.actor, res, err)
		}
	}
	if v := s.StreamVersion(co("b")); v != 1 {
		t.Errorf("unjustified bypasses appended: version %d", v)
	}
}

func TestRetryOnConflict(t *testing.T) {
	s := openStore(t)
	rs := &racingStore{Store: s}
	r := newGated(t, rs)
	mustExec(t, r, "c", Open{Limit: 0})
	mustExec(t, r, "c", Deposit{Amount: 100})
	rs.arm(1, nil)

	// A competing deposit of 1000 lands between the load and the save: the
	// save conflicts, and the second cycle loads, handles and saves anew.
	res := mustExec(t, r, "c", Withdraw{Amount: 60})
	if res.Attempts != 2 || rs.saves() != 2 {
		t.Errorf("Attempts = %d, saves %d; want 2", res.Attempts, rs.saves())
	}
	want := Account{Open: true, Balance: 1040, Deposits: 1100, Withdrawals: 60, Events: 4}
	if *res.State != want || res.Version != 4 {
		t.Errorf("result %+v v%d, want %+v v4", *res.State, res.Version, want)
	}
	if got := fold(t, s, "c"); got != want {
		t.Errorf("stored %+v, want %+v", got, want)
	}
	if len(res.Receipts) != 1 || res.Receipts[0].Version != 4 || s.StreamVersion(co("c")) != 4 {
		t.Errorf("receipts %+v, stream version %d", res.Receipts, s.StreamVersion(co("c")))
	}
	if st, v, err := r.Load(context.Background(), "c"); err != nil || v != 4 || *st != want {
		t.Errorf("Load = %+v v%d %v", st, v, err)
	}
}

func TestRetryGatesJudgeFreshState(t *testing.T) {
	// The first cycle's gates allow the withdrawal; a competing withdrawal
	// lands before the save; the retry's gates see the new balance and deny.
	s := openStore(t)
	rs := &racingStore{Store: s}
	r := newGated(t, rs)
	mustExec(t, r, "c", Open{Limit: 10})
	mustExec(t, r, "c", Deposit{Amount: 100})
	rs.arm(1, Withdrawn{Amount: 80})
	res, err := r.Execute(context.Background(), "c", Policy{}, Withdraw{Amount: 50})
	var ds policy.Denials
	if !errors.As(err, &ds) || len(ds) != 1 || ds[0].Gate != "overdraft" || res != nil {
		t.Fatalf("Execute = %v, %v; want the overdraft denial of the second cycle", res, err)
	}
	if b, _ := ds[0].Detail("balance"); b != int64(20) {
		t.Errorf("the gate judged balance %v, want the fresh 20", b)
	}
	if got := fold(t, s, "c"); got.Balance != 20 || got.Events != 3 {
		t.Errorf("stored %+v", got)
	}
}

func TestTooManyConflicts(t *testing.T) {
	for _, maxRetries := range []int{1, 3} {
		s := openStore(t)
		rs := &racingStore{Store: s}
		r := newGated(t, rs, aggregate.WithMaxRetries(maxRetries))
		mustExec(t, r, "c", Open{})
		rs.arm(1<<30, nil)
		res, err := r.Execute(context.Background(), "c", Policy{}, Deposit{Amount: 1})
		if res != nil || !errors.Is(err, aggregate.ErrTooManyConflicts) || !errors.Is(err, batpak.ErrVersionConflict) {
			t.Fatalf("max %d: Execute = %v, %v; want ErrTooManyConflicts wrapping ErrVersionConflict", maxRetries, res, err)
		}
		var vc *batpak.VersionConflictError
		if !errors.As(err, &vc) || vc.Stream != co("c") {
			t.Errorf("errors.As VersionConflictError: %v", err)
		}
		if !strings.Contains(err.Error(), fmt.Sprintf("%d attempts", maxRetries)) {
			t.Errorf("error %q does not say how many attempts", err)
		}
		if attempts := rs.saves(); attempts != maxRetries {
			t.Errorf("max %d: %d save attempts", maxRetries, attempts)
		}
		// Only the competing deposits were stored.
		got := fold(t, s, "c")
		if got.Deposits != int64(1000*maxRetries) || got.Events != 1+maxRetries {
			t.Errorf("max %d: stored %+v", maxRetries, got)
		}
	}
}

func TestExecuteContextCancelled(t *testing.T) {
	s := openStore(t)
	r := newPlain(t, s)
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := r.Execute(ctx, "x", Open{}); !errors.Is(err, context.Canceled) {
		t.Errorf("Execute = %v, want context.Canceled", err)
	}
	if s.StreamVersion(co("x")) != 0 {
		t.Error("a cancelled Execute appended")
	}
}

func TestExecOptions(t *testing.T) {
	s := openStore(t)
	r := newGated(t, s)
	ctx := context.Background()
	cause := mustExec(t, r, "src", Open{}).Receipts[0]
	causeRec, err := s.Get(ctx, cause.EventID)
	if err != nil {
		t.Fatal(err)
	}
	group := uuid.New()

	t.Run("CausedBy", func(t *testing.T) {
		res := mustExec(t, r, "dst", Open{}, aggregate.CausedBy(cause.EventID))
		rec, err := s.Get(ctx, res.Receipts[0].EventID)
		if err != nil {
			t.Fatal(err)
		}
		if rec.CausationID != cause.EventID || rec.CorrelationID != causeRec.CorrelationID {
			t.Errorf("causation %v correlation %v; want %v and the cause's %v", rec.CausationID, rec.CorrelationID, cause.EventID, causeRec.CorrelationID)
		}
	})
	t.Run("CorrelatedWith", func(t *testing.T) {
		res := mustExec(t, r, "dst", DepositMany{Amounts: []int64{1, 2}}, aggregate.CorrelatedWith(group))
		for _, rc := range res.Receipts {
			rec, err := s.Get(ctx, rc.EventID)
			if err != nil {
				t.Fatal(err)
			}
			if rec.CorrelationID != group || rec.CausationID != uuid.Nil {
				t.Errorf("v%d: correlation %v causation %v", rec.Version, rec.CorrelationID, rec.CausationID)
			}
		}
	})
	t.Run("both", func(t *testing.T) {
		res := mustExec(t, r, "dst", Deposit{Amount: 3}, aggregate.CausedBy(cause.EventID), aggregate.CorrelatedWith(group))
		rec, _ := s.Get(ctx, res.Receipts[0].EventID)
		if rec.CausationID != cause.EventID || rec.CorrelationID != group {
			t.Errorf("causation %v correlation %v", rec.CausationID, rec.CorrelationID)
		}
		if !slices.Contains(s.CausedBy(cause.EventID), rec.Sequence) {
			t.Errorf("the store's causation index misses %d", rec.Sequence)
		}
	})
	t.Run("WithMetadata", func(t *testing.T) {
		res := mustExec(t, r, "dst", DepositMany{Amounts: []int64{4, 5}}, aggregate.WithMetadata(map[string]string{"trace": "t-1", "user": "u"}))
		for _, rc := range res.Receipts {
			rec, _ := s.Get(ctx, rc.EventID)
			if rec.Metadata["trace"] != "t-1" || rec.Metadata["user"] != "u" || rec.Metadata[policy.MetaGates] != "[positive overdraft]" {
				t.Errorf("v%d metadata %v", rec.Version, rec.Metadata)
			}
		}
	})
	t.Run("WithMetadata cannot forge the audit", func(t *testing.T) {
		forged := map[string]string{policy.MetaBypassReason: "forged", policy.MetaBypassActor: "mallory", policy.MetaGates: "[]", "note": "n"}
		res, err := r.Bypass(ctx, "dst", Deposit{Amount: 6}, "real reason", "ops:jane", aggregate.WithMetadata(forged))
		if err != nil {
			t.Fatal(err)
		}
		rec, _ := s.Get(ctx, res.Receipts[0].EventID)
		if rec.Metadata[policy.MetaBypassReason] != "real reason" || rec.Metadata[policy.MetaBypassActor] != "ops:jane" || rec.Metadata["note"] != "n" {
			t.Errorf("metadata %v: the caller's metadata replaced the bypass record", rec.Metadata)
		}
		res = mustExec(t, r, "dst", Deposit{Amount: 7}, aggregate.WithMetadata(forged))
		rec, _ = s.Get(ctx, res.Receipts[0].EventID)
		if rec.Metadata[policy.MetaGates] != "[positive overdraft]" || rec.Metadata["note"] != "n" {
			t.Errorf("metadata %v: the caller's metadata replaced the gates passed", rec.Metadata)
		}
		if _, ok := rec.Metadata[policy.MetaBypassReason]; ok {
			t.Errorf("metadata %v: a gated command was recorded as a bypass", rec.Metadata)
		}
	})
	t.Run("IdempotencyKey", func(t *testing.T) {
		first := mustExec(t, r, "idem", Open{Limit: 5}, aggregate.IdempotencyKey("open-idem"))
		dep := mustExec(t, r, "idem", DepositMany{Amounts: []int64{10, 20}}, aggregate.IdempotencyKey("dep-1"))
		again := mustExec(t, r, "idem", DepositMany{Amounts: []int64{10, 20}}, aggregate.IdempotencyKey("dep-1"))
		if !slices.Equal(again.Receipts, dep.Receipts) {
			t.Errorf("replay receipts %+v, want %+v", again.Receipts, dep.Receipts)
		}
		if s.StreamVersion(co("idem")) != 3 {
			t.Errorf("replay appended: version %d", s.StreamVersion(co("idem")))
		}
		want := Account{Open: true, Limit: 5, Balance: 30, Deposits: 30, Events: 3}
		if *again.State != want || again.Version != 3 {
			t.Errorf("replay result %+v v%d, want %+v v3", *again.State, again.Version, want)
		}
		// A replay after other writes returns the original receipts too,
		// and the state the stream holds.
		mustExec(t, r, "idem", Deposit{Amount: 1})
		late := mustExec(t, r, "idem", DepositMany{Amounts: []int64{10, 20}}, aggregate.IdempotencyKey("dep-1"))
		if !slices.Equal(late.Receipts, dep.Receipts) || s.StreamVersion(co("idem")) != 4 {
			t.Errorf("late replay receipts %+v, version %d", late.Receipts, s.StreamVersion(co("idem")))
		}
		want.Balance, want.Deposits, want.Events = 31, 31, 4
		if *late.State != want {
			t.Errorf("late replay state %+v, want %+v", *late.State, want)
		}
		// The key is consulted when saving, after the command ran: a command
		// its own effect refuses (a second Open) fails before the replay.
		if _, err := r.Execute(ctx, "idem", Policy{}, Open{Limit: 5}, aggregate.IdempotencyKey("open-idem")); err != errAlreadyOpen {
			t.Errorf("open replay: %v", err)
		}
		// The same key on another stream returns the original receipts.
		other := mustExec(t, r, "idem-other", Open{Limit: 5}, aggregate.IdempotencyKey("open-idem"))
		if !slices.Equal(other.Receipts, first.Receipts) || s.StreamVersion(co("idem-other")) != 0 {
			t.Errorf("replay on another stream: receipts %+v, version %d", other.Receipts, s.StreamVersion(co("idem-other")))
		}
		if got := fold(t, s, "idem"); got != want {
			t.Errorf("stored %+v, want %+v", got, want)
		}
	})
}

// TestIdempotentReplayKeepsSnapshotsRight checks that a replayed command
// does not fold its events a second time into a snapshot.
func TestIdempotentReplayKeepsSnapshotsRight(t *testing.T) {
	s := openStore(t)
	snaps := aggregate.NewMemorySnapshots()
	r := newGated(t, s, aggregate.WithSnapshots(snaps, 2))
	mustExec(t, r, "k", Open{})                                              // v1
	mustExec(t, r, "k", Deposit{Amount: 10}, aggregate.IdempotencyKey("k1")) // v2: snapshot
	mustExec(t, r, "k", Deposit{Amount: 1})                                  // v3
	mustExec(t, r, "k", Deposit{Amount: 1})                                  // v4: snapshot
	mustExec(t, r, "k", Deposit{Amount: 10}, aggregate.IdempotencyKey("k1")) // replay
	want := fold(t, s, "k")
	if want.Balance != 12 || want.Events != 4 {
		t.Fatalf("stored %+v", want)
	}
	st, v, err := r.Load(context.Background(), "k")
	if err != nil || v != 4 || *st != want {
		t.Errorf("Load = %+v v%d %v, want %+v v4", st, v, err, want)
	}
	if res := mustExec(t, r, "k", Deposit{Amount: 100}); res.State.Balance != 112 {
		t.Errorf("after the replay: %+v", res.State)
	}
	if got := fold(t, s, "k"); got.Balance != 112 {
		t.Errorf("stored %+v", got)
	}
}
