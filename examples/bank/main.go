// Command bank runs a short scripted scenario of a bank domain on the
// embedded batpak store: accounts, deposits and withdrawals through policy
// gates, transfers whose events cause events on the other account, an
// audited admin bypass, and the causal chain of each transfer.
//
//	go run ./examples/bank                  # store in a temporary directory
//	go run ./examples/bank -data DIR        # keep the store in DIR
//	go run ./examples/bank -nats embedded   # on JetStream, a server started in-process
//	go run ./examples/bank -nats URL        # on JetStream, the server(s) at URL
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
	"github.com/batpak-go/batpak/natsstore"
	"github.com/batpak-go/batpak/natsstore/embedded"
	"github.com/batpak-go/batpak/policy"
)

func main() {
	data := flag.String("data", "", "directory of the store (default: a temporary directory, removed afterwards)")
	verbose := flag.Bool("v", false, "print each step")
	natsURL := flag.String("nats", "", `run on NATS JetStream: the server URL(s), or "embedded" to start a server in-process (default: the embedded batpak store)`)
	flag.Parse()
	if err := runWith(*data, *natsURL, *verbose, os.Stdout); err != nil {
		log.Fatal(err)
	}
}

func run(data string, verbose bool, out io.Writer) error { return runWith(data, "", verbose, out) }

// bankStream is the JetStream stream of the bank's events.
const bankStream = "BANK"

// openNATS opens the bank's store on JetStream: at url, or on a server
// started in-process with its files in dir when url is "embedded".
func openNATS(url, dir string) (*natsstore.Store, func(), error) {
	stop := func() {}
	if url == "embedded" {
		ns, err := embedded.Start(embedded.Options{Dir: dir, Name: "bank"})
		if err != nil {
			return nil, nil, err
		}
		url, stop = ns.ClientURL(), ns.Shutdown
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	s, err := natsstore.Open(ctx, url, natsstore.WithStream(bankStream))
	if err != nil {
		stop()
		return nil, nil, err
	}
	return s, stop, nil
}

func runWith(data, natsURL string, verbose bool, out io.Writer) error {
	if data == "" {
		tmp, err := os.MkdirTemp("", "batpak-bank-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		data = tmp
	}
	var store Store
	var where string
	var snapshots aggregate.SnapshotStore
	if natsURL == "" {
		es, err := eventstore.Open(filepath.Join(data, "events"))
		if err != nil {
			return err
		}
		defer es.Close()
		store, where = es, es.Dir()
		if snapshots, err = aggregate.NewFileSnapshots(filepath.Join(data, "snapshots")); err != nil {
			return err
		}
	} else {
		ns, stop, err := openNATS(natsURL, filepath.Join(data, "nats"))
		if err != nil {
			return err
		}
		defer stop()
		defer ns.Close()
		store, where = ns, "JetStream stream "+bankStream+" at "+ns.Conn().ConnectedUrlRedacted()
		// Snapshots live in a KV bucket beside the stream, as the events do.
		ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
		snapshots, err = natsstore.NewKVSnapshots(ctx, ns)
		cancel()
		if err != nil {
			return err
		}
	}
	reg := Registry()
	bank, err := NewBank(store, reg, Policy{DailyLimit: 1000}, snapshots, time.Now)
	if err != nil {
		return err
	}
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
	fmt.Fprintf(out, "\n%d events in %s\n", store.LastSequence(), where)
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
