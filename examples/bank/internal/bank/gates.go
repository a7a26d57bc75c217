package bank

import (
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/policy"
)

// Policy is the context the gates judge against.
type Policy struct {
	DailyLimit int64 // most that may leave an account per day
}

type proposal = aggregate.Proposal[Account]

// movement sums what a proposal's events take out of and put into the account.
func movement(p proposal) (debits int64, credits int64, amounts []int64, day string) {
	for _, ev := range p.Events {
		switch e := ev.(type) {
		case Withdrawn:
			debits, day, amounts = debits+e.Amount, e.Day, append(amounts, e.Amount)
		case TransferSent:
			debits, day, amounts = debits+e.Amount, e.Day, append(amounts, e.Amount)
		case Deposited:
			credits, amounts = credits+e.Amount, append(amounts, e.Amount)
		case TransferReceived:
			credits, amounts = credits+e.Amount, append(amounts, e.Amount)
		}
	}
	return debits, credits, amounts, day
}

// Gates returns the bank's policy, evaluating every gate so a denial
// lists every reason at once. Most gates judge a proposal by its events,
// whichever command emitted them; no-self-transfer judges one command
// type, typed, and passes the others.
func Gates() *policy.GateSet[Policy, proposal] {
	return policy.NewGateSet(policy.EvaluateAll,
		policy.GateFunc("positive-amount", func(_ Policy, p proposal) *policy.Denial {
			_, _, amounts, _ := movement(p)
			for _, a := range amounts {
				if a <= 0 {
					return policy.Deny("AMOUNT_NOT_POSITIVE", "amounts must be positive", "amount", a)
				}
			}
			return nil
		}),
		policy.GateFunc("no-overdraft", func(_ Policy, p proposal) *policy.Denial {
			debits, credits, _, _ := movement(p)
			if after := p.State.Balance - debits + credits; debits > 0 && after < -p.State.Limit {
				return policy.Deny("OVERDRAFT", "the balance would go below the account's limit",
					"balance", p.State.Balance, "debit", debits, "limit", p.State.Limit)
			}
			return nil
		}),
		policy.GateFunc("frozen-account", func(_ Policy, p proposal) *policy.Denial {
			if debits, _, _, _ := movement(p); debits > 0 && p.State.Frozen {
				return policy.Deny("ACCOUNT_FROZEN", "a frozen account refuses debits")
			}
			return nil
		}),
		policy.GateFunc("daily-withdrawal-limit", func(pc Policy, p proposal) *policy.Denial {
			debits, _, _, day := movement(p)
			if already := p.State.DailyDebits[day]; debits > 0 && already+debits > pc.DailyLimit {
				return policy.Deny("DAILY_LIMIT", "the daily withdrawal limit would be exceeded",
					"today", already, "debit", debits, "limit", pc.DailyLimit)
			}
			return nil
		}),
		aggregate.CommandGate("no-self-transfer", func(_ Policy, send SendTransfer, p proposal) *policy.Denial {
			if Entity(send.To) == p.Coordinate.Entity {
				return policy.Deny("SELF_TRANSFER", "an account cannot send money to itself", "account", send.To)
			}
			return nil
		}),
	)
}
