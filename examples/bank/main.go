// Command bank runs a short scripted scenario of a bank domain on the
// embedded batpak store: accounts, deposits and withdrawals through policy
// gates, transfers whose events cause events on the other account, an
// audited admin bypass, and the causal chain of each transfer. The domain
// and the script are package bank (./internal/bank); ./nats runs them on NATS
// JetStream.
//
//	go run ./examples/bank              # store in a temporary directory, removed on exit
//	go run ./examples/bank -data DIR    # the store is DIR, and stays; batpak inspect DIR reads it
//	go run ./examples/bank -metrics :9090  # then serves Prometheus metrics at /metrics until interrupted
//
// A second run with the same -data finds the accounts there: it appends
// nothing and shows what the store holds.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"
	"time"

	"github.com/batpak-go/batpak/aggregate"
	"github.com/batpak-go/batpak/eventstore"
	"github.com/batpak-go/batpak/examples/bank/internal/bank"
)

func main() {
	data := flag.String("data", "", "the store's directory, kept afterwards; a run on a store that holds the accounts appends nothing (default: a temporary directory, removed on exit)")
	verbose := flag.Bool("v", false, "print each step")
	metricsAddr := flag.String("metrics", "", "serve Prometheus metrics of the store and the read models at http://ADDR/metrics (say :9090), and keep serving them after the scenario until interrupted (default: none)")
	flag.Parse()
	if *metricsAddr == "" {
		if err := run(*data, *verbose, os.Stdout); err != nil {
			log.Fatal(err)
		}
		return
	}
	m, err := listenMetrics(*metricsAddr)
	if err != nil {
		log.Fatal(err)
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	if err := runWith(ctx, *data, *verbose, os.Stdout, m); err != nil {
		log.Fatal(err)
	}
}

// snapshotsDir is where, inside the store's directory, the accounts'
// snapshots go; the store leaves alone what is not its own.
const snapshotsDir = "snapshots"

func run(data string, verbose bool, out io.Writer) error {
	return runWith(context.Background(), data, verbose, out, nil)
}

// runWith is run with metrics, if m is not nil: the store reports to m's
// observer, m reads the store and the read models, and once the report is
// printed m serves them until ctx ends.
func runWith(ctx context.Context, data string, verbose bool, out io.Writer, m *metricsServer) error {
	var opts []eventstore.Option
	var runOpts []bank.RunOption
	if m != nil {
		opts = append(opts, eventstore.WithObserver(m.observer))
		runOpts = append(runOpts, bank.WithRunner(m.watchRunner))
	}
	dir := data
	if dir == "" {
		tmp, err := os.MkdirTemp("", "batpak-bank-")
		if err != nil {
			return err
		}
		defer os.RemoveAll(tmp)
		dir = tmp
	}
	store, err := eventstore.Open(dir, opts...)
	if err != nil {
		return err
	}
	defer store.Close()
	if m != nil {
		m.watchStore(store)
	}
	snapshots, err := aggregate.NewFileSnapshots(filepath.Join(dir, snapshotsDir))
	if err != nil {
		return err
	}
	steps := io.Discard
	if verbose {
		steps = out
	}
	r, err := bank.Run(context.Background(), store, snapshots, time.Now, steps, runOpts...)
	if err != nil {
		return err
	}
	if !r.Ran {
		fmt.Fprintf(out, "%s already holds the bank's accounts: the scenario does not run again, nothing is appended,\nand what follows is read from the store.\n\n", dir)
	}
	bank.PrintReport(out, r)
	n := store.LastSequence()
	switch {
	case data == "":
		fmt.Fprintf(out, "\n%d events, in a temporary store that is removed on exit (-data DIR keeps the store in DIR)\n", n)
	case r.Ran:
		fmt.Fprintf(out, "\n%d events in %s (go run ./cmd/batpak inspect %s); a second run appends nothing\n", n, dir, dir)
	default:
		fmt.Fprintf(out, "\n%d events in %s, as before: nothing was appended\n", n, dir)
	}
	if m != nil {
		return m.serve(ctx, out)
	}
	return nil
}
