package policy_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batpak-go/batpak/policy"
)

type withdrawal struct {
	Account string
	Amount  int
}

type rules struct{ MaxAmount int }

func withdrawalGates(mode policy.Mode) *policy.GateSet[rules, withdrawal] {
	return policy.NewGateSet(mode,
		policy.GateFunc("positive", func(_ rules, w withdrawal) *policy.Denial {
			if w.Amount <= 0 {
				return policy.Deny("NOT_POSITIVE", "the amount must be positive", "amount", w.Amount)
			}
			return nil
		}),
		policy.GateFunc("max-amount", func(r rules, w withdrawal) *policy.Denial {
			if w.Amount > r.MaxAmount {
				return policy.Deny("TOO_LARGE", "the amount is above the maximum", "amount", w.Amount, "max", r.MaxAmount)
			}
			return nil
		}),
	)
}

func ExampleGateSet_Evaluate() {
	gates := withdrawalGates(policy.EvaluateAll)
	ctx := rules{MaxAmount: 100}

	receipt, err := gates.Evaluate(ctx, withdrawal{Account: "alice", Amount: 50})
	fmt.Println("passed:", receipt.Audit().Gates, err)
	err = receipt.Commit(func(w withdrawal, a policy.Audit) error {
		fmt.Println("committing", w.Amount, "from", w.Account, a.Metadata())
		return nil
	})
	fmt.Println("commit:", err)
	fmt.Println("again:", receipt.Commit(func(withdrawal, policy.Audit) error { return nil }))

	_, err = gates.Evaluate(ctx, withdrawal{Account: "bob", Amount: 500})
	fmt.Println(err)
	var d *policy.Denial
	if errors.As(err, &d) {
		amount, _ := d.Detail("amount")
		fmt.Println(d.Gate, d.Code, amount)
	}
	fmt.Println(errors.Is(err, policy.ErrDenied))
	// Output:
	// passed: [positive max-amount] <nil>
	// committing 50 from alice map[policy.gates:[positive max-amount]]
	// commit: <nil>
	// again: policy: receipt already used
	// policy: gate "max-amount" denied: the amount is above the maximum (TOO_LARGE) [amount=500 max=100]
	// max-amount TOO_LARGE 500
	// true
}

func ExamplePipeline_Bypass() {
	commit := func(_ context.Context, w withdrawal, a policy.Audit) (string, error) {
		m := a.Metadata()
		return fmt.Sprintf("%d from %s; bypass by %s at %s: %s", w.Amount, w.Account,
			m[policy.MetaBypassActor], m[policy.MetaBypassAt], m[policy.MetaBypassReason]), nil
	}
	p := policy.NewPipeline(withdrawalGates(policy.FailFast), commit,
		policy.WithClock(func() time.Time { return time.Date(2026, 11, 26, 9, 30, 0, 0, time.UTC) }))
	ctx := context.Background()

	_, err := p.Submit(ctx, rules{MaxAmount: 100}, withdrawal{Account: "alice", Amount: 500})
	fmt.Println(err)

	out, err := p.Bypass(ctx, withdrawal{Account: "alice", Amount: 500}, "court order 17", "ops:jane")
	fmt.Println(out, err)

	_, err = p.Bypass(ctx, withdrawal{Account: "alice", Amount: 500}, "", "ops:jane")
	fmt.Println(err)
	// Output:
	// policy: gate "max-amount" denied: the amount is above the maximum (TOO_LARGE) [amount=500 max=100]
	// 500 from alice; bypass by ops:jane at 2026-11-26T09:30:00Z: court order 17 <nil>
	// policy: a bypass needs a reason and an actor
}
