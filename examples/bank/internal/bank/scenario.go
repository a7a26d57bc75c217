package bank

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/causal"
	"github.com/batpak-go/batpak/kind"
	"github.com/batpak-go/batpak/policy"
)

// Report is what the scripted scenario produced, or what a store that
// already held the bank's accounts shows.
type Report struct {
	// Ran says whether the scenario ran. It does not when the store
	// already held the bank's accounts: then nothing was appended, and
	// the report is read from the store alone.
	Ran      bool
	Balances []Balance
	// Denials are the commands the gates refused during this run. A
	// denial appends nothing, so a report read from the store has none.
	Denials []Denied
	Bypass  []BypassSeen
	// Chains are the causal chains of the first transfers, rendered;
	// MoreTransfers counts the transfers after them.
	Chains        []string
	MoreTransfers int
	// ReadModels, when projections ran alongside.
	ReadModels *ReadModels
}

// Balance of one account at the end.
type Balance struct {
	Account string
	Owner   string // "(forgotten)" once the owner was forgotten
	Balance int64
	State   string
}

// Denied is one command a gate refused.
type Denied struct {
	Account, Command string
	Denial           *policy.Denial
}

// BypassSeen is a bypass as read back from the log.
type BypassSeen struct {
	Account       string
	Sequence      uint64
	Reason, Actor string
}

// Accounts are the accounts of the script.
var Accounts = []string{"alice", "bob", "carol", "dave"}

// Opened reports whether the store already holds any of the script's
// accounts: a run into that store would open them a second time.
func (b *Bank) Opened() bool {
	for _, id := range Accounts {
		if b.store.StreamVersion(Stream(id)) > 0 {
			return true
		}
	}
	return false
}

// RunScenario plays the bank's script against b and reports what happened.
// The store must not hold the script's accounts yet (see [Bank.Opened]).
func RunScenario(ctx context.Context, b *Bank, log io.Writer) (*Report, error) {
	denials, err := play(ctx, b, log)
	if err != nil {
		return nil, err
	}
	r, err := Describe(ctx, b)
	if err != nil {
		return nil, err
	}
	r.Ran, r.Denials = true, denials
	return r, nil
}

// play runs the script and returns the commands the gates refused.
func play(ctx context.Context, b *Bank, log io.Writer) ([]Denied, error) {
	var denials []Denied
	step := func(what string) { fmt.Fprintf(log, "· %s\n", what) }
	denied := func(id, what string, err error) bool {
		var ds policy.Denials
		if !errors.As(err, &ds) {
			return false
		}
		for _, d := range ds {
			denials = append(denials, Denied{Account: id, Command: what, Denial: d})
		}
		return true
	}
	try := func(id, what string, cmd aggregate.Command[Account]) error {
		step(fmt.Sprintf("%s: %s", id, what))
		_, err := b.Do(ctx, id, cmd)
		if denied(id, what, err) {
			return nil
		}
		return err
	}
	limits := map[string]int64{"alice": 100}
	for _, id := range Accounts {
		if err := try(id, "open", Open{Customer: Customer(id), Owner: strings.ToUpper(id[:1]) + id[1:], Limit: limits[id]}); err != nil {
			return nil, fmt.Errorf("%s open: %w", id, err)
		}
	}
	steps := []struct {
		id, what string
		cmd      aggregate.Command[Account]
	}{
		{"alice", "deposit 1000", Deposit{Amount: 1000}},
		{"bob", "deposit 500", Deposit{Amount: 500}},
		// alice withdraws 200 here, with release 1 (below)
		{"bob", "deposit -50", Deposit{Amount: -50}},
		{"bob", "withdraw 600", Withdraw{Amount: 600, Day: b.today()}},
		{"alice", "withdraw 900", Withdraw{Amount: 900, Day: b.today()}},
		{"bob", "freeze", Freeze{Reason: "card reported stolen"}},
		{"bob", "withdraw 10", Withdraw{Amount: 10, Day: b.today()}},
		{"dave", "close", Close{}},
	}
	for i, s := range steps {
		if i == 2 {
			// Release 1 of the bank, before the upgrade, recorded this
			// withdrawal in its own shape (evolution.go).
			step("alice: withdraw 200 (written by release 1)")
			if err := b.release1Withdraw(ctx, "alice", 200); err != nil {
				return nil, fmt.Errorf("alice release 1 withdrawal: %w", err)
			}
		}
		if err := try(s.id, s.what, s.cmd); err != nil {
			return nil, fmt.Errorf("%s %s: %w", s.id, s.what, err)
		}
	}
	for _, t := range []struct {
		from, to string
		amount   int64
	}{{"alice", "carol", 300}, {"alice", "dave", 50}} {
		what := fmt.Sprintf("transfer %d", t.amount)
		step(fmt.Sprintf("transfer %d from %s to %s", t.amount, t.from, t.to))
		if _, err := b.Transfer(ctx, t.from, t.to, t.amount); err != nil && !denied(t.from, what, err) {
			return nil, fmt.Errorf("transfer: %w", err)
		}
	}
	step("bob: admin correction +25 (bypass)")
	if _, err := b.Correct(ctx, "bob", 25, "fee refund", "card fee charged twice; refunded by support", "ops:jane"); err != nil {
		return nil, fmt.Errorf("correction: %w", err)
	}
	step("dave: the closed account's owner asks to be forgotten")
	if err := b.Forget(ctx, "dave"); err != nil {
		return nil, err
	}
	return denials, nil
}

// Describe reports what the store holds of the bank, reading the log
// alone: balances, bypasses and the causal chains of the first transfers.
func Describe(ctx context.Context, b *Bank) (*Report, error) {
	r := &Report{}
	var err error
	if r.Balances, err = b.Balances(ctx); err != nil {
		return nil, err
	}
	if r.Bypass, err = findBypasses(ctx, b.store); err != nil {
		return nil, err
	}
	if r.Chains, r.MoreTransfers, err = transferChains(ctx, b.store); err != nil {
		return nil, err
	}
	return r, nil
}

// Balances returns the balance and state of each of the script's accounts.
func (b *Bank) Balances(ctx context.Context) ([]Balance, error) {
	var out []Balance
	for _, id := range Accounts {
		a, err := b.Account(ctx, id)
		if err != nil {
			return nil, err
		}
		state := "open"
		switch {
		case !a.Opened:
			state = "not open"
		case a.Closed:
			state = "closed"
		case a.Frozen:
			state = "frozen"
		}
		out = append(out, Balance{Account: id, Owner: a.Owner, Balance: a.Balance, State: state})
	}
	return out, nil
}

// findBypasses reads the log and reports every event committed by bypass.
func findBypasses(ctx context.Context, s Store) ([]BypassSeen, error) {
	var out []BypassSeen
	for rec, err := range s.Query(ctx, batpak.Region{Scope: Scope, EntityPrefix: "account:"}) {
		if err != nil {
			return nil, err
		}
		if reason, ok := rec.Metadata[policy.MetaBypassReason]; ok {
			out = append(out, BypassSeen{Account: rec.Coordinate.Entity, Sequence: rec.Sequence,
				Reason: reason, Actor: rec.Metadata[policy.MetaBypassActor]})
		}
	}
	return out, nil
}

// maxChains is how many transfers' chains a report draws: the scenario's
// and a few more, of the many a steady workload adds.
const maxChains = 4

// transferChains renders the causal chain of the first maxChains transfers
// in the log, in the order they were sent, and counts the others.
func transferChains(ctx context.Context, s Store) (chains []string, more int, err error) {
	reg := Registry()
	sent, _ := reg.KindOf(TransferSent{})
	for rec, err := range s.Query(ctx, batpak.Region{Scope: Scope, EntityPrefix: "account:", Kinds: []kind.Kind{sent}}) {
		if err != nil {
			return nil, 0, err
		}
		if len(chains) == maxChains {
			more++
			continue
		}
		chain, err := renderChain(ctx, s, reg, rec)
		if err != nil {
			return nil, 0, err
		}
		chains = append(chains, chain)
	}
	return chains, more, nil
}

// renderChain draws the correlation group of a transfer, from its
// TransferSent event root, as a tree along causation links: the store's
// catalog names every event's type, so package causal draws it.
func renderChain(ctx context.Context, s Store, reg *batpak.Registry, root batpak.Record) (string, error) {
	g, err := causal.Trace(ctx, s, root.ID)
	if err != nil {
		return "", err
	}
	var returned string
	for _, n := range g.Nodes {
		if ev, err := reg.Decode(&n.Record); err == nil {
			if r, ok := ev.(TransferReturned); ok {
				returned = r.Reason
			}
		}
	}
	sent, err := batpak.DecodeAs[TransferSent](&root)
	if err != nil {
		return "", err
	}
	var b strings.Builder
	fmt.Fprintf(&b, "transfer %s", sent.TransferID)
	if returned != "" {
		fmt.Fprintf(&b, " (returned: %s)", returned)
	}
	b.WriteByte('\n')
	if err := g.WriteText(&b); err != nil {
		return "", err
	}
	return strings.TrimRight(b.String(), "\n"), nil
}
