package bank

import (
	"errors"
	"slices"
	"testing"

	"github.com/batpak-go/batpak/aggregate/aggregatetest"
	"github.com/batpak-go/batpak/policy"
)

// Gate names, as columns of the table below.
const (
	gPositive  = "positive-amount"
	gOverdraft = "no-overdraft"
	gFrozen    = "frozen-account"
	gDaily     = "daily-withdrawal-limit"
	gSelf      = "no-self-transfer"
)

func TestGateNames(t *testing.T) {
	want := []string{gPositive, gOverdraft, gFrozen, gDaily, gSelf}
	if got := Gates().Names(); !slices.Equal(got, want) {
		t.Errorf("Names() = %v, want %v", got, want)
	}
}

// TestGatesTable is a table of proposals x gates: for each proposal, which
// of the four gates deny it. The set evaluates every gate, so each row
// shows every gate's verdict on its own, and rows cover each gate alone,
// pairs, triples and all four.
func TestGatesTable(t *testing.T) {
	const day, other = "2026-11-26", "2026-11-25"
	open := func(balance, limit int64) Account {
		return Account{Owner: "o", Opened: true, Balance: balance, Limit: limit}
	}
	frozen := func(a Account) Account { a.Frozen = true; return a }
	spent := func(a Account, d string, amount int64) Account {
		a.DailyDebits = map[string]int64{d: amount}
		return a
	}
	w := func(amount int64) any { return Withdrawn{Amount: amount, Day: day} }
	send := func(amount int64) any { return TransferSent{TransferID: "t", To: "x", Amount: amount, Day: day} }
	dep := func(amount int64) any { return Deposited{Amount: amount} }
	recv := func(amount int64) any { return TransferReceived{TransferID: "t", From: "x", Amount: amount} }
	pol := Policy{DailyLimit: 1000}

	tests := []struct {
		name   string
		state  Account
		pol    Policy
		events []any
		denied []string
	}{
		// Nothing denies.
		{"deposit", open(0, 0), pol, []any{dep(100)}, nil},
		{"transfer in", open(0, 0), pol, []any{recv(100)}, nil},
		{"withdraw within balance", open(100, 0), pol, []any{w(100)}, nil},
		{"withdraw into the limit exactly", open(100, 50), pol, []any{w(150)}, nil},
		{"send up to the daily limit", open(5000, 0), pol, []any{send(1000)}, nil},
		{"deposit on a frozen account", frozen(open(0, 0)), pol, []any{dep(10)}, nil},
		{"deposit over the daily limit", open(0, 0), pol, []any{dep(5000)}, nil},
		{"deposit on an overdrawn account", open(-500, 100), pol, []any{dep(1)}, nil},
		{"debits of another day", spent(open(5000, 0), other, 1000), pol, []any{w(1000)}, nil},
		{"debit and credit that net out", open(0, 0), pol, []any{w(50), dep(50)}, nil},
		{"no movement", open(0, 0), pol, []any{AccountFrozen{Reason: "r"}}, nil},
		{"a correction is not a movement", frozen(open(0, 0)), Policy{}, []any{BalanceCorrected{Amount: -10_000}}, nil},
		{"a return is not a movement", open(0, 0), pol, []any{TransferReturned{TransferID: "t", Amount: -1}}, nil},
		{"no events", frozen(open(-1, 0)), Policy{}, nil, nil},

		// One gate alone.
		{"zero deposit", open(0, 0), pol, []any{dep(0)}, []string{gPositive}},
		{"negative deposit", open(0, 0), pol, []any{dep(-5)}, []string{gPositive}},
		{"negative transfer in", open(0, 0), pol, []any{recv(-5)}, []string{gPositive}},
		{"zero withdrawal", open(0, 0), pol, []any{w(0)}, []string{gPositive}},
		{"negative withdrawal on a frozen, spent account", spent(frozen(open(0, 0)), day, 1000), pol, []any{w(-10)}, []string{gPositive}},
		{"withdraw beyond the balance", open(100, 0), pol, []any{w(101)}, []string{gOverdraft}},
		{"withdraw one past the limit", open(100, 50), pol, []any{w(151)}, []string{gOverdraft}},
		{"send beyond the balance", open(0, 0), pol, []any{send(1)}, []string{gOverdraft}},
		{"withdraw on an overdrawn account", open(-10, 0), pol, []any{w(1)}, []string{gOverdraft}},
		{"withdraw from a frozen account", frozen(open(100, 0)), pol, []any{w(10)}, []string{gFrozen}},
		{"send from a frozen account", frozen(open(100, 0)), pol, []any{send(10)}, []string{gFrozen}},
		{"withdraw over the daily limit", open(5000, 0), pol, []any{w(1001)}, []string{gDaily}},
		{"withdraw over what is left today", spent(open(5000, 0), day, 900), pol, []any{w(101)}, []string{gDaily}},
		{"two debits over the daily limit together", open(5000, 0), pol, []any{w(600), send(600)}, []string{gDaily}},
		{"zero daily limit", open(100, 0), Policy{}, []any{w(1)}, []string{gDaily}},

		// Combinations.
		{"negative among positive amounts, over the balance", open(0, 0), pol, []any{dep(-1), w(10)}, []string{gPositive, gOverdraft}},
		{"bad amount and frozen", frozen(open(100, 0)), pol, []any{w(10), dep(0)}, []string{gPositive, gFrozen}},
		{"bad amount and daily limit", open(5000, 0), pol, []any{w(2000), dep(-1)}, []string{gPositive, gDaily}},
		{"overdraft and frozen", frozen(open(0, 0)), pol, []any{w(10)}, []string{gOverdraft, gFrozen}},
		{"overdraft and daily limit", open(0, 0), pol, []any{w(1001)}, []string{gOverdraft, gDaily}},
		{"frozen and daily limit", frozen(open(5000, 0)), pol, []any{w(1001)}, []string{gFrozen, gDaily}},
		{"overdraft, frozen and daily limit", frozen(open(0, 0)), pol, []any{send(2000)}, []string{gOverdraft, gFrozen, gDaily}},
		{"bad amount, overdraft and frozen", frozen(open(0, 0)), pol, []any{recv(-1), w(5)}, []string{gPositive, gOverdraft, gFrozen}},
		{"bad amount, overdraft and daily", spent(open(0, 0), day, 999), pol, []any{w(5), dep(0)}, []string{gPositive, gOverdraft, gDaily}},
		{"bad amount, frozen and daily", spent(frozen(open(5000, 0)), day, 999), pol, []any{w(5), dep(0)}, []string{gPositive, gFrozen, gDaily}},
		{"all four", frozen(open(0, 0)), pol, []any{w(-1), w(2000)}, []string{gPositive, gOverdraft, gFrozen, gDaily}},
	}
	set := Gates()
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			st := tc.state
			p := proposal{Coordinate: Stream("x"), Version: 7, State: &st, Command: nil, Events: tc.events}
			receipt, err := set.Evaluate(tc.pol, p)
			if tc.denied == nil {
				if err != nil || receipt == nil {
					t.Fatalf("denied: %v", err)
				}
				if got := receipt.Audit().Gates; !slices.Equal(got, set.Names()) {
					t.Errorf("passed %v", got)
				}
				return
			}
			var ds policy.Denials
			if !errors.As(err, &ds) || receipt != nil {
				t.Fatalf("Evaluate = %v, %v; want denials by %v", receipt, err, tc.denied)
			}
			var got []string
			for _, d := range ds {
				got = append(got, d.Gate)
				if want := map[string]string{gPositive: "AMOUNT_NOT_POSITIVE", gOverdraft: "OVERDRAFT", gFrozen: "ACCOUNT_FROZEN", gDaily: "DAILY_LIMIT"}[d.Gate]; d.Code != want {
					t.Errorf("%s: code %q, want %q", d.Gate, d.Code, want)
				}
			}
			if !slices.Equal(got, tc.denied) {
				t.Errorf("denied by %v, want %v", got, tc.denied)
			}
			if st.Balance != tc.state.Balance || st.Frozen != tc.state.Frozen {
				t.Errorf("a gate changed the state: %+v", st)
			}
		})
	}
}

func TestGateDetails(t *testing.T) {
	st := Account{Opened: true, Balance: 40, Limit: 10, DailyDebits: map[string]int64{"d": 900}}
	p := proposal{State: &st, Events: []any{Withdrawn{Amount: 200, Day: "d"}, Deposited{Amount: -3}}}
	_, err := Gates().Evaluate(Policy{DailyLimit: 1000}, p)
	var ds policy.Denials
	if !errors.As(err, &ds) || len(ds) != 3 {
		t.Fatalf("Evaluate = %v", err)
	}
	want := map[string]map[string]any{
		gPositive:  {"amount": int64(-3)},
		gOverdraft: {"balance": int64(40), "debit": int64(200), "limit": int64(10)},
		gDaily:     {"today": int64(900), "debit": int64(200), "limit": int64(1000)},
	}
	for _, d := range ds {
		for k, v := range want[d.Gate] {
			if got, ok := d.Detail(k); !ok || got != v {
				t.Errorf("%s: Detail(%q) = %v, %v; want %v", d.Gate, k, got, ok, v)
			}
		}
	}
}

// TestGatesThroughRepository runs the bank's gates through the repository:
// a denial appends nothing, and the gates see the state the stream folds
// to (debits of the day accumulate across commands).
func TestGatesThroughRepository(t *testing.T) {
	const today, tomorrow = "2026-11-26", "2026-11-27"
	spec := aggregatetest.NewGated(Registry(), Gates(), Policy{DailyLimit: 300}).On(Stream("a"))
	opened := AccountOpened{Limit: 50}
	funded := []any{opened, Deposited{Amount: 500}}
	given := func(events ...any) []any { return append(slices.Clone(funded), events...) }

	spec.Given(funded...).When(Withdraw{Amount: 200, Day: today}).
		Then(t, Withdrawn{Amount: 200, Day: today, Channel: "app"})
	spec.Given(given(Withdrawn{Amount: 200, Day: today})...).When(Withdraw{Amount: 150, Day: today}).
		ThenDenied(t, gDaily, "DAILY_LIMIT")
	spec.Given(given(Withdrawn{Amount: 200, Day: today})...).When(Withdraw{Amount: 100, Day: today}).
		Then(t, Withdrawn{Amount: 100, Day: today, Channel: "app"})
	spent := given(Withdrawn{Amount: 200, Day: today}, Withdrawn{Amount: 100, Day: today}) // balance 200
	spec.Given(spent...).When(Withdraw{Amount: 1, Day: today}).
		ThenDenied(t, gDaily, "DAILY_LIMIT")
	// The account's limit is 50: the balance may go to -50.
	spec.Given(spent...).When(Withdraw{Amount: 251, Day: tomorrow}).
		ThenDenied(t, gOverdraft, "OVERDRAFT")
	spec.Given(spent...).When(Withdraw{Amount: 250, Day: tomorrow}).
		Then(t, Withdrawn{Amount: 250, Day: tomorrow, Channel: "app"}).
		ThenState(t, Account{Opened: true, Balance: -50, Limit: 50,
			DailyDebits: map[string]int64{today: 300, tomorrow: 250}})
	frozen := given(AccountFrozen{Reason: "audit"})
	spec.Given(frozen...).When(Deposit{Amount: 0}).
		ThenDenied(t, gPositive, "AMOUNT_NOT_POSITIVE")
	spec.Given(frozen...).When(Withdraw{Amount: 1000, Day: "2026-11-28"}).
		ThenDeniedBy(t, gOverdraft, gFrozen, gDaily)
	spec.Given(frozen...).When(Deposit{Amount: 10}).
		Then(t, Deposited{Amount: 10})
	spec.Given(funded...).When(SendTransfer{TransferID: "t-1", To: "a", Amount: 10, Day: today}).
		ThenDenied(t, gSelf, "SELF_TRANSFER")
	spec.Given(funded...).When(SendTransfer{TransferID: "t-1", To: "b", Amount: 10, Day: today}).
		Then(t, TransferSent{TransferID: "t-1", To: "b", Amount: 10, Day: today})
}
