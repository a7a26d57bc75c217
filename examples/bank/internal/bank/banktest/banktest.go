// Package banktest checks the bank example's scenario on any store: the
// embedded store, JetStream and the in-memory store run it unchanged and
// must all end the same way.
package banktest

import (
	"context"
	"io"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/examples/bank/internal/bank"
)

// Store is a bank store that can verify a stream's hash chain, as every
// backend's can.
type Store interface {
	bank.Store
	VerifyChain(ctx context.Context, coord batpak.Coordinate) error
}

// Day is the day the checked scenario runs on.
var Day = time.Date(2026, 11, 26, 9, 0, 0, 0, time.UTC)

// Events is how many events the scenario appends.
const Events = 18

// CheckScenario runs the scenario on an empty store, as the example
// commands do, and checks its report, its read models and every account's
// hash chain. Then it runs again on the same store and checks that the
// second run appended nothing and reports the same balances.
func CheckScenario(t testing.TB, ctx context.Context, store Store) {
	t.Helper()
	now := func() time.Time { return Day }
	r, err := bank.Run(ctx, store, aggregate.NewMemorySnapshots(), now, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if !r.Ran {
		t.Fatal("the scenario did not run on an empty store")
	}
	checkLog(t, r)
	rm := r.ReadModels
	if len(rm.LargeTransfers) != 1 || !strings.Contains(rm.LargeTransfers[0], "300 from alice to carol") {
		t.Errorf("large transfers %q", rm.LargeTransfers)
	}
	if len(rm.Statement) != 5 || !strings.HasSuffix(rm.Statement[4], "=    500") {
		t.Errorf("statement %q", rm.Statement)
	}
	wantGates := map[string]string{
		"bob deposit -50":    "positive-amount",
		"bob withdraw 600":   "no-overdraft",
		"alice withdraw 900": "daily-withdrawal-limit",
		"bob withdraw 10":    "frozen-account",
	}
	if len(r.Denials) != len(wantGates) {
		t.Fatalf("denials %+v", r.Denials)
	}
	for _, d := range r.Denials {
		if g := wantGates[d.Account+" "+d.Command]; g != d.Denial.Gate {
			t.Errorf("%s %s denied by %q, want %q", d.Account, d.Command, d.Denial.Gate, g)
		}
	}
	if n := store.LastSequence(); n != Events {
		t.Errorf("%d events after the scenario, want %d", n, Events)
	}
	// Every stream's hash chain verifies.
	for _, id := range bank.Accounts {
		if err := store.VerifyChain(ctx, bank.Stream(id)); err != nil {
			t.Error(err)
		}
	}

	// A second run finds the accounts, appends nothing and shows the same.
	again, err := bank.Run(ctx, store, aggregate.NewMemorySnapshots(), now, io.Discard)
	if err != nil {
		t.Fatal(err)
	}
	if again.Ran || len(again.Denials) != 0 {
		t.Errorf("second run: Ran %v, denials %+v", again.Ran, again.Denials)
	}
	checkLog(t, again)
	if n := store.LastSequence(); n != Events {
		t.Errorf("%d events after a second run, want %d", n, Events)
	}
	if strings.Join(again.Chains, "\n") != strings.Join(r.Chains, "\n") {
		t.Errorf("second run's chains\n%s\ndiffer from the first's\n%s", strings.Join(again.Chains, "\n"), strings.Join(r.Chains, "\n"))
	}
}

// checkLog checks what a report reads from the log: balances, read
// models' balances, the bypass and the transfers' chains.
func checkLog(t testing.TB, r *bank.Report) {
	t.Helper()
	// dave's owner was forgotten: the name is erased, the balance history
	// (a transfer in, returned) is whole.
	want := []bank.Balance{
		{Account: "alice", Owner: "Alice", Balance: 500, State: "open"},
		{Account: "bob", Owner: "Bob", Balance: 525, State: "frozen"},
		{Account: "carol", Owner: "Carol", Balance: 300, State: "open"},
		{Account: "dave", Owner: "(forgotten)", Balance: 0, State: "closed"},
	}
	if len(r.Balances) != len(want) {
		t.Fatalf("balances %v", r.Balances)
	}
	for i, b := range want {
		if r.Balances[i] != b {
			t.Errorf("balance %d = %+v, want %+v", i, r.Balances[i], b)
		}
		if got := r.ReadModels.Balances[b.Account]; got != b.Balance {
			t.Errorf("read model balance of %s = %d, want %d", b.Account, got, b.Balance)
		}
	}
	// Release 1's withdrawal reads through the upcaster, as from a branch.
	if rm := r.ReadModels; rm != nil && !slices.ContainsFunc(rm.Statement, func(l string) bool { return strings.Contains(l, "Withdrawn (branch)     -200") }) {
		t.Errorf("alice's statement lacks release 1's withdrawal: %q", rm.Statement)
	}
	if len(r.Bypass) != 1 || r.Bypass[0].Actor != "ops:jane" || !strings.Contains(r.Bypass[0].Reason, "charged twice") {
		t.Errorf("bypasses %+v", r.Bypass)
	}
	if len(r.Chains) != 2 || !strings.Contains(r.Chains[0], "TransferReceived") ||
		!strings.Contains(r.Chains[1], "TransferReturned") || !strings.Contains(r.Chains[1], "(returned: account is closed)") {
		t.Errorf("chains %q", r.Chains)
	}
}
