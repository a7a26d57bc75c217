package main

import (
	"context"
	"fmt"
	"io"
	"time"

	"github.com/batpak-go/batpak/examples/bank/internal/bank"
)

// steady runs the bank's steady workload, a command every interval, until
// ctx ends; then it says what the workload did and sets the SQL read model
// beside the accounts' balances.
func steady(ctx context.Context, s *bank.Session, interval time.Duration, onStep func(bank.Step), out io.Writer) error {
	fmt.Fprintf(out, "\nsteady workload: a deposit or a transfer every %v, through the gates, with the read models following\n", interval)
	var n, denied int
	err := s.Steady(ctx, interval, func(st bank.Step) {
		n++
		if st.Denied {
			denied++
		}
		if onStep != nil {
			onStep(st)
		}
	})
	if err != nil {
		return err
	}
	// The read models catch up on the last command's events.
	ctx = context.WithoutCancel(ctx)
	rm, err := s.ReadModels(ctx)
	if err != nil {
		return err
	}
	accounts, err := s.Bank.Balances(ctx)
	if err != nil {
		return err
	}
	fmt.Fprintf(out, "\nsteady workload: %d commands, %d of them denied\n  balances:", n, denied)
	for _, b := range accounts {
		fmt.Fprintf(out, " %s=%d", b.Account, b.Balance)
	}
	fmt.Fprintln(out)
	bank.PrintSQL(out, accounts, rm.SQL)
	return nil
}
