package bank

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"
	"time"

	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/policy"
	"github.com/batpak-go/batpak/projection"
)

// Run is what the example commands do on their store: it starts the read
// models, plays the scenario (steps, if not io.Discard, gets a line per
// step) and reports what happened and what the read models show.
//
// A store that already holds the bank's accounts, as a second run on the
// same directory or stream finds it, is not played on again: Run appends
// nothing and reports what the store holds ([Report.Ran] is false), so a
// re-run changes no balance and no event count.
func Run(ctx context.Context, store Store, snapshots aggregate.SnapshotStore, now func() time.Time, steps io.Writer, opts ...RunOption) (*Report, error) {
	var o runOptions
	for _, opt := range opts {
		opt(&o)
	}
	reg := Registry()
	b, err := New(store, reg, Policy{DailyLimit: 1000}, snapshots, now)
	if err != nil {
		return nil, err
	}
	views := startReadModels(ctx, store, reg)
	if o.runner != nil {
		o.runner(views.runner)
	}
	var r *Report
	if b.Opened() {
		r, err = Describe(ctx, b)
	} else {
		r, err = RunScenario(ctx, b, steps)
	}
	if err != nil {
		return nil, errors.Join(err, views.stop())
	}
	// A guard against a hang, not a budget: the read models follow the
	// store in this process and catch up within milliseconds.
	wait, cancel := context.WithTimeout(ctx, time.Minute)
	defer cancel()
	r.ReadModels, err = views.read(wait, store.LastSequence())
	if err = errors.Join(err, views.stop()); err != nil {
		return nil, err
	}
	return r, nil
}

// RunOption configures [Run].
type RunOption func(*runOptions)

type runOptions struct {
	runner func(*projection.Runner)
}

// WithRunner hands fn the runner of the read models as Run starts them,
// say to export their status as metrics. Its Status stays readable after
// Run has stopped them, while the store is open.
func WithRunner(fn func(*projection.Runner)) RunOption {
	return func(o *runOptions) { o.runner = fn }
}

// PrintReport writes r for a person to read.
func PrintReport(w io.Writer, r *Report) {
	fmt.Fprintln(w, "Balances:")
	for _, b := range r.Balances {
		fmt.Fprintf(w, "  %-6s %-12s %6d  (%s)\n", b.Account, b.Owner, b.Balance, b.State)
	}
	fmt.Fprintln(w, "\nDenied by policy:")
	if !r.Ran {
		fmt.Fprintln(w, "  none this time: the scenario did not run, and a denial leaves no event to read back")
	}
	for _, d := range r.Denials {
		fmt.Fprintf(w, "  %-6s %-13s gate %-23s %s%s\n", d.Account, d.Command, d.Denial.Gate, d.Denial.Message, details(d.Denial))
	}
	fmt.Fprintln(w, "\nBypasses on record:")
	for _, b := range r.Bypass {
		fmt.Fprintf(w, "  #%d %s by %s: %q\n", b.Sequence, b.Account, b.Actor, b.Reason)
	}
	if rm := r.ReadModels; rm != nil {
		if r.Ran {
			fmt.Fprintln(w, "\nRead models (projections kept live during the run):")
		} else {
			fmt.Fprintln(w, "\nRead models (projections caught up on the store):")
		}
		fmt.Fprint(w, "  balances:")
		for _, id := range Accounts {
			fmt.Fprintf(w, " %s=%d", id, rm.Balances[id])
		}
		fmt.Fprintln(w, "\n  statement of alice:")
		for _, l := range rm.Statement {
			fmt.Fprintf(w, "    %s\n", l)
		}
		fmt.Fprintln(w, "  transfers of 250 or more:")
		for _, l := range rm.LargeTransfers {
			fmt.Fprintf(w, "    %s\n", l)
		}
	}
	fmt.Fprintln(w, "\nCausal chains:")
	for _, c := range r.Chains {
		fmt.Fprintf(w, "  %s\n", strings.ReplaceAll(c, "\n", "\n  "))
	}
}

func details(d *policy.Denial) string {
	var b strings.Builder
	for _, kv := range d.Details {
		fmt.Fprintf(&b, " %s=%v", kv.Key, kv.Value)
	}
	if b.Len() == 0 {
		return ""
	}
	return " [" + b.String()[1:] + "]"
}
