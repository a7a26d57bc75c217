package aggregate_test

import (
	"context"
	"errors"
	"slices"
	"testing"

	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/policy"
)

// ptrDeposit is a command with a pointer receiver.
type ptrDeposit struct{ Amount int64 }

func (c *ptrDeposit) Handle(a *Account) ([]any, error) { return one(a, Deposited{Amount: c.Amount}) }

// TestCommandGate: a gate typed on one command type judges that type (and
// pointers to it) with the command typed, and passes every other command
// instead of panicking on a type assertion. Nothing here names a type
// argument: they infer from the gates' functions.
func TestCommandGate(t *testing.T) {
	var judged []string
	maxDeposit := aggregate.CommandGate("max-deposit", func(pc Policy, d Deposit, p aggregate.Proposal[Account]) *policy.Denial {
		judged = append(judged, "Deposit")
		if d.Amount > 100 {
			return policy.Deny("TOO_MUCH", "deposit above 100", "amount", d.Amount, "balance", p.State.Balance)
		}
		return nil
	})
	ptrGate := aggregate.CommandGate("ptr", func(_ Policy, d ptrDeposit, _ aggregate.Proposal[Account]) *policy.Denial {
		judged = append(judged, "ptrDeposit")
		if d.Amount < 0 {
			return policy.Deny("NEGATIVE", "negative")
		}
		return nil
	})
	s := openStore(t)
	r, err := aggregate.NewGatedRepository(s, registry(), scope, policy.NewGateSet(policy.EvaluateAll, maxDeposit, ptrGate))
	if err != nil {
		t.Fatal(err)
	}
	ctx := context.Background()
	for _, tc := range []struct {
		cmd    aggregate.Command[Account]
		judged []string
		denied string
	}{
		{Open{}, nil, ""},
		{Deposit{Amount: 50}, []string{"Deposit"}, ""},
		{Withdraw{Amount: 10}, nil, ""},
		{Deposit{Amount: 500}, []string{"Deposit"}, "max-deposit"},
		{&Deposit{Amount: 500}, []string{"Deposit"}, "max-deposit"},
		{&ptrDeposit{Amount: 5}, []string{"ptrDeposit"}, ""},
		{&ptrDeposit{Amount: -5}, []string{"ptrDeposit"}, "ptr"},
		{DepositMany{Amounts: []int64{500}}, nil, ""}, // another command type: the gates pass it
	} {
		judged = nil
		_, err := r.Execute(ctx, "g", Policy{}, tc.cmd)
		var ds policy.Denials
		switch {
		case tc.denied == "" && err != nil:
			t.Errorf("%T%+v: %v", tc.cmd, tc.cmd, err)
		case tc.denied != "" && (!errors.As(err, &ds) || ds[0].Gate != tc.denied):
			t.Errorf("%T%+v: %v, want a denial by %s", tc.cmd, tc.cmd, err, tc.denied)
		}
		if !slices.Equal(judged, tc.judged) {
			t.Errorf("%T%+v judged by %v, want %v", tc.cmd, tc.cmd, judged, tc.judged)
		}
	}
	if st, _, _ := r.Load(ctx, "g"); st.Balance != 545 {
		t.Errorf("balance %d, want 545", st.Balance)
	}
}
