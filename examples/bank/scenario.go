package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"reflect"
	"slices"
	"strings"

	"github.com/google/uuid"

	"github.com/batpak-go/batpak"
	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/policy"
)

// Report is what the scripted scenario produced.
type Report struct {
	Balances []Balance
	Denials  []Denied
	Bypass   []BypassSeen
	Chains   []string // causal chains of transfers, rendered
	// ReadModels, when projections ran alongside.
	ReadModels *ReadModels
}

// Balance of one account at the end.
type Balance struct {
	Account string
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

var accounts = []string{"alice", "bob", "carol", "dave"}

// RunScenario plays the bank's script against b and reports what happened.
func RunScenario(ctx context.Context, b *Bank, log io.Writer) (*Report, error) {
	r := &Report{}
	step := func(what string) { fmt.Fprintf(log, "· %s\n", what) }
	try := func(id, what string, cmd aggregate.Command[Account]) error {
		step(fmt.Sprintf("%s: %s", id, what))
		_, err := b.Do(ctx, id, cmd)
		var ds policy.Denials
		if errors.As(err, &ds) {
			for _, d := range ds {
				r.Denials = append(r.Denials, Denied{Account: id, Command: what, Denial: d})
			}
			return nil
		}
		return err
	}
	limits := map[string]int64{"alice": 100}
	for _, id := range accounts {
		err := try(id, "open", Open{Owner: strings.ToUpper(id[:1]) + id[1:], Limit: limits[id]})
		if errors.Is(err, ErrAlreadyOpen) {
			continue // a store reused with -data
		}
		if err != nil {
			return nil, err
		}
	}
	steps := []struct {
		id, what string
		cmd      aggregate.Command[Account]
	}{
		{"alice", "deposit 1000", Deposit{Amount: 1000}},
		{"bob", "deposit 500", Deposit{Amount: 500}},
		{"alice", "withdraw 200", Withdraw{Amount: 200, Day: b.today()}},
		{"bob", "deposit -50", Deposit{Amount: -50}},
		{"bob", "withdraw 600", Withdraw{Amount: 600, Day: b.today()}},
		{"alice", "withdraw 900", Withdraw{Amount: 900, Day: b.today()}},
		{"bob", "freeze", Freeze{Reason: "card reported stolen"}},
		{"bob", "withdraw 10", Withdraw{Amount: 10, Day: b.today()}},
		{"dave", "close", Close{}},
	}
	for _, s := range steps {
		if err := try(s.id, s.what, s.cmd); err != nil {
			return nil, fmt.Errorf("%s %s: %w", s.id, s.what, err)
		}
	}
	var transfers []*Transfer
	for _, t := range []struct {
		from, to string
		amount   int64
	}{{"alice", "carol", 300}, {"alice", "dave", 50}} {
		step(fmt.Sprintf("transfer %d from %s to %s", t.amount, t.from, t.to))
		tr, err := b.Transfer(ctx, t.from, t.to, t.amount)
		var ds policy.Denials
		if errors.As(err, &ds) {
			for _, d := range ds {
				r.Denials = append(r.Denials, Denied{Account: t.from, Command: fmt.Sprintf("transfer %d", t.amount), Denial: d})
			}
			continue
		}
		if err != nil {
			return nil, fmt.Errorf("transfer: %w", err)
		}
		transfers = append(transfers, tr)
	}
	step("bob: admin correction +25 (bypass)")
	if _, err := b.Correct(ctx, "bob", 25, "fee refund", "card fee charged twice; refunded by support", "ops:jane"); err != nil {
		return nil, fmt.Errorf("correction: %w", err)
	}
	for _, id := range accounts {
		a, err := b.Account(ctx, id)
		if err != nil {
			return nil, err
		}
		state := "open"
		switch {
		case a.Closed:
			state = "closed"
		case a.Frozen:
			state = "frozen"
		}
		r.Balances = append(r.Balances, Balance{Account: id, Balance: a.Balance, State: state})
	}
	bypasses, err := findBypasses(ctx, b.store)
	if err != nil {
		return nil, err
	}
	r.Bypass = bypasses
	for _, t := range transfers {
		chain, err := renderChain(ctx, b.store, t)
		if err != nil {
			return nil, err
		}
		r.Chains = append(r.Chains, chain)
	}
	return r, nil
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

// renderChain draws the correlation group of a transfer as a tree along
// causation links.
func renderChain(ctx context.Context, s Store, t *Transfer) (string, error) {
	root, err := s.Get(ctx, t.SentID.EventID)
	if err != nil {
		return "", err
	}
	group := map[uuid.UUID][]batpak.Record{}
	for _, seq := range s.Correlated(root.CorrelationID) {
		rec, err := s.GetSequence(ctx, seq)
		if err != nil {
			return "", err
		}
		group[rec.CausationID] = append(group[rec.CausationID], rec)
	}
	reg := Registry()
	var b strings.Builder
	fmt.Fprintf(&b, "transfer %s", t.ID)
	if t.Returned != "" {
		fmt.Fprintf(&b, " (returned: %s)", t.Returned)
	}
	b.WriteByte('\n')
	var walk func(rec batpak.Record, depth int)
	walk = func(rec batpak.Record, depth int) {
		v, _ := reg.Decode(&rec)
		fmt.Fprintf(&b, "%s└─ #%d %s v%d %s %+v\n", strings.Repeat("   ", depth), rec.Sequence, rec.Coordinate.Entity, rec.Version, reflect.TypeOf(v).Name(), v)
		children := group[rec.ID]
		slices.SortFunc(children, func(a, b batpak.Record) int { return int(a.Sequence) - int(b.Sequence) })
		for _, c := range children {
			walk(c, depth+1)
		}
	}
	walk(root, 0)
	return strings.TrimRight(b.String(), "\n"), nil
}
