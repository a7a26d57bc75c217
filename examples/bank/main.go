// Command bank runs a short scripted scenario of a bank domain on the
// embedded batpak store: accounts, deposits and withdrawals through policy
// gates, transfers whose events cause events on the other account, an
// audited admin bypass, and the causal chain of each transfer.
//
//	go run ./examples/bank            # store in a temporary directory
//	go run ./examples/bank -data DIR  # keep the store in DIR
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/policy"
)

func main() {
	data := flag.String("data", "", "directory of the store (default: a temporary directory, removed afterwards)")
	verbose := flag.Bool("v", false, "print each step")
	flag.Parse()
	if err := run(*data, *verbose, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(data string, verbose bool, out io.Writer) error {
	if data == "" {
		tmp, err := os.MkdirTemp("", "batpak-bank-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		data = tmp
	}
	store, err := eventstore.Open(filepath.Join(data, "events"))
	if err != nil {
		return err
	}
	defer store.Close()
	snapshots, err := aggregate.NewFileSnapshots(filepath.Join(data, "snapshots"))
	if err != nil {
		return err
	}
	reg := Registry()
	bank := NewBank(store, reg, Policy{DailyLimit: 1000}, snapshots, time.Now)
	steps := io.Discard
	if verbose {
		steps = out
	}
	ctx := context.Background()
	views := startReadModels(ctx, store, reg)
	report, err := RunScenario(ctx, bank, steps)
	if err != nil {
		return errors.Join(err, views.stop())
	}
	ctx2, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	report.ReadModels, err = views.read(ctx2, store.LastSequence())
	if err = errors.Join(err, views.stop()); err != nil {
		return err
	}
	printReport(out, report)
	fmt.Fprintf(out, "\n%d events in %s\n", store.LastSequence(), store.Dir())
	return nil
}

func printReport(w io.Writer, r *Report) {
	fmt.Fprintln(w, "Balances:")
	for _, b := range r.Balances {
		fmt.Fprintf(w, "  %-6s %6d  (%s)\n", b.Account, b.Balance, b.State)
	}
	fmt.Fprintln(w, "\nDenied by policy:")
	for _, d := range r.Denials {
		fmt.Fprintf(w, "  %-6s %-13s gate %-23s %s%s\n", d.Account, d.Command, d.Denial.Gate, d.Denial.Message, details(d.Denial))
	}
	fmt.Fprintln(w, "\nBypasses on record:")
	for _, b := range r.Bypass {
		fmt.Fprintf(w, "  #%d %s by %s: %q\n", b.Sequence, b.Account, b.Actor, b.Reason)
	}
	if rm := r.ReadModels; rm != nil {
		fmt.Fprintln(w, "\nRead models (projections kept live during the run):")
		fmt.Fprint(w, "  balances:")
		for _, id := range accounts {
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
		fmt.Fprintf(w, "  %s\n", indent(c))
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

func indent(s string) string {
	out := []byte{}
	for i := 0; i < len(s); i++ {
		out = append(out, s[i])
		if s[i] == '\n' {
			out = append(out, "  "...)
		}
	}
	return string(out)
}
