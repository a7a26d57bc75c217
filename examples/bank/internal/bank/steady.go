package bank

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/batpak-go/batpak/policy"
)

// Step is one command of the steady workload ([Session.Steady]).
type Step struct {
	N      int    // 1, 2, ...
	What   string // say "transfer 7 from carol to alice"
	Denied bool   // the gates refused it: it appended nothing
	Last   uint64 // the store's last sequence after it
}

// steadyCommands are the workload's commands, in turn: small deposits to,
// and transfers between, two of the scenario's open accounts.
var steadyCommands = []struct {
	from, to string // a deposit has no from
	amount   int64
}{
	{"", "carol", 10},
	{"carol", "alice", 7},
	{"", "alice", 5},
	{"alice", "carol", 3},
}

// Steady keeps the bank busy until ctx ends: a command every interval,
// through the same gates as the scenario, while the read models follow.
// Deposits always go through; a transfer may be denied, once its account
// reaches the daily withdrawal limit, until the next day (UTC). fn, if not
// nil, sees each step. Steady returns nil when ctx ends, after the
// command under way (a transfer is not left half done), and the first
// error that is not a denial.
func (s *Session) Steady(ctx context.Context, interval time.Duration, fn func(Step)) error {
	tick := time.NewTicker(interval)
	defer tick.Stop()
	do := context.WithoutCancel(ctx)
	for n := 1; ctx.Err() == nil; n++ {
		c := steadyCommands[(n-1)%len(steadyCommands)]
		step := Step{N: n}
		var err error
		if c.from == "" {
			step.What = fmt.Sprintf("deposit %d to %s", c.amount, c.to)
			_, err = s.Bank.Do(do, c.to, Deposit{Amount: c.amount})
		} else {
			step.What = fmt.Sprintf("transfer %d from %s to %s", c.amount, c.from, c.to)
			_, err = s.Bank.Transfer(do, c.from, c.to, c.amount)
		}
		switch {
		case errors.Is(err, policy.ErrDenied):
			step.Denied = true
		case err != nil:
			return fmt.Errorf("steady workload, %s: %w", step.What, err)
		}
		step.Last = s.store.LastSequence()
		if fn != nil {
			fn(step)
		}
		select {
		case <-ctx.Done():
		case <-tick.C:
		}
	}
	return nil
}
