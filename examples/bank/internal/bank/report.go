package bank

import (
	"fmt"
	"io"
	"strings"

	"github.com/batpak-go/batpak/policy"
)

// statementLines is how many lines of alice's statement a report shows,
// the newest: a store a steady workload ran on holds many.
const statementLines = 8

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
		fmt.Fprintln(w)
		if rm.SQL != nil {
			PrintSQL(w, r.Balances, rm.SQL)
		}
		fmt.Fprintln(w, "  statement of alice:")
		lines := rm.Statement
		if n := len(lines) - statementLines; n > 0 {
			fmt.Fprintf(w, "    … %d earlier lines\n", n)
			lines = lines[n:]
		}
		for _, l := range lines {
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
	if r.MoreTransfers > 0 {
		fmt.Fprintf(w, "  … and %d later transfers (batpak trace DIR EVENT draws the chain of any event)\n", r.MoreTransfers)
	}
}

// PrintSQL writes the balances table beside the accounts' balances, which
// the aggregates hold.
func PrintSQL(w io.Writer, accounts []Balance, t *SQLReadModel) {
	fmt.Fprint(w, "  balances in SQL:")
	var differ []string
	for _, b := range accounts {
		got := t.Rows[b.Account].Balance
		fmt.Fprintf(w, " %s=%d", b.Account, got)
		if got != b.Balance {
			differ = append(differ, fmt.Sprintf("%s holds %d", b.Account, b.Balance))
		}
	}
	fmt.Fprintln(w)
	agree := "as the accounts hold"
	if len(differ) > 0 {
		agree = "NOT as the accounts hold: " + strings.Join(differ, ", ")
	}
	applied := fmt.Sprintf("this run applied %d events to it", t.Applied)
	if t.Applied == 0 {
		applied = "this run applied none: it went on from there"
	}
	fmt.Fprintf(w, "    (table balances: %s; position %d, %s)\n", agree, t.Next, applied)
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
