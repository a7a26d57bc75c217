package aggregate_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"pgregory.net/rapid"

	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/policy"
)

// checkInvariants fails rt when a state breaks the account's rules.
func checkInvariants(rt *rapid.T, who string, a *Account) {
	rt.Helper()
	if a.Balance != a.Deposits-a.Withdrawals-a.Out+a.In {
		rt.Fatalf("%s: balance %d != deposits %d - withdrawals %d - out %d + in %d", who, a.Balance, a.Deposits, a.Withdrawals, a.Out, a.In)
	}
	if a.Balance < -a.Limit {
		rt.Fatalf("%s: balance %d below the limit -%d", who, a.Balance, a.Limit)
	}
}

// expectDenial returns the gates that should deny moving amount out of
// (debit) or into an account in state a.
func expectDenial(a *Account, amount int64, debit bool) []string {
	var out []string
	if amount <= 0 {
		out = append(out, "positive")
	}
	if debit && amount > 0 && a.Balance-amount < -a.Limit {
		out = append(out, "overdraft")
	}
	return out
}

func deniedBy(err error) []string {
	var ds policy.Denials
	if !errors.As(err, &ds) {
		return nil
	}
	var out []string
	for _, d := range ds {
		out = append(out, d.Gate)
	}
	return out
}

// TestPropertyInvariants runs random deposits, withdrawals and transfers
// (a debit on one account, then a credit on the other) between two
// accounts through the gates, against a model, and checks that no
// sequence breaks the invariants.
func TestPropertyInvariants(t *testing.T) {
	s := openStore(t)
	ctx := context.Background()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		r := newGated(rt, s)
		ids := []string{fmt.Sprintf("inv%d-a", run), fmt.Sprintf("inv%d-b", run)}
		model := map[string]*Account{}
		for _, id := range ids {
			limit := rapid.Int64Range(0, 100).Draw(rt, "limit")
			res, err := r.Execute(ctx, id, Policy{}, Open{Limit: limit})
			if err != nil {
				rt.Fatal(err)
			}
			model[id] = &Account{Open: true, Limit: limit, Events: 1}
			if *res.State != *model[id] {
				rt.Fatalf("opened %+v", *res.State)
			}
		}
		var totalDeposits, totalWithdrawals int64
		steps := rapid.IntRange(5, 50).Draw(rt, "steps")
		for range steps {
			op := rapid.SampledFrom([]string{"deposit", "withdraw", "transfer"}).Draw(rt, "op")
			from := rapid.IntRange(0, 1).Draw(rt, "account")
			who, other := ids[from], ids[1-from]
			amount := rapid.Int64Range(-5, 150).Draw(rt, "amount")
			m := model[who]
			var cmd aggregate.Command[Account]
			switch op {
			case "deposit":
				cmd = Deposit{Amount: amount}
			case "withdraw":
				cmd = Withdraw{Amount: amount}
			case "transfer":
				cmd = Debit{Amount: amount, To: other}
			}
			want := expectDenial(m, amount, op != "deposit")
			res, err := r.Execute(ctx, who, Policy{}, cmd)
			if got := deniedBy(err); !slices.Equal(got, want) {
				rt.Fatalf("%s %d on %+v: denied by %v (%v), want %v", op, amount, *m, got, err, want)
			}
			if want != nil {
				if !errors.Is(err, policy.ErrDenied) || res != nil {
					rt.Fatalf("denial %v, %v", res, err)
				}
				continue
			}
			if err != nil {
				rt.Fatal(err)
			}
			m.Events++
			switch op {
			case "deposit":
				m.Balance += amount
				m.Deposits += amount
				totalDeposits += amount
			case "withdraw":
				m.Balance -= amount
				m.Withdrawals += amount
				totalWithdrawals += amount
			case "transfer":
				m.Balance -= amount
				m.Out += amount
			}
			if *res.State != *m {
				rt.Fatalf("%s %d: state %+v, model %+v", op, amount, *res.State, *m)
			}
			checkInvariants(rt, who, res.State)
			if op == "transfer" {
				in, err := r.Execute(ctx, other, Policy{}, Credit{Amount: amount, From: who})
				if err != nil {
					rt.Fatalf("credit of a transfer: %v", err)
				}
				o := model[other]
				o.Events++
				o.Balance += amount
				o.In += amount
				if *in.State != *o {
					rt.Fatalf("credit: state %+v, model %+v", *in.State, *o)
				}
				checkInvariants(rt, other, in.State)
			}
		}
		// The stored streams agree with the model and the invariants; money
		// only enters by deposits and leaves by withdrawals.
		var balances, out, in int64
		for _, id := range ids {
			stored := fold(rt, s, id)
			if stored != *model[id] {
				rt.Fatalf("%s: stored %+v, model %+v", id, stored, *model[id])
			}
			checkInvariants(rt, id, &stored)
			loaded, v, err := r.Load(ctx, id)
			if err != nil || *loaded != stored || v != uint64(stored.Events) {
				rt.Fatalf("%s: Load %+v v%d %v", id, loaded, v, err)
			}
			balances += stored.Balance
			out += stored.Out
			in += stored.In
		}
		if out != in || balances != totalDeposits-totalWithdrawals {
			rt.Fatalf("balances %d, deposits %d, withdrawals %d, out %d, in %d", balances, totalDeposits, totalWithdrawals, out, in)
		}
	})
}

// TestPropertyReloadMatchesFold runs random command sequences with a
// random snapshot interval and checks that loading, with and without
// snapshots, gives the state of folding the emitted events in memory.
func TestPropertyReloadMatchesFold(t *testing.T) {
	s := openStore(t)
	base := t.TempDir()
	ctx := context.Background()
	run := 0
	rapid.Check(t, func(rt *rapid.T) {
		run++
		entity := fmt.Sprintf("reload%d", run)
		every := rapid.IntRange(1, 10).Draw(rt, "every")
		var snaps aggregate.SnapshotStore = aggregate.NewMemorySnapshots()
		if rapid.Bool().Draw(rt, "file") {
			fs, err := aggregate.NewFileSnapshots(filepath.Join(base, entity))
			if err != nil {
				rt.Fatal(err)
			}
			snaps = fs
		}
		r := newGated(rt, s, aggregate.WithSnapshots(snaps, every))
		var mem Account // the in-memory fold of every emitted event
		var version uint64
		apply := func(res *aggregate.Result[Account]) {
			for _, ev := range res.Events {
				mem.Apply(ev)
			}
			version += uint64(len(res.Receipts))
			if res.Version != version || *res.State != mem {
				rt.Fatalf("result %+v v%d, fold %+v v%d", *res.State, res.Version, mem, version)
			}
		}
		res, err := r.Execute(ctx, entity, Policy{}, Open{Limit: rapid.Int64Range(0, 50).Draw(rt, "limit")})
		if err != nil {
			rt.Fatal(err)
		}
		apply(res)
		check := func(what string, r loader) {
			rt.Helper()
			st, v, err := r.Load(ctx, entity)
			if err != nil || v != version || *st != mem {
				rt.Fatalf("%s: Load %+v v%d %v; fold %+v v%d", what, st, v, err, mem, version)
			}
		}
		steps := rapid.IntRange(0, 50).Draw(rt, "steps")
		for range steps {
			var cmd aggregate.Command[Account]
			switch rapid.IntRange(0, 5).Draw(rt, "cmd") {
			case 0:
				cmd = Deposit{Amount: rapid.Int64Range(-2, 100).Draw(rt, "amount")}
			case 1:
				cmd = Withdraw{Amount: rapid.Int64Range(-2, 100).Draw(rt, "amount")}
			case 2:
				cmd = Debit{Amount: rapid.Int64Range(1, 100).Draw(rt, "amount"), To: "x"}
			case 3:
				cmd = Credit{Amount: rapid.Int64Range(1, 100).Draw(rt, "amount"), From: "y"}
			case 4:
				cmd = DepositMany{Amounts: rapid.SliceOfN(rapid.Int64Range(1, 9), 0, 12).Draw(rt, "amounts")}
			case 5:
				cmd = Nothing{}
			}
			res, err := r.Execute(ctx, entity, Policy{}, cmd)
			switch {
			case errors.Is(err, policy.ErrDenied):
			case err != nil:
				rt.Fatal(err)
			default:
				apply(res)
			}
			if rapid.IntRange(0, 4).Draw(rt, "reload") == 0 {
				check("midway", r)
			}
		}
		check("with snapshots", r)
		check("without snapshots", newPlain(rt, s))
		check("a new repository on the same snapshots", newPlain(rt, s, aggregate.WithSnapshots(snaps, every)))
		check("another interval", newPlain(rt, s, aggregate.WithSnapshots(aggregate.NewMemorySnapshots(), rapid.IntRange(1, 10).Draw(rt, "other"))))
		if stored := fold(rt, s, entity); stored != mem {
			rt.Fatalf("stored %+v, fold %+v", stored, mem)
		}
		if snap, ok, err := snaps.Load(ctx, co(entity)); err != nil || (ok && (snap.Version > version || snap.Version == 0)) {
			rt.Fatalf("snapshot %+v %v %v at stream version %d", snap, ok, err, version)
		} else if ok != (version >= uint64(every)) {
			rt.Fatalf("snapshot present %v at version %d, every %d", ok, version, every)
		}
		if fs, ok := snaps.(*aggregate.FileSnapshots); ok && fs != nil {
			_ = os.RemoveAll(filepath.Join(base, entity))
		}
	})
}
